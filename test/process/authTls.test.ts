/**
 * Cross-process auth over mutual TLS: spawned server processes verify JWTs with a public key only and accept
 * only clients with a certificate from the project CA; certificates are issued here and handed over in a
 * temp directory.
 */
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as AuthMiddleware from "../../src/AuthMiddleware.js"
import { Auth, Certificates, Client, Codec, Registry, Selector, ServiceIdentity } from "../../src/index.js"
import * as TlsTransport from "../../src/TlsTransport.js"
import { type Child, spawnFixture } from "../support/processes.js"
import { Secure } from "./fixtures/authContract.js"

const fixture = "test/process/fixtures/authTlsServer.ts"

const caller = { id: "caller", secret: "caller-secret" }
const root = { id: "root", secret: "root-secret" }
const intruder = { id: "intruder", secret: "intruder-secret" }

interface Setup {
  /** Auth rules only. */
  readonly plain: Child
  /** Also binds service tokens to the mTLS identity (`matchPeerIdentity: "service"`). */
  readonly bound: Child
  readonly certs: {
    readonly caller: Certificates.Issued
    readonly intruder: Certificates.Issued
    readonly foreign: Certificates.Issued
  }
  /** The issuing Auth (the test plays the auth service). */
  readonly issuer: Layer.Layer<Auth.Auth>
}
class Fixture extends Context.Tag("test/AuthTlsFixture")<Fixture, Setup>() {}

const FixtureLive = Layer.scoped(
  Fixture,
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-auth-"))),
      (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
    )
    const ca = yield* Certificates.makeCa()
    const foreignCa = yield* Certificates.makeCa({ name: "Foreign CA" })
    const server = yield* Certificates.issue(ca, { identity: "secure" })
    fs.writeFileSync(path.join(dir, "ca.pem"), server.caPem)
    fs.writeFileSync(path.join(dir, "cert.pem"), server.certPem)
    fs.writeFileSync(path.join(dir, "key.pem"), server.keyPem, { mode: 0o600 })
    const { publicKey, signingKey } = yield* Auth.generateSigningKey()
    const env = { AUTH_TLS_DIR: dir, AUTH_PUBLIC_KEY: JSON.stringify(publicKey) }
    const [plain, bound] = yield* Effect.all([
      spawnFixture(fixture, env),
      spawnFixture(fixture, { ...env, MATCH_PEER: "service" })
    ], { concurrency: "unbounded" })
    const issuer = yield* Layer.memoize(
      Auth.layerJwt({
        signingKey,
        accounts: [
          { ...caller, type: "service" },
          { ...intruder, type: "service" },
          { ...root, type: "user", scopes: ["admin"] }
        ]
      }).pipe(Layer.orDie)
    )
    return {
      plain: plain!,
      bound: bound!,
      certs: {
        caller: yield* Certificates.issue(ca, { identity: "caller" }),
        intruder: yield* Certificates.issue(ca, { identity: "intruder" }),
        foreign: yield* Certificates.issue(foreignCa, { identity: "caller" })
      },
      issuer
    }
  })
)

/** Calls `use` with a client of the server at `address` over TLS with `tls`, as `as` (its service token) or anonymous. */
const withClient = <A, E>(
  address: string,
  tls: TlsTransport.TlsOptions,
  as: Auth.Credentials | undefined,
  use: (client: Client.TypedClient<RpcGroup.Rpcs<typeof Secure>>) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const { issuer } = yield* Fixture
    const infra = Layer.mergeAll(
      TlsTransport.layer(tls),
      Registry.layerStatic({ secure: [address] }),
      Codec.layer,
      Selector.layer
    )
    const client = as === undefined
      ? Client.layer({ retry: false })
      : AuthMiddleware.layerClient({ retry: false }).pipe(
        Layer.provide(ServiceIdentity.layer({ credentials: as }).pipe(Layer.orDie))
      )
    return yield* Effect.flatMap(Client.make(Secure, { service: "secure" }), use).pipe(
      Effect.provide(client.pipe(Layer.provide(Layer.merge(infra, issuer))))
    )
  })

