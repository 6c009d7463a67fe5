import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as crypto from "node:crypto"
import type { AddressInfo } from "node:net"
import * as tls from "node:tls"
import * as Certificates from "../src/Certificates.js"

interface Server {
  readonly port: number
  readonly accepted: Array<string>
  readonly rejected: Array<string>
  /** Resolves when the server has accepted or rejected its first client. */
  readonly firstDecision: Promise<void>
  readonly server: tls.Server
}

/** A TLS server on 127.0.0.1:0 that replies with the identity of each authenticated client and hangs up. */
const server = (issued: Certificates.Issued) =>
  Effect.acquireRelease(
    Effect.async<Server>((resume) => {
      const accepted: Array<string> = []
      const rejected: Array<string> = []
      let decided: () => void = () => {}
      const firstDecision = new Promise<void>((resolve) => (decided = resolve))
      const srv = tls.createServer(Certificates.tlsServerOptions(issued), (socket) => {
        const identity = Certificates.peerIdentity(socket) ?? "none"
        accepted.push(identity)
        decided()
        socket.end(`identity=${identity}`)
      })
      // Node destroys a connection whose client certificate fails verification right after the handshake
      // ("socket hang up" here); a missing certificate is refused by OpenSSL during the handshake.
      srv.on("tlsClientError", (error) => {
        rejected.push(error.message)
        decided()
      })
      srv.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          port: (srv.address() as AddressInfo).port,
          accepted,
          rejected,
          firstDecision,
          server: srv
        })))
    }),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.close(() => resume(Effect.void))
      })
  )

/** Connects, reads until the server hangs up; fails on any TLS or socket error. */
const connect = (port: number, options: tls.ConnectionOptions) =>
  Effect.async<string, Error>((resume) => {
    let data = ""
    let done = false
    const finish = (result: Effect.Effect<string, Error>) => {
      if (done) return
      done = true
      socket.destroy()
      resume(result)
    }
    const socket = tls.connect({ host: "127.0.0.1", port, ...options })
    socket.setEncoding("utf8")
    socket.on("data", (chunk: string) => (data += chunk))
    socket.on("error", (error) => finish(Effect.fail(error)))
    socket.on("close", () =>
      finish(data.length > 0 ? Effect.succeed(data) : Effect.fail(new Error("closed without a reply"))))
    return Effect.sync(() =>
      socket.destroy()
    )
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("timeout") }))

// Server-side events may trail the client seeing the close: wait for the server's own verdict (bounded).
const waitForServer = (srv: Server) =>
  Effect.promise(() => srv.firstDecision).pipe(
    Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the server never decided") })
  )

