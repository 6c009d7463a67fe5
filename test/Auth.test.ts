import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Auth from "../src/Auth.js"
import * as AuthRules from "../src/AuthRules.js"

const issuers: ReadonlyArray<
  readonly [string, (options: Auth.MemoryOptions) => Effect.Effect<Auth.Auth.Service, Auth.AuthError>]
> = [
  ["memory", (options) => Auth.makeMemory(options)],
  [
    "jwt",
    (options) => Effect.flatMap(Auth.generateSigningKey(), ({ signingKey }) => Auth.makeJwt({ ...options, signingKey }))
  ]
]

// ----- the contract every issuing layer keeps -----
for (const [name, make] of issuers) {
  describe(`Auth contract: ${name}`, () => {
    const auth = make({ accessTokenExpiry: "1 minute", refreshTokenExpiry: "10 minutes", issuer: "test-issuer" })

    it.effect("generate → token → inspect round trip", () =>
      Effect.gen(function*() {
        const a = yield* auth
        const { account, credentials } = yield* a.generate("greeter", {
          type: "service",
          scopes: ["read", "write"],
          metadata: { team: "core" }
        })
        expect(account).toEqual({
          id: "greeter",
          type: "service",
          scopes: ["read", "write"],
          metadata: { team: "core" },
          issuer: "test-issuer"
        })
        expect(credentials.id).toBe("greeter")
        expect(credentials.secret.length).toBeGreaterThanOrEqual(32)
        const token = yield* a.token(credentials)
        expect(token.expiry).toBe(60_000)
        expect(yield* a.inspect(token.accessToken)).toEqual(account)
        // A chosen secret works too; defaults: a user with no scopes.
        const user = yield* a.generate("ada", { secret: "correct horse" })
        expect(user.account.type).toBe("user")
        const t2 = yield* a.token({ id: "ada", secret: "correct horse" }, { expiry: "5 seconds" })
        expect(t2.expiry).toBe(5_000)
        expect((yield* a.inspect(t2.accessToken)).scopes).toEqual([])
        // Asking for more than the layer allows is capped.
        expect((yield* a.token(credentials, { expiry: "1 day" })).expiry).toBe(60_000)
      }))

    it.effect("an expired access token is Unauthorized (on Clock)", () =>
      Effect.gen(function*() {
        const a = yield* auth
        const { credentials } = yield* a.generate("svc")
        const token = yield* a.token(credentials)
        yield* TestClock.adjust("59 seconds")
        expect((yield* a.inspect(token.accessToken)).id).toBe("svc")
        yield* TestClock.adjust("1 second")
        const error = yield* Effect.flip(a.inspect(token.accessToken))
        expect(error._tag).toBe("Unauthorized")
        expect(error.detail).toBe("token expired")
        expect(error.code).toBe(401)
      }))

    it.effect("bad credentials, unknown ids and garbage tokens are Unauthorized", () =>
      Effect.gen(function*() {
        const a = yield* auth
        const { credentials } = yield* a.generate("svc")
        const wrong = yield* Effect.flip(a.token({ id: "svc", secret: credentials.secret + "x" }))
        expect(wrong._tag === "Unauthorized" && wrong.detail).toBe("invalid credentials")
        const unknown = yield* Effect.flip(a.token({ id: "nobody", secret: credentials.secret }))
        expect(unknown._tag === "Unauthorized" && unknown.detail).toBe("invalid credentials")
        for (const garbage of ["", "x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.", credentials.secret]) {
          expect((yield* Effect.flip(a.inspect(garbage)))._tag).toBe("Unauthorized")
        }
        const bogusRefresh = yield* Effect.flip(a.token({ refreshToken: "nope" }))
        expect(bogusRefresh._tag).toBe("Unauthorized")
      }))

    it.effect("generate rejects a duplicate or empty id", () =>
      Effect.gen(function*() {
        const a = yield* auth
        yield* a.generate("svc")
        const dup = yield* Effect.flip(a.generate("svc"))
        expect(dup._tag === "AuthError" && dup.reason).toBe("AccountExists")
        const empty = yield* Effect.flip(a.generate(""))
        expect(empty._tag === "AuthError" && empty.reason).toBe("InvalidInput")
      }))

    it.effect("refresh tokens rotate and are single-use; a replay revokes the whole family", () =>
      Effect.gen(function*() {
        const a = yield* auth
        const { credentials } = yield* a.generate("svc", { scopes: ["s"] })
        const first = yield* a.token(credentials)
        yield* TestClock.adjust("30 seconds")
        const second = yield* a.token({ refreshToken: first.refreshToken })
        expect(second.refreshToken).not.toBe(first.refreshToken)
        expect(second.expiry).toBe(90_000)
        expect((yield* a.inspect(second.accessToken)).scopes).toEqual(["s"])
        // Replaying the used token fails and revokes its descendants...
        const replay = yield* Effect.flip(a.token({ refreshToken: first.refreshToken }))
        expect(replay._tag === "Unauthorized" && replay.detail).toContain("reused")
        const descendant = yield* Effect.flip(a.token({ refreshToken: second.refreshToken }))
        expect(descendant._tag === "Unauthorized" && descendant.detail).toBe("refresh token revoked")
        // ...but not other logins of the same account.
        const other = yield* a.token(credentials)
        expect((yield* a.token({ refreshToken: other.refreshToken })).accessToken).toBeTypeOf("string")
      }))

    it.effect("refresh tokens expire", () =>
      Effect.gen(function*() {
        const a = yield* auth
        const { credentials } = yield* a.generate("svc")
        const token = yield* a.token(credentials)
        yield* TestClock.adjust("10 minutes")
        const error = yield* Effect.flip(a.token({ refreshToken: token.refreshToken }))
        expect(error._tag === "Unauthorized" && error.detail).toBe("refresh token expired")
      }))

    it.effect("accounts can be seeded at start-up", () =>
      Effect.gen(function*() {
        const a = yield* make({ accounts: [{ id: "billing", secret: "s3cret", type: "service", scopes: ["pay"] }] })
        const token = yield* a.token({ id: "billing", secret: "s3cret" })
        const account = yield* a.inspect(token.accessToken)
        expect(account.scopes).toEqual(["pay"])
        expect(account.type).toBe("service")
      }))
  })
}

