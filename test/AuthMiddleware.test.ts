/** Auth wired into the RPC runtime, in memory: server enforcement, client tokens, expiry and refresh on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as AuthMiddleware from "../src/AuthMiddleware.js"
import {
  Auth,
  AuthRules,
  Client,
  Codec,
  Metadata,
  Registry,
  Selector,
  Server,
  ServiceIdentity,
  Transport
} from "../src/index.js"
import { handlers, rules, Secure } from "./process/fixtures/authContract.js"

const caller = { id: "caller", secret: "caller-secret" }
const root = { id: "root", secret: "root-secret" }

const AuthLive = Layer.mergeAll(
  Auth.layerMemory({
    accounts: [
      { ...caller, type: "service", scopes: [] },
      { ...root, type: "user", scopes: ["admin"] }
    ]
  }),
  AuthRules.layer(rules)
).pipe(Layer.orDie)

// A static registry (the server does not register): no registry sweeps to wake when TestClock jumps.
const Infra = Layer.mergeAll(
  Transport.layerMemory,
  Registry.layerStatic({ secure: ["memory:secure"] }),
  Codec.layer,
  Selector.layer,
  AuthLive
)

const serve = (serverMiddleware = AuthMiddleware.layerServer()) =>
  Server.layer(Secure, { name: "secure", address: "memory:secure", register: false }).pipe(
    Layer.provide(handlers),
    Layer.provide(serverMiddleware)
  )

/** Counts logins and refreshes; with `lieAboutExpiry` the client believes its tokens last an hour longer than
 * they do (clock skew against the issuer), so only the server notices the expiry. */
const issueLog: Array<"login" | "refresh"> = []
const identity = (options?: { readonly lieAboutExpiry?: boolean }) =>
  Layer.scoped(
    ServiceIdentity.ServiceIdentity,
    Effect.flatMap(Auth.Auth, (auth) => {
      issueLog.length = 0
      return ServiceIdentity.make({
        credentials: caller,
        issue: (request) =>
          auth.token(request).pipe(
            Effect.tap(() => Effect.sync(() => issueLog.push("id" in request ? "login" : "refresh"))),
            Effect.map((token) => options?.lieAboutExpiry ? { ...token, expiry: token.expiry + 3_600_000 } : token)
          )
      })
    })
  ).pipe(Layer.orDie)

const env = (
  client: Layer.Layer<Client.Client, never, any>,
  server: Layer.Layer<Server.Server, any, any> = serve()
) =>
  Layer.mergeAll(server, client).pipe(Layer.provideMerge(Infra)) as Layer.Layer<
    Client.Client | Auth.Auth | AuthRules.Rules
  >

const anonymous = Client.layer()
const withIdentity = (options?: Parameters<typeof AuthMiddleware.layerClient>[0], lieAboutExpiry = false) =>
  AuthMiddleware.layerClient(options).pipe(Layer.provide(identity({ lieAboutExpiry })))

const secure = Client.make(Secure, { service: "secure" })

const tokenOf = (credentials: Auth.Credentials) =>
  Effect.flatMap(Auth.Auth, (auth) => Effect.map(Effect.orDie(auth.token(credentials)), (t) => t.accessToken))

