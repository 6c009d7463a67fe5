/** The mutual-TLS transport in one process on 127.0.0.1: who may connect, what each side learns, typed failures. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as net from "node:net"
import type { Transport } from "../src/index.js"
import { Certificates, Client, Codec, Metadata, Registry, Selector, Server } from "../src/index.js"
import * as TlsTransport from "../src/TlsTransport.js"

interface Certs {
  readonly server: Certificates.Issued
  readonly client: Certificates.Issued
  readonly foreignClient: Certificates.Issued
  readonly foreignServer: Certificates.Issued
}

// Issued once for the file: openssl runs take a while.
const certs: Promise<Certs> = Effect.runPromise(Effect.gen(function*() {
  const ca = yield* Certificates.makeCa()
  const other = yield* Certificates.makeCa({ name: "Other CA" })
  return {
    server: yield* Certificates.issue(ca, { identity: "peer-server" }),
    client: yield* Certificates.issue(ca, { identity: "peer-client" }),
    // Claims a name our CA also issues; only the signature tells them apart.
    foreignClient: yield* Certificates.issue(other, { identity: "peer-client" }),
    foreignServer: yield* Certificates.issue(other, { identity: "peer-server" })
  }
}))
const getCerts = Effect.promise(() => certs)

const Peer = RpcGroup.make(
  Rpc.make("Who", { success: Schema.Struct({ peer: Schema.NullOr(Schema.String) }) })
)
const PeerLive = Peer.toLayer({
  Who: () => Effect.map(Effect.orDie(Metadata.currentCall), (call) => ({ peer: call.peer.identity ?? null }))
})

/** A TLS server on a free port; returns its address. */
const serve = (issued: Certificates.Issued, seen?: Array<string | undefined>) =>
  Effect.gen(function*() {
    const middleware: Server.Middleware = (call, next) =>
      Effect.zipRight(Effect.sync(() => seen?.push(call.peer.identity)), next)
    const context = yield* Layer.build(
      Server.layer(Peer, { name: "peer", address: "127.0.0.1:0", register: false }).pipe(
        Layer.provide(PeerLive),
        Layer.provide(Server.layerMiddleware(middleware)),
        Layer.provide(
          Layer.mergeAll(TlsTransport.layer(TlsTransport.optionsFromIssued(issued)), Registry.layerMemory, Codec.layer)
        )
      )
    )
    return (yield* Effect.provide(Server.Server, context)).address
  })

const call = (address: string, options: TlsTransport.TlsOptions) =>
  Effect.flatMap(Client.make(Peer, { service: "peer", node: address, retry: false }), (client) => client.Who()).pipe(
    Effect.provide(
      Client.layer().pipe(
        Layer.provide(Layer.mergeAll(TlsTransport.layer(options), Registry.layerMemory, Codec.layer, Selector.layer))
      )
    )
  )