// ----- noop -----
describe("Auth.layerNoop", () => {
  it.effect("every non-empty token inspects to the configured account", () =>
    Effect.gen(function*() {
      const a = yield* Auth.Auth
      expect((yield* a.inspect("anything")).id).toBe("anonymous")
      expect((yield* Effect.flip(a.inspect("")))._tag).toBe("Unauthorized")
      const { credentials } = yield* a.generate("x", { scopes: ["s"] })
      const token = yield* a.token(credentials)
      expect((yield* a.inspect(token.accessToken)).id).toBe("anonymous")
    }).pipe(Effect.provide(Auth.layerNoop())))

  it.effect("the account is configurable", () =>
    Effect.gen(function*() {
      const a = yield* Auth.Auth
      expect((yield* a.inspect("t")).scopes).toEqual(["admin"])
    }).pipe(Effect.provide(Auth.layerNoop({ account: { id: "dev", scopes: ["admin"] } }))))
})

// ----- server side: authorize -----
describe("Auth.authorize", () => {
  const rules: ReadonlyArray<AuthRules.Rule> = [
    {
      id: "public-hello",
      scope: "",
      resource: { type: "service", name: "greeter", endpoint: "Hello" },
      access: "grant",
      priority: 0
    },
    {
      id: "admins",
      scope: "admin",
      resource: { type: "service", name: "greeter", endpoint: "Admin.*" },
      access: "grant",
      priority: 10
    },
    {
      id: "no-admin",
      scope: "*",
      resource: { type: "service", name: "greeter", endpoint: "Admin.*" },
      access: "deny",
      priority: 5
    },
    {
      id: "accounts",
      scope: "*",
      resource: { type: "service", name: "greeter", endpoint: "*" },
      access: "grant",
      priority: 0
    }
  ]
  const env = Layer.merge(Auth.layerMemory({ accessTokenExpiry: "1 minute" }), AuthRules.layer(rules))
  const login = (id: string, scopes: Array<string>) =>
    Effect.gen(function*() {
      const a = yield* Auth.Auth
      const { credentials } = yield* a.generate(id, { scopes })
      return (yield* a.token(credentials)).accessToken
    })
  const call = (endpoint: string, metadata: Record<string, string> = {}) =>
    Auth.authorize({ metadata, service: "greeter", endpoint })

  it.effect("missing header + public rule → allowed without an account", () =>
    Effect.gen(function*() {
      expect(yield* call("Hello")).toBeUndefined()
    }).pipe(Effect.provide(env)))

  it.effect("missing header, no public rule → Unauthorized", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(call("Count"))
      expect(error._tag).toBe("Unauthorized")
      expect(error.id).toBe("greeter")
      expect(error.detail).toContain("authentication required")
    }).pipe(Effect.provide(env)))

  it.effect("valid token but denied → Forbidden; with the scope → the account", () =>
    Effect.gen(function*() {
      const user = yield* login("ada", [])
      const error = yield* Effect.flip(call("Admin.Reset", Auth.bearer(user)))
      expect(error._tag).toBe("Forbidden")
      expect(error.code).toBe(403)
      expect(error.detail).toContain("denied by rule no-admin")
      expect((yield* call("Count", Auth.bearer(user)))?.id).toBe("ada")
      // The public endpoint still reports who called when a valid token came along.
      expect((yield* call("Hello", Auth.bearer(user)))?.id).toBe("ada")
      const admin = yield* login("root", ["admin"])
      expect((yield* call("Admin.Reset", Auth.bearer(admin)))?.id).toBe("root")
    }).pipe(Effect.provide(env)))

  it.effect("an invalid or expired token counts as none: public endpoints work, others say why", () =>
    Effect.gen(function*() {
      const user = yield* login("ada", [])
      yield* TestClock.adjust("2 minutes")
      expect(yield* call("Hello", Auth.bearer(user))).toBeUndefined()
      const expired = yield* Effect.flip(call("Count", Auth.bearer(user)))
      expect(expired._tag === "Unauthorized" && expired.detail).toBe("token expired")
      const malformed = yield* Effect.flip(call("Count", { authorization: "Basic dXNlcjpwYXNz" }))
      expect(malformed.detail).toContain("malformed authorization header")
      const bogus = yield* Effect.flip(call("Count", { authorization: "Bearer nope" }))
      expect(bogus.detail).toBe("invalid token")
    }).pipe(Effect.provide(env)))

  it.effect("rule changes take effect on the next call", () =>
    Effect.gen(function*() {
      const user = yield* login("ada", [])
      const rulesService = yield* AuthRules.Rules
      expect((yield* call("Count", Auth.bearer(user)))?.id).toBe("ada")
      yield* rulesService.add({
        id: "freeze",
        scope: "",
        resource: { type: "*", name: "*", endpoint: "*" },
        access: "deny",
        priority: 100
      })
      expect((yield* Effect.flip(call("Count", Auth.bearer(user))))._tag).toBe("Forbidden")
      expect((yield* Effect.flip(call("Hello")))._tag).toBe("Unauthorized")
      yield* rulesService.delete("freeze")
      expect((yield* call("Count", Auth.bearer(user)))?.id).toBe("ada")
      const bound = yield* Auth.authorizer
      expect((yield* bound({ metadata: Auth.bearer(user), service: "greeter", endpoint: "Count" }))?.id).toBe("ada")
    }).pipe(Effect.provide(env)))

  it("bearerToken parses the header", () => {
    expect(Auth.bearerToken({})).toBeUndefined()
    expect(Auth.bearerToken({ authorization: "Bearer abc" })).toBe("abc")
    expect(Auth.bearerToken({ authorization: "bearer   abc " })).toBe("abc")
    expect(Auth.bearerToken({ authorization: "Bearer" })).toBeNull()
    expect(Auth.bearerToken({ authorization: "Bearer a b" })).toBeNull()
    expect(Auth.bearerToken({ authorization: "Token abc" })).toBeNull()
  })

  it.effect("CurrentAccount / requireAccount", () =>
    Effect.gen(function*() {
      const account: Auth.Account = { id: "a", type: "user", scopes: [], metadata: {}, issuer: "t" }
      expect(yield* Effect.provideService(Auth.requireAccount, Auth.CurrentAccount, account)).toEqual(account)
      const error = yield* Effect.flip(Effect.provideService(Auth.requireAccount, Auth.CurrentAccount, undefined))
      expect(error._tag).toBe("Unauthorized")
    }))
})