describe("AuthMiddleware (server)", () => {
  it.scoped("no token: a public rule lets the call in, anonymously", () =>
    Effect.gen(function*() {
      const client = yield* secure
      expect(yield* client.Ping()).toBe("pong")
    }).pipe(Effect.provide(env(anonymous))))

  it.scoped("no token on a protected endpoint → Unauthorized (401)", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const error = yield* Effect.flip(client.WhoAmI())
      expect(error).toMatchObject({ _tag: "Unauthorized", code: 401 })
      expect(error.detail).toContain("authentication required")
    }).pipe(Effect.provide(env(anonymous))))

  it.scoped("garbage or malformed tokens → Unauthorized with the reason; public endpoints still answer", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const garbage = yield* Effect.flip(client.WhoAmI(undefined, { metadata: Auth.bearer("not-a-token") }))
      expect(garbage).toMatchObject({ _tag: "Unauthorized", detail: "invalid token" })
      const malformed = yield* Effect.flip(client.WhoAmI(undefined, { metadata: { authorization: "Basic abc" } }))
      expect(malformed).toMatchObject({ _tag: "Unauthorized" })
      expect(malformed.detail).toContain("malformed authorization header")
      expect(yield* client.Ping(undefined, { metadata: Auth.bearer("not-a-token") })).toBe("pong")
    }).pipe(Effect.provide(env(anonymous))))

  it.scoped("valid token but denied by a rule → Forbidden (403)", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const error = yield* Effect.flip(client.AdminReset())
      expect(error).toMatchObject({ _tag: "Forbidden", code: 403 })
      expect(error.detail).toContain("denied by rule no-admin")
    }).pipe(Effect.provide(env(withIdentity()))))

  it.scoped("the handler sees CurrentAccount", () =>
    Effect.gen(function*() {
      const client = yield* secure
      expect(yield* client.WhoAmI()).toEqual({ account: "caller", peer: null })
    }).pipe(Effect.provide(env(withIdentity()))))

  it.scoped("streaming calls: the token is checked when the call opens; a refusal ends the stream typed", () =>
    Effect.gen(function*() {
      const authed = yield* secure
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(authed.Feed()))).toEqual(["hello", "caller"])
    }).pipe(
      Effect.zipRight(
        Effect.gen(function*() {
          const anon = yield* secure
          const error = yield* Effect.flip(Stream.runCollect(anon.Feed()))
          expect(error).toMatchObject({ _tag: "Unauthorized", code: 401 })
        }).pipe(Effect.provide(env(anonymous)))
      ),
      Effect.provide(env(withIdentity()))
    ))

  it.scoped("rule changes apply to the next call", () =>
    Effect.gen(function*() {
      const client = yield* secure
      expect((yield* client.WhoAmI()).account).toBe("caller")
      const rulesService = yield* AuthRules.Rules
      yield* rulesService.delete("accounts")
      expect(yield* Effect.flip(client.WhoAmI())).toMatchObject({
        _tag: "Forbidden",
        detail: expect.stringContaining("no rule grants access")
      })
      yield* rulesService.set(AuthRules.allowAll)
      expect(yield* client.Ping()).toBe("pong")
    }).pipe(Effect.provide(env(withIdentity()))))

  it.scoped("before/then middleware: before sees rejected calls, then runs only for authorized ones", () => {
    const seen: Array<string> = []
    const before: Server.Middleware = (call, next) =>
      Effect.zipRight(Effect.sync(() => seen.push(`before:${call.endpoint}`)), next)
    const then: Server.Middleware = (call, next) =>
      Effect.flatMap(
        Auth.CurrentAccount,
        (account) => Effect.zipRight(Effect.sync(() => seen.push(`then:${call.endpoint}:${account?.id ?? "-"}`)), next)
      )
    return Effect.gen(function*() {
      const client = yield* secure
      yield* client.WhoAmI()
      yield* Effect.flip(client.AdminReset())
      expect(seen).toEqual(["before:WhoAmI", "then:WhoAmI:caller", "before:AdminReset"])
    }).pipe(Effect.provide(env(withIdentity(), serve(AuthMiddleware.layerServer({ before: [before], then: [then] })))))
  })

  it.scoped("matchPeerIdentity: a service token over a connection without that mTLS identity → Forbidden", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const error = yield* Effect.flip(client.WhoAmI())
      expect(error).toMatchObject({ _tag: "Forbidden" })
      expect(error.detail).toContain("must call over mTLS")
      // user tokens (forwarded by a service) are not bound to the connection in "service" mode
      const rootToken = yield* tokenOf(root)
      expect((yield* client.WhoAmI(undefined, { metadata: Auth.bearer(rootToken) })).account).toBe("root")
    }).pipe(
      Effect.provide(env(withIdentity(), serve(AuthMiddleware.layerServer({ matchPeerIdentity: "service" }))))
    ))

  it.scoped("without the middleware, CurrentAccount is undefined and requireAccount refuses", () =>
    Effect.gen(function*() {
      const client = yield* secure
      expect(yield* client.WhoAmI()).toEqual({ account: null, peer: null })
      expect(yield* Effect.flip(client.AdminReset())).toMatchObject({ _tag: "Unauthorized" })
    }).pipe(Effect.provide(env(withIdentity(), serve(Layer.empty as never)))))
})

