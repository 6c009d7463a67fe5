import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Auth from "../src/Auth.js"
import * as AuthRules from "../src/AuthRules.js"
import { TransportError, Unauthorized } from "../src/Errors.js"
import * as ServiceIdentity from "../src/ServiceIdentity.js"

/** Real-time pause: lets promise-based work (hashing, signing) finish while TestClock stands still. */
const tick = Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 2)))

/** Polls `check` (real time, bounded) until it holds. */
const eventually = (check: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 500; i++) {
      if (yield* check) return
      yield* tick
    }
    return yield* Effect.die(new Error(`never happened: ${what}`))
  })

/** Lets background fibers settle: a few real-time pauses. */
const settle = Effect.repeatN(tick, 10)

const issuerWithAccount = Effect.gen(function*() {
  const auth = yield* Auth.makeMemory({ accessTokenExpiry: "1 minute" })
  const { credentials } = yield* auth.generate("greeter", { type: "service", scopes: ["svc"] })
  return { auth, credentials }
})

/** Wraps a token source to record what was asked of it. */
const recording = (issue: ServiceIdentity.ServiceIdentityOptions["issue"]) => {
  const calls: Array<"login" | "refresh"> = []
  return {
    calls,
    issue: (request: Auth.TokenRequest) => {
      calls.push("refreshToken" in request ? "refresh" : "login")
      return issue(request)
    }
  }
}