// ----- the Rules service -----
/** Starts collecting `n` values of `rules.changes` and returns once subscribed; the result is a join. */
const collectChanges = <A>(rules: AuthRules.Rules.Service, n: number, f: (rules: ReadonlyArray<AuthRules.Rule>) => A) =>
  Effect.gen(function*() {
    const subscribed = yield* Deferred.make<void>()
    const fiber = yield* rules.changes.pipe(
      Stream.tap(() => Deferred.succeed(subscribed, undefined)),
      Stream.map(f),
      Stream.take(n),
      Stream.runCollect,
      Effect.fork
    )
    yield* Deferred.await(subscribed)
    return Effect.map(Fiber.join(fiber), Chunk.toReadonlyArray)
  })

describe("AuthRules.Rules", () => {
  const r = (id: string, priority = 0): AuthRules.Rule => ({
    id,
    scope: "",
    resource: { type: "*", name: "*", endpoint: "*" },
    access: "grant",
    priority
  })

  it.scoped("set / add (replacing by id) / delete, and changes as a Stream", () =>
    Effect.gen(function*() {
      const rules = yield* AuthRules.Rules
      const seen = yield* collectChanges(rules, 5, (rs) => rs.map((x) => `${x.id}${x.priority}`).join(","))
      yield* rules.add(r("b"))
      yield* rules.add(r("a", 5))
      yield* rules.set([r("x"), r("y")])
      yield* rules.delete("x")
      expect(yield* seen).toEqual(["a0", "a0,b0", "a5,b0", "x0,y0", "y0"])
      expect(yield* rules.verify(undefined, { type: "service", name: "g", endpoint: "E" })).toBeUndefined()
    }).pipe(Effect.provide(AuthRules.layer([r("a")]))), 10_000)

  it.scoped("AuthRules.follow applies every decodable value and ignores the rest", () =>
    Effect.gen(function*() {
      const rules = yield* AuthRules.Rules
      // A config source: plain JSON values, one of them not a valid rule array.
      const source = Stream.fromIterable<unknown>([
        [{ id: "one", scope: "", resource: { type: "*", name: "*", endpoint: "*" }, access: "grant" }],
        [{ id: "broken", access: "sometimes" }],
        [{ id: "two", scope: "*", resource: { type: "*", name: "*", endpoint: "*" }, access: "deny", priority: 2 }]
      ])
      const ids = yield* collectChanges(rules, 3, (rs) => rs.map((x) => x.id).join(","))
      yield* AuthRules.follow(source)
      expect(yield* ids).toEqual(["", "one", "two"])
      expect((yield* rules.get)[0]!.priority).toBe(2)
    }).pipe(Effect.provide(AuthRules.layer())), 10_000)
})