describe("AuthMiddleware (client)", () => {
  it.scoped("a per-call user token overrides the service token", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const rootToken = yield* tokenOf(root)
      expect(yield* client.AdminReset(undefined, { metadata: Auth.bearer(rootToken) })).toBe("reset by root")
      expect((yield* client.WhoAmI(undefined, { metadata: Auth.bearer(rootToken) })).account).toBe("root")
      // the same through Metadata.withOutgoing, for a region of code
      expect((yield* Metadata.withOutgoing(client.WhoAmI(), Auth.bearer(rootToken))).account).toBe("root")
      // and without an override, the service's own token
      expect((yield* client.WhoAmI()).account).toBe("caller")
    }).pipe(Effect.provide(env(withIdentity()))))

  it.scoped("an expired service token → Unauthorized, the client refreshes once and the call succeeds", () =>
    Effect.gen(function*() {
      const client = yield* secure
      expect((yield* client.WhoAmI()).account).toBe("caller")
      expect(issueLog).toEqual(["login"])
      // 16 minutes later the server considers the 15-minute token expired; the client did not know.
      yield* TestClock.adjust("16 minutes")
      expect((yield* client.WhoAmI()).account).toBe("caller")
      expect(issueLog).toEqual(["login", "refresh"])
      // concurrent calls after the next expiry share one refresh
      yield* TestClock.adjust("16 minutes")
      const replies = yield* Effect.all(Array.from({ length: 5 }, () => client.WhoAmI()), { concurrency: "unbounded" })
      expect(replies.map((r) => r.account)).toEqual(Array(5).fill("caller"))
      expect(issueLog).toEqual(["login", "refresh", "refresh"])
    }).pipe(Effect.provide(env(withIdentity(undefined, true)))))

  it.scoped("refreshOnExpiry: false → the Unauthorized reaches the caller", () =>
    Effect.gen(function*() {
      const client = yield* secure
      yield* TestClock.adjust("16 minutes")
      const error = yield* Effect.flip(client.WhoAmI())
      expect(error).toMatchObject({ _tag: "Unauthorized", detail: "token expired" })
      expect(AuthMiddleware.isTokenExpired(error)).toBe(true)
      expect(issueLog).toEqual(["login"])
    }).pipe(Effect.provide(env(withIdentity({ refreshOnExpiry: false }, true)))))

  it.scoped("an expired per-call user token is not refreshed: Unauthorized", () =>
    Effect.gen(function*() {
      const client = yield* secure
      const rootToken = yield* tokenOf(root)
      yield* TestClock.adjust("16 minutes")
      const error = yield* Effect.flip(client.WhoAmI(undefined, { metadata: Auth.bearer(rootToken) }))
      expect(error).toMatchObject({ _tag: "Unauthorized", detail: "token expired" })
      expect(issueLog).toEqual(["login"])
    }).pipe(Effect.provide(env(withIdentity(undefined, true)))))

  it.scoped("user middleware composes: it runs outside auth and sees the call without the token", () => {
    const seen: Array<string | undefined> = []
    const spy: Client.ClientMiddleware = (call, next) =>
      Effect.zipRight(Effect.sync(() => seen.push(call.metadata["authorization"])), next(call))
    return Effect.gen(function*() {
      const client = yield* secure
      expect((yield* client.WhoAmI()).account).toBe("caller")
      expect(seen).toEqual([undefined])
    }).pipe(Effect.provide(env(withIdentity({ middleware: [spy] }))))
  })
})