describe("ServiceIdentity.ServiceIdentity", () => {
  it.scoped("logs in at start-up and refreshes before expiry, so the token never lapses", () =>
    Effect.gen(function*() {
      const { auth, credentials } = yield* issuerWithAccount
      const source = recording((request) => auth.token(request))
      const identity = yield* ServiceIdentity.make({
        credentials,
        issue: source.issue,
        refreshBefore: "10 seconds"
      })
      const first = yield* identity.currentToken
      expect(source.calls).toEqual(["login"])
      expect((yield* identity.current).expiry).toBe(60_000)

      yield* TestClock.adjust("49 seconds")
      yield* settle
      expect(yield* identity.currentToken).toBe(first)

      yield* TestClock.adjust("1 second") // 50 s: 10 s before expiry
      yield* eventually(Effect.map(identity.currentToken, (t) => t !== first), "refresh at 50 s")
      expect(source.calls).toEqual(["login", "refresh"])
      expect((yield* identity.current).expiry).toBe(110_000)

      // Ten minutes in 10-second steps: the current token is valid at every step.
      for (let step = 0; step < 60; step++) {
        yield* TestClock.adjust("10 seconds")
        yield* settle
        const account = yield* auth.inspect(yield* identity.currentToken)
        expect(account.id).toBe("greeter")
      }
      // One refresh per 50 s, all with refresh tokens.
      expect(source.calls.filter((c) => c === "refresh").length).toBe(13)
      expect(source.calls.filter((c) => c === "login").length).toBe(1)
    }), 20_000)

  it.scoped("falls back to the credentials when the refresh token is refused", () =>
    Effect.gen(function*() {
      const { auth, credentials } = yield* issuerWithAccount
      const source = recording((request) =>
        "refreshToken" in request ? Effect.fail(Unauthorized.of("refresh token revoked")) : auth.token(request)
      )
      const identity = yield* ServiceIdentity.make({
        credentials,
        issue: source.issue,
        refreshBefore: "10 seconds"
      })
      const first = yield* identity.currentToken
      yield* TestClock.adjust("50 seconds")
      yield* eventually(Effect.map(identity.currentToken, (t) => t !== first), "re-login")
      expect(source.calls).toEqual(["login", "refresh", "login"])
    }), 20_000)

  it.scoped("retries failed refreshes with backoff and keeps the old token meanwhile", () =>
    Effect.gen(function*() {
      const { auth, credentials } = yield* issuerWithAccount
      let outage = true
      const source = recording((request) =>
        outage && source.calls.length > 1
          ? Effect.fail(TransportError.of("refused", "127.0.0.1:1", "connection refused"))
          : auth.token(request)
      )
      const identity = yield* ServiceIdentity.make({
        credentials,
        issue: source.issue,
        refreshBefore: "10 seconds"
      })
      const first = yield* identity.currentToken
      yield* TestClock.adjust("50 seconds")
      yield* eventually(Effect.sync(() => source.calls.length >= 3), "first refresh attempt")
      // Backoff: 200 ms, 400 ms, 800 ms ... each attempt = refresh + login fallback.
      for (let i = 0; i < 20; i++) {
        yield* TestClock.adjust("100 millis")
        yield* settle
      }
      const attempts = source.calls.length
      expect(attempts).toBeGreaterThanOrEqual(7) // login + 3 attempts of 2 calls within 2 s
      expect(yield* identity.currentToken).toBe(first)
      outage = false
      yield* TestClock.adjust("2 seconds")
      yield* eventually(Effect.map(identity.currentToken, (t) => t !== first), "refresh after the outage")
      expect((yield* auth.inspect(yield* identity.currentToken)).id).toBe("greeter")
    }), 20_000)

  it.effect("start-up fails when the credentials are refused", () =>
    Effect.gen(function*() {
      const { auth } = yield* issuerWithAccount
      const error = yield* Effect.flip(
        Effect.scoped(
          ServiceIdentity.make({ credentials: { id: "greeter", secret: "wrong" }, issue: (r) => auth.token(r) })
        )
      )
      expect(error._tag).toBe("Unauthorized")
    }))

  it.effect("closing the scope stops the refresher", () =>
    Effect.gen(function*() {
      const { auth, credentials } = yield* issuerWithAccount
      const source = recording((request) => auth.token(request))
      const scope = yield* Scope.make()
      yield* ServiceIdentity.make({ credentials, issue: source.issue }).pipe(Scope.extend(scope))
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("10 minutes")
      yield* settle
      expect(source.calls).toEqual(["login"])
    }))

  it.scoped("refresh on demand; outgoing metadata carries the token unless the call overrides it", () =>
    Effect.gen(function*() {
      const { auth, credentials } = yield* issuerWithAccount
      const identity = yield* ServiceIdentity.make({ credentials, issue: (r) => auth.token(r) })
      const first = yield* identity.currentToken
      const metadata = yield* Effect.provideService(
        ServiceIdentity.outgoingMetadata({ "x-trace": "1" }),
        ServiceIdentity.ServiceIdentity,
        identity
      )
      expect(metadata).toEqual({ "x-trace": "1", authorization: `Bearer ${first}` })
      const override = { authorization: "Bearer other" }
      expect(
        yield* Effect.provideService(
          ServiceIdentity.outgoingMetadata(override),
          ServiceIdentity.ServiceIdentity,
          identity
        )
      ).toBe(
        override
      )
      yield* identity.refresh
      const second = yield* identity.currentToken
      expect(second).not.toBe(first)
      expect(
        yield* Effect.provideService(ServiceIdentity.outgoingMetadata(), ServiceIdentity.ServiceIdentity, identity)
      ).toEqual(
        Auth.bearer(second)
      )
      expect(identity.id).toBe("greeter")
    }))

  it.scoped(
    "end to end: a JWT issuer, a verifier-only service, rules and a client identity",
    () =>
      Effect.gen(function*() {
        const keys = yield* Auth.generateSigningKey()
        // The auth server knows the caller's account from configuration.
        const issuer = Auth.layerJwt({
          signingKey: keys.signingKey,
          accessTokenExpiry: "1 minute",
          accounts: [{ id: "frontend", secret: "s3cret", type: "service", scopes: ["greeter.call"] }]
        })
        const client = ServiceIdentity.layer({ credentials: { id: "frontend", secret: "s3cret" } }).pipe(
          Layer.provide(issuer)
        )
        // The greeter service verifies with the public key only.
        const server = Layer.merge(
          Auth.layerJwtVerifier({ publicKeys: [keys.publicKey] }),
          AuthRules.layer([
            {
              id: "callers",
              scope: "greeter.call",
              resource: { type: "service", name: "greeter", endpoint: "*" },
              access: "grant",
              priority: 0
            }
          ])
        )
        const metadata = yield* ServiceIdentity.outgoingMetadata().pipe(Effect.provide(client))
        const account = yield* Auth.authorize({ metadata, service: "greeter", endpoint: "Hello" }).pipe(
          Effect.provide(server)
        )
        expect(account?.id).toBe("frontend")
        const other = yield* Effect.flip(
          Auth.authorize({ metadata, service: "billing", endpoint: "Pay" }).pipe(Effect.provide(server))
        )
        expect(other._tag).toBe("Forbidden")
      }),
    20_000
  )
})
