/**
 * The state every issuing Auth layer shares (jwt and memory): accounts with hashed secrets, and
 * single-use rotating refresh tokens. Only the shape of the access token differs between layers, so it is
 * a parameter (`mintAccess`).
 *
 * Randomness (secrets, refresh tokens) comes from node:crypto on purpose, not from Effect's `Random`:
 * it must be unpredictable, and a seeded generator would make credentials guessable.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as crypto from "node:crypto"
import type {
  Account,
  AccountSeed,
  Auth,
  Credentials,
  Generated,
  GenerateOptions,
  Token,
  TokenOptions,
  TokenRequest
} from "../../Auth.js"
import { AuthError } from "../../Auth.js"
import { Unauthorized } from "../../Errors.js"

/** Used as the `id` of Unauthorized errors raised by the auth layers. */
export const ERROR_ID = "effect-micro.auth"

export const randomToken = (bytes = 32): string => crypto.randomBytes(bytes).toString("base64url")

const sha256 = (value: string): string => crypto.createHash("sha256").update(value).digest("base64url")

// scrypt for secrets: a generated secret has 256 bits of entropy, but `generate` also accepts
// user-chosen secrets (passwords), which need a slow hash. N=2^14 costs ~30-50 ms per hash.
const SCRYPT = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const
const scrypt = (secret: string, salt: Buffer): Effect.Effect<Buffer> =>
  Effect.async<Buffer>((resume) => {
    crypto.scrypt(secret, salt, 32, SCRYPT, (error, key) => {
      resume(error === null ? Effect.succeed(key) : Effect.die(error))
    })
  })

interface StoredAccount {
  readonly account: Account
  readonly salt: Buffer
  readonly hash: Buffer
}

interface StoredRefresh {
  readonly accountId: string
  /** Every refresh token descending from one credentials login shares a family; reuse revokes it. */
  readonly family: string
  readonly expiresAt: number
  used: boolean
}

export interface IssuerOptions {
  readonly issuer: string
  readonly accessTokenExpiry: Duration.Duration
  readonly refreshTokenExpiry: Duration.Duration
  /** Turns an account into an access token valid until `expiresAt` (epoch millis); returns the token and the
   * expiry the token actually carries (JWTs round it down to seconds). */
  readonly mintAccess: (
    account: Account,
    expiresAt: number
  ) => Effect.Effect<{ readonly accessToken: string; readonly expiry: number }>
}

export interface Issuer {
  readonly generate: Auth.Service["generate"]
  readonly token: Auth.Service["token"]
  readonly seed: (accounts: ReadonlyArray<AccountSeed>) => Effect.Effect<void, AuthError>
}

const validId = (id: string) => id.length > 0 && id.length <= 256

export const makeIssuer = (options: IssuerOptions): Effect.Effect<Issuer> =>
  Effect.sync(() => {
    const accounts = new Map<string, StoredAccount>()
    const refreshTokens = new Map<string, StoredRefresh>()
    const revokedFamilies = new Set<string>()
    let nextSweep = 0

    // Used refresh tokens are kept until they expire so that a replay is recognised as one.
    const sweep = (now: number) => {
      if (now < nextSweep) return
      nextSweep = now + 60_000
      const live = new Set<string>()
      for (const [key, entry] of refreshTokens) {
        if (entry.expiresAt <= now) refreshTokens.delete(key)
        else live.add(entry.family)
      }
      for (const family of revokedFamilies) if (!live.has(family)) revokedFamilies.delete(family)
    }

    const generate = (id: string, opts?: GenerateOptions): Effect.Effect<Generated, AuthError> =>
      Effect.gen(function*() {
        if (!validId(id)) {
          return yield* new AuthError({ reason: "InvalidInput", detail: "account id must be 1 to 256 characters" })
        }
        if (accounts.has(id)) {
          return yield* new AuthError({ reason: "AccountExists", detail: `account ${id} already exists` })
        }
        const secret = opts?.secret ?? randomToken()
        const account: Account = {
          id,
          type: opts?.type ?? "user",
          scopes: [...(opts?.scopes ?? [])],
          metadata: { ...opts?.metadata },
          issuer: options.issuer
        }
        const salt = crypto.randomBytes(16)
        const hash = yield* scrypt(secret, salt)
        // Checked again: another generate for the same id may have completed while hashing.
        if (accounts.has(id)) {
          return yield* new AuthError({ reason: "AccountExists", detail: `account ${id} already exists` })
        }
        accounts.set(id, { account, salt, hash })
        return { account, credentials: { id, secret } }
      })

    const issue = (account: Account, family: string, tokenOptions: TokenOptions | undefined) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        sweep(now)
        // A caller may ask for a shorter lifetime, never a longer one: `token` may be exposed over the wire.
        const lifetime = tokenOptions?.expiry === undefined
          ? options.accessTokenExpiry
          : Duration.min(Duration.decode(tokenOptions.expiry), options.accessTokenExpiry)
        const { accessToken, expiry } = yield* options.mintAccess(account, now + Duration.toMillis(lifetime))
        const refreshToken = randomToken()
        refreshTokens.set(sha256(refreshToken), {
          accountId: account.id,
          family,
          expiresAt: now + Duration.toMillis(options.refreshTokenExpiry),
          used: false
        })
        return { accessToken, refreshToken, expiry } satisfies Token
      })

    const login = (credentials: Credentials, tokenOptions: TokenOptions | undefined) =>
      Effect.gen(function*() {
        const stored = accounts.get(credentials.id)
        // Unknown ids are hashed too, so response time does not reveal which ids exist.
        const hash = yield* scrypt(credentials.secret, stored?.salt ?? crypto.randomBytes(16))
        if (stored === undefined || !crypto.timingSafeEqual(hash, stored.hash)) {
          return yield* Unauthorized.of("invalid credentials", ERROR_ID)
        }
        return yield* issue(stored.account, randomToken(12), tokenOptions)
      })

    const refresh = (refreshToken: string, tokenOptions: TokenOptions | undefined) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const key = sha256(refreshToken)
        const entry = refreshTokens.get(key)
        if (entry === undefined) return yield* Unauthorized.of("invalid refresh token", ERROR_ID)
        if (entry.expiresAt <= now) {
          refreshTokens.delete(key)
          return yield* Unauthorized.of("refresh token expired", ERROR_ID)
        }
        if (revokedFamilies.has(entry.family)) return yield* Unauthorized.of("refresh token revoked", ERROR_ID)
        if (entry.used) {
          // A refresh token presented twice means two parties hold it: revoke every descendant.
          revokedFamilies.add(entry.family)
          return yield* Unauthorized.of("refresh token reused; its token family is revoked", ERROR_ID)
        }
        entry.used = true
        const stored = accounts.get(entry.accountId)
        if (stored === undefined) return yield* Unauthorized.of("account no longer exists", ERROR_ID)
        return yield* issue(stored.account, entry.family, tokenOptions)
      })

    const token = (request: TokenRequest, tokenOptions?: TokenOptions): Effect.Effect<Token, Unauthorized> =>
      "refreshToken" in request ? refresh(request.refreshToken, tokenOptions) : login(request, tokenOptions)

    const seed = (seeds: ReadonlyArray<AccountSeed>) =>
      Effect.forEach(seeds, (s) => generate(s.id, s), { discard: true })

    return { generate, token, seed }
  })