const tokenOf = (credentials: Auth.Credentials) =>
  Effect.flatMap(
    Fixture,
    ({ issuer }) =>
      Effect.flatMap(Auth.Auth, (auth) => Effect.map(Effect.orDie(auth.token(credentials)), (t) => t.accessToken)).pipe(
        Effect.provide(issuer)
      )
  )

describe("cross-process auth over mTLS", () => {
  layer(FixtureLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    it.effect("a CA-issued client with a service token: handler and middleware see account and peer identity", () =>
      Effect.gen(function*() {
        const { certs, plain } = yield* Fixture
        const who = yield* withClient(
          plain.ready,
          TlsTransport.optionsFromIssued(certs.caller),
          caller,
          (c) => c.WhoAmI()
        )
        expect(who).toEqual({ account: "caller", peer: "caller" })
        yield* Effect.promise(() => plain.waitForLine((line) => line === "SEEN WhoAmI caller", 5000))
      }))

    it.effect("no token → 401 on protected endpoints, public ones answer; wrong scope → 403; per-call user token → OK", () =>
      Effect.gen(function*() {
        const { certs, plain } = yield* Fixture
        const tls = TlsTransport.optionsFromIssued(certs.caller)
        const anonymous = yield* withClient(
          plain.ready,
          tls,
          undefined,
          (c) => Effect.all([c.Ping(), Effect.flip(c.WhoAmI())])
        )
        expect(anonymous[0]).toBe("pong")
        expect(anonymous[1]).toMatchObject({ _tag: "Unauthorized", code: 401 })
        const rootToken = yield* tokenOf(root)
        const [denied, allowed] = yield* withClient(
          plain.ready,
          tls,
          caller,
          (c) =>
            Effect.all([Effect.flip(c.AdminReset()), c.AdminReset(undefined, { metadata: Auth.bearer(rootToken) })])
        )
        expect(denied).toMatchObject({ _tag: "Forbidden", code: 403 })
        expect(allowed).toBe("reset by root")
        const forged = yield* withClient(
          plain.ready,
          tls,
          undefined,
          (c) => Effect.flip(c.WhoAmI(undefined, { metadata: Auth.bearer(rootToken.slice(0, -4) + "AAAA") }))
        )
        expect(forged).toMatchObject({ _tag: "Unauthorized" })
      }))

    it.effect("a client with a foreign-CA certificate, or none, gets a TransportError (dial); the server keeps serving", () =>
      Effect.gen(function*() {
        const { certs, plain } = yield* Fixture
        const foreign = yield* Effect.flip(withClient(
          plain.ready,
          { ...TlsTransport.optionsFromIssued(certs.foreign), ca: certs.caller.caPem },
          caller,
          (c) => c.WhoAmI()
        ))
        expect(foreign).toMatchObject({ _tag: "TransportError", reason: "dial" })
        const none = yield* Effect.flip(withClient(plain.ready, { ca: certs.caller.caPem }, undefined, (c) => c.Ping()))
        expect(none).toMatchObject({ _tag: "TransportError", reason: "dial" })
        // the server never saw a call from them, and still serves
        expect(plain.lines.filter((line) => line.startsWith("SEEN") && !line.endsWith(" caller"))).toEqual([])
        const who = yield* withClient(
          plain.ready,
          TlsTransport.optionsFromIssued(certs.caller),
          caller,
          (c) => c.WhoAmI()
        )
        expect(who.peer).toBe("caller")
      }))

    it.effect("matchPeerIdentity: a service token is only honoured over its own certificate", () =>
      Effect.gen(function*() {
        const { bound, certs } = yield* Fixture
        const own = yield* withClient(
          bound.ready,
          TlsTransport.optionsFromIssued(certs.caller),
          caller,
          (c) => c.WhoAmI()
        )
        expect(own).toEqual({ account: "caller", peer: "caller" })
        // the intruder holds a valid CA certificate, and caller's (stolen) token
        const stolen = yield* tokenOf(caller)
        const error = yield* withClient(
          bound.ready,
          TlsTransport.optionsFromIssued(certs.intruder),
          intruder,
          (c) => Effect.flip(c.WhoAmI(undefined, { metadata: Auth.bearer(stolen) }))
        )
        expect(error).toMatchObject({ _tag: "Forbidden", code: 403 })
        expect(error.detail).toContain("authenticated as intruder")
      }))
  })
})
