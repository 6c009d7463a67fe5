/**
 * Auth layers without keys: `memory` (opaque random tokens in a map; for tests and single-process apps)
 * and `noop` (every token is accepted as one fixed account; for development and tests of handlers).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { Account, Auth, NoopOptions } from "../../Auth.js"
import { Unauthorized } from "../../Errors.js"
import { ERROR_ID, type Issuer, type IssuerOptions, makeIssuer, randomToken } from "./issuer.js"

export const makeMemory = (
  options: Omit<IssuerOptions, "mintAccess">
): Effect.Effect<Auth.Service & Pick<Issuer, "seed">> =>
  Effect.gen(function*() {
    const tokens = new Map<string, { readonly account: Account; readonly expiresAt: number }>()
    let nextSweep = 0
    const issuer = yield* makeIssuer({
      ...options,
      mintAccess: (account, expiresAt) =>
        Effect.sync(() => {
          const accessToken = randomToken()
          tokens.set(accessToken, { account, expiresAt })
          return { accessToken, expiry: expiresAt }
        })
    })
    const inspect = (accessToken: string): Effect.Effect<Account, Unauthorized> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const entry = tokens.get(accessToken)
        // Expired tokens are forgotten once a minute, after a grace period so that callers still learn
        // "expired" rather than "invalid" for a while.
        if (now >= nextSweep) {
          nextSweep = now + 60_000
          for (const [key, e] of tokens) if (e.expiresAt + 3_600_000 <= now) tokens.delete(key)
        }
        if (entry === undefined) return Effect.fail(Unauthorized.of("invalid token", ERROR_ID))
        if (entry.expiresAt <= now) return Effect.fail(Unauthorized.of("token expired", ERROR_ID))
        return Effect.succeed(entry.account)
      })
    return { generate: issuer.generate, token: issuer.token, inspect, seed: issuer.seed }
  })

export const defaultNoopAccount: Account = {
  id: "anonymous",
  type: "user",
  scopes: [],
  metadata: {},
  issuer: "noop"
}

export const makeNoop = (options?: NoopOptions): Auth.Service => {
  const account: Account = { ...defaultNoopAccount, ...options?.account }
  return {
    generate: (id, opts) =>
      Effect.succeed({
        account: {
          id,
          type: opts?.type ?? "user",
          scopes: [...(opts?.scopes ?? [])],
          metadata: { ...opts?.metadata },
          issuer: account.issuer
        },
        credentials: { id, secret: opts?.secret ?? "noop" }
      }),
    token: (_request, opts) =>
      Effect.map(Clock.currentTimeMillis, (now) => ({
        accessToken: "noop",
        refreshToken: "noop",
        expiry: now + (opts?.expiry === undefined ? 3_600_000 : Duration.toMillis(Duration.decode(opts.expiry)))
      })),
    inspect: (accessToken) =>
      accessToken.length === 0 ? Effect.fail(Unauthorized.of("empty token", ERROR_ID)) : Effect.succeed(account)
  }
}