describe("Certificates", () => {
  // Issuing runs openssl a few times; share one CA and the certificates across tests.
  const setup = Effect.gen(function*() {
    const ca = yield* Certificates.makeCa()
    const serverCert = yield* Certificates.issue(ca, { identity: "greeter" })
    const clientCert = yield* Certificates.issue(ca, { identity: "caller" })
    const otherCa = yield* Certificates.makeCa({ name: "other CA" })
    const foreign = yield* Certificates.issue(otherCa, { identity: "caller" })
    return { ca, serverCert, clientCert, otherCa, foreign }
  })
  let fixtures: Effect.Effect.Success<typeof setup> | undefined
  const get = Effect.suspend(() =>
    fixtures === undefined ? Effect.tap(setup, (f) => (fixtures = f)) : Effect.succeed(fixtures)
  )

  it.effect("issues a certificate carrying the identity in SAN and CN, signed by the CA", () =>
    Effect.gen(function*() {
      const { ca, serverCert } = yield* get
      const cert = new crypto.X509Certificate(serverCert.certPem)
      const caCert = new crypto.X509Certificate(ca.certPem)
      expect(cert.verify(caCert.publicKey)).toBe(true)
      expect(cert.checkIssued(caCert)).toBe(true)
      expect(cert.subjectAltName).toContain("URI:spiffe://effect-micro/greeter")
      expect(cert.subjectAltName).toContain("IP Address:127.0.0.1")
      expect(cert.subjectAltName).toContain("DNS:localhost")
      expect(cert.subject).toContain("CN=greeter")
      expect(cert.ca).toBe(false)
      expect(caCert.ca).toBe(true)
      expect(Certificates.certificateIdentity(serverCert.certPem)).toBe("greeter")
      expect(serverCert.caPem).toBe(ca.certPem)
    }), 60_000)

  it.scoped("a CA-issued client connects and the server reads its identity", () =>
    Effect.gen(function*() {
      const { clientCert, serverCert } = yield* get
      const srv = yield* server(serverCert)
      const reply = yield* connect(srv.port, Certificates.tlsClientOptions(clientCert))
      expect(reply).toBe("identity=caller")
      expect(srv.rejected).toEqual([])
      // The client can also pin the server's identity instead of its host name.
      const pinned = yield* connect(
        srv.port,
        Certificates.tlsClientOptions(clientCert, { expectedIdentity: "greeter" })
      )
      expect(pinned).toBe("identity=caller")
      const wrong = yield* Effect.either(
        connect(srv.port, Certificates.tlsClientOptions(clientCert, { expectedIdentity: "billing" }))
      )
      expect(Either.isLeft(wrong) && wrong.left.message).toContain("server identity is greeter, expected billing")
    }), 60_000)

  it.scoped("a certificate from another CA is rejected", () =>
    Effect.gen(function*() {
      const { foreign, serverCert } = yield* get
      const srv = yield* server(serverCert)
      // The foreign client trusts our CA (so it gets as far as presenting its certificate).
      const result = yield* Effect.either(
        connect(srv.port, { ...Certificates.tlsClientOptions(foreign), ca: [serverCert.caPem] })
      )
      expect(Either.isLeft(result)).toBe(true)
      yield* waitForServer(srv)
      expect(srv.accepted).toEqual([])
      expect(srv.rejected.length).toBe(1)
    }), 60_000)

  it.scoped("a self-signed certificate is rejected", () =>
    Effect.gen(function*() {
      const { serverCert } = yield* get
      const srv = yield* server(serverCert)
      // A CA certificate is self-signed; present it as a client certificate.
      const lone = yield* Certificates.makeCa({ name: "caller" })
      const result = yield* Effect.either(
        connect(srv.port, { key: lone.keyPem, cert: lone.certPem, ca: [serverCert.caPem] })
      )
      expect(Either.isLeft(result)).toBe(true)
      yield* waitForServer(srv)
      expect(srv.accepted).toEqual([])
      expect(srv.rejected.length).toBe(1)
    }), 60_000)

  it.scoped("a client without a certificate is rejected", () =>
    Effect.gen(function*() {
      const { serverCert } = yield* get
      const srv = yield* server(serverCert)
      const result = yield* Effect.either(connect(srv.port, { ca: [serverCert.caPem] }))
      expect(Either.isLeft(result)).toBe(true)
      yield* waitForServer(srv)
      expect(srv.accepted).toEqual([])
      expect(srv.rejected.join()).toMatch(/did not return a certificate/)
    }), 60_000)

  it.scoped("a client refuses a server whose certificate is not from its CA", () =>
    Effect.gen(function*() {
      const { clientCert, foreign } = yield* get
      const srv = yield* server({ ...foreign, caPem: clientCert.caPem })
      const result = yield* Effect.either(connect(srv.port, Certificates.tlsClientOptions(clientCert)))
      expect(Either.isLeft(result) && result.left.message).toMatch(/certificate/i)
    }), 60_000)

  it.scoped("Ed25519 CA and certificates work with node:tls", () =>
    Effect.gen(function*() {
      const ca = yield* Certificates.makeCa({ keyType: "ed25519" })
      const serverCert = yield* Certificates.issue(ca, { identity: "greeter", keyType: "ed25519" })
      const clientCert = yield* Certificates.issue(ca, { identity: "caller.v2", keyType: "ed25519" })
      const srv = yield* server(serverCert)
      expect(yield* connect(srv.port, Certificates.tlsClientOptions(clientCert))).toBe("identity=caller.v2")
    }), 60_000)

  it.effect("invalid names fail with InvalidInput before openssl runs", () =>
    Effect.gen(function*() {
      const { ca } = yield* get
      for (const identity of ["", "a/b", "x\nCN=evil", "-rf", "a b"]) {
        const error = yield* Effect.flip(Certificates.issue(ca, { identity }))
        expect(error.reason).toBe("InvalidInput")
      }
      const badHost = yield* Effect.flip(Certificates.issue(ca, { identity: "ok", hosts: ["evil\n[alt]"] }))
      expect(badHost.reason).toBe("InvalidInput")
      const badDays = yield* Effect.flip(Certificates.makeCa({ days: 0 }))
      expect(badDays.reason).toBe("InvalidInput")
    }), 60_000)

  it.effect("a broken CA key fails with OpensslFailed", () =>
    Effect.gen(function*() {
      const { ca } = yield* get
      const error = yield* Effect.flip(Certificates.issue({ ...ca, keyPem: "garbage" }, { identity: "x" }))
      expect(error.reason).toBe("OpensslFailed")
    }), 60_000)
})