describe("TlsTransport", () => {
  it.scopedLive("a CA-issued client calls; handler and middleware see its identity", () =>
    Effect.gen(function*() {
      const { client, server } = yield* getCerts
      const seen: Array<string | undefined> = []
      const address = yield* serve(server, seen)
      expect(yield* call(address, TlsTransport.optionsFromIssued(client))).toEqual({ peer: "peer-client" })
      expect(seen).toEqual(["peer-client"])
    }))

  it.scopedLive("transport level: both sides learn the other's identity", () =>
    Effect.gen(function*() {
      const { client, server } = yield* getCerts
      const serverTransport = TlsTransport.make(TlsTransport.optionsFromIssued(server))
      const accepted: Array<Transport.Connection> = []
      const listener = yield* serverTransport.listen("127.0.0.1:0", (connection) => accepted.push(connection))
      const clientTransport = TlsTransport.make(
        TlsTransport.optionsFromIssued(client, { verifyServer: () => "peer-server" })
      )
      const connection = yield* clientTransport.dial(listener.address)
      expect(connection.peerIdentity).toBe("peer-server")
      const received = yield* Effect.async<string>((resume) => {
        const poll = setInterval(() => {
          const conn = accepted[0]
          if (conn === undefined) return
          clearInterval(poll)
          conn.onData((chunk) => resume(Effect.succeed(chunk.toString())))
          connection.write(Buffer.from("hello"))
        }, 5)
        return Effect.sync(() => clearInterval(poll))
      }).pipe(Effect.timeout("5 seconds"))
      expect(received).toBe("hello")
      expect(accepted[0]!.peerIdentity).toBe("peer-client")
      connection.destroy()
    }))

  it.scopedLive("a client with a certificate from another CA, or none, is refused with a TransportError (dial)", () =>
    Effect.gen(function*() {
      const { client, foreignClient, server } = yield* getCerts
      const address = yield* serve(server)
      const foreign = yield* Effect.flip(
        call(address, TlsTransport.optionsFromIssued({ ...foreignClient, caPem: client.caPem }))
      )
      expect(foreign).toMatchObject({ _tag: "TransportError", reason: "dial", notDelivered: true })
      const none = yield* Effect.flip(call(address, { ca: client.caPem }))
      expect(none).toMatchObject({ _tag: "TransportError", reason: "dial" })
      expect(none.detail).toMatch(/certificate/)
      // the server keeps serving
      expect(yield* call(address, TlsTransport.optionsFromIssued(client))).toEqual({ peer: "peer-client" })
    }))

  it.scopedLive("dialling a server whose certificate comes from another CA fails with a TransportError (dial)", () =>
    Effect.gen(function*() {
      const { client, foreignServer } = yield* getCerts
      const address = yield* serve(foreignServer)
      const error = yield* Effect.flip(TlsTransport.make(TlsTransport.optionsFromIssued(client)).dial(address))
      expect(error).toMatchObject({ _tag: "TransportError", reason: "dial", notDelivered: true })
      expect(error.detail).toContain("TLS dial")
    }))

  it.scopedLive("verifyServer: a server with another identity than expected is refused; 'ca' accepts any CA-issued one", () =>
    Effect.gen(function*() {
      const { client, server } = yield* getCerts
      const address = yield* serve(server)
      const wrong = yield* Effect.flip(
        call(address, TlsTransport.optionsFromIssued(client, { verifyServer: () => "billing" }))
      )
      expect(wrong).toMatchObject({ _tag: "TransportError", reason: "dial" })
      expect(wrong.detail).toContain("expected billing")
      // "localhost:port" is in the certificate; an address it does not list needs "ca" (or an identity)
      const port = address.split(":")[1]
      expect(yield* call(`localhost:${port}`, TlsTransport.optionsFromIssued(client))).toEqual({ peer: "peer-client" })
      expect(yield* call(address, TlsTransport.optionsFromIssued(client, { verifyServer: "ca" }))).toEqual({
        peer: "peer-client"
      })
    }))

  it.scopedLive("a plain-TCP client or a stalled handshake does not disturb the server", () =>
    Effect.gen(function*() {
      const { client, server } = yield* getCerts
      const address = yield* serve(server)
      const [host, port] = address.split(":")
      // a peer that speaks plain TCP (the protocol preface, no TLS) and one that connects and says nothing
      const sockets = [net.connect(Number(port), host!), net.connect(Number(port), host!)]
      for (const socket of sockets) socket.on("error", () => {})
      yield* Effect.addFinalizer(() => Effect.sync(() => sockets.forEach((s) => s.destroy())))
      sockets[0]!.write(Buffer.from([0x45, 0x4d, 0x49, 0x43, 0x01]))
      expect(yield* call(address, TlsTransport.optionsFromIssued(client))).toEqual({ peer: "peer-client" })
    }))

  it.scopedLive("refused and timed-out dials are typed", () =>
    Effect.gen(function*() {
      const { client } = yield* getCerts
      const transport = TlsTransport.make(TlsTransport.optionsFromIssued(client, { connectTimeout: 300 }))
      // a port nobody listens on
      const free = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const s = net.createServer().listen(0, "127.0.0.1", () => {
            const port = (s.address() as net.AddressInfo).port
            s.close(() => resolve(port))
          })
        })
      )
      expect(yield* Effect.flip(transport.dial(`127.0.0.1:${free}`))).toMatchObject({
        _tag: "TransportError",
        reason: "refused"
      })
      // a TCP server that never answers the handshake
      const silent = net.createServer((socket) => socket.on("error", () => {}))
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve))),
        () => Effect.sync(() => silent.close())
      )
      const port = (silent.address() as net.AddressInfo).port
      const timedOut = yield* Effect.flip(transport.dial(`127.0.0.1:${port}`))
      expect(timedOut).toMatchObject({ _tag: "TransportError", reason: "dial" })
      expect(timedOut.detail).toContain("timed out")
      // a server without a certificate cannot listen
      const noCert = yield* Effect.flip(
        Effect.scoped(TlsTransport.make({ ca: client.caPem }).listen("127.0.0.1:0", () => {}))
      )
      expect(noCert).toMatchObject({ _tag: "TransportError" })
    }))
})
