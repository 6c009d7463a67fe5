/**
 * The gRPC client's own HTTP/2 connection (src/plugins/grpc/internal/connection.ts) against gRPC servers written
 * here on bare `node:http2`, so each test controls the wire: flow control when the caller stops reading,
 * RST_STREAM CANCEL on cancellation and deadlines, servers that reset streams, drop the connection, answer
 * trailers-only or with a plain HTTP error, and request messages that span several DATA frames.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as http2 from "node:http2"
import { Certificates, Client, Codec, Registry, Selector, Transport } from "../src/index.js"
import * as GrpcClient from "../src/plugins/grpc/GrpcClient.js"
import * as GrpcServer from "../src/plugins/grpc/GrpcServer.js"
import { grpcTimeout, toGrpcHeaders } from "../src/plugins/grpc/internal/clientStatus.js"
import { eventually } from "./support/eventually.js"
import { failByMetadata, handlers, Interop } from "./support/grpcContract.js"

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void

/** A gRPC server on bare node:http2, closed (sessions destroyed) with the test's scope. */
const rawServer = (handler: Handler) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: http2.Http2Server; readonly address: string; readonly sessions: Set<any> }>(
      (resume) => {
        const server = http2.createServer()
        const sessions = new Set<http2.ServerHttp2Session>()
        server.on("session", (session) => {
          sessions.add(session)
          session.on("close", () => sessions.delete(session))
        })
        server.on("stream", (stream, headers) => {
          stream.on("error", () => {})
          handler(stream, headers)
        })
        server.listen(0, "127.0.0.1", () => {
          const port = (server.address() as { port: number }).port
          resume(Effect.succeed({ server, address: `127.0.0.1:${port}`, sessions }))
        })
      }
    ),
    ({ server, sessions }) =>
      Effect.async<void>((resume) => {
        for (const session of sessions) session.destroy()
        server.close(() => resume(Effect.void))
      })
  )

/** Protobuf bytes of a message whose field 1 is `text` (string), as `Chat`'s and the greeting's. */
const textMessage = (text: string): Buffer => {
  const bytes = Buffer.from(text)
  const length: Array<number> = []
  let n = bytes.length
  while (n > 0x7f) {
    length.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  length.push(n)
  return Buffer.concat([Buffer.from([0x0a, ...length]), bytes])
}

/** A gRPC message: compressed flag, u32 length, bytes. */
const framed = (message: Buffer): Buffer => {
  const prefix = Buffer.alloc(5)
  prefix.writeUInt32BE(message.length, 1)
  return Buffer.concat([prefix, message])
}

const okResponse = { ":status": 200, "content-type": "application/grpc" }

/** Sends `grpc-status: 0` trailers once the response body ends. */
const respondWithTrailers = (stream: http2.ServerHttp2Stream) => {
  stream.respond(okResponse, { waitForTrailers: true })
  stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "" }))
}

const Runtime = GrpcClient.layer().pipe(
  Layer.provideMerge(Layer.mergeAll(Registry.layerMemory, Selector.layer, Transport.layerTcp(), Codec.layer))
)

const register = (name: string, address: string) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.register({
      name,
      version: "1",
      metadata: {},
      endpoints: [],
      nodes: [{ id: `${name}-1`, address, metadata: { protocol: "grpc", "grpc.service": "interop.v1.Interop" } }]
    }))

describe("GrpcClient's HTTP/2 connection", () => {
  it("metadata headers and grpc-timeout values", () => {
    expect(toGrpcHeaders({ "X-Caller": "a", "trace-bin": "AAEC" })).toEqual({ "x-caller": "a", "trace-bin": "AAEC" })
    expect(toGrpcHeaders({ "bad key": "a" })).toContain("cannot be sent")
    expect(toGrpcHeaders({ te: "x" })).toContain("cannot be sent")
    expect(toGrpcHeaders({ "x-line": "a\nb" })).toContain("cannot be sent")
    expect(grpcTimeout(5000)).toBe("5000m")
    expect(grpcTimeout(0.4)).toBe("1m")
    expect(grpcTimeout(200_000_000)).toBe("200000S")
  })

  layer(Runtime, { timeout: 30_000, excludeTestServices: true })((it) => {
    it.scoped("a caller that stops reading stops the server (HTTP/2 flow control); all messages arrive in order", () =>
      Effect.gen(function*() {
        const total = 3000
        const text = "x".repeat(1024)
        let written = 0
        const { address } = yield* rawServer((stream) => {
          respondWithTrailers(stream)
          stream.once("data", () => {
            // Writes as fast as the HTTP/2 stream takes them, waiting for `drain` when it buffers.
            const pump = () => {
              while (written < total) {
                written++
                if (!stream.write(framed(textMessage(`${written}:${text}`)))) return void stream.once("drain", pump)
              }
              stream.end()
            }
            pump()
          })
        })
        yield* register("flood", address)
        const client = yield* Client.make(Interop, { service: "flood", retry: false, timeout: "20 seconds" })
        const pull = yield* Stream.toPull(client.Chat(Stream.make({ text: "go" })))
        const first = yield* pull
        expect(Chunk.unsafeHead(first).text).toBe(`1:${text}`)
        yield* Effect.sleep("300 millis")
        const stalled = written
        yield* Effect.sleep("300 millis")
        // Blocked well short of the end: our window (32 messages) + HTTP/2 windows and buffers, not 3 MB.
        expect(written).toBe(stalled)
        expect(written).toBeLessThan(400)
        let received = Chunk.size(first)
        let last = Number(Chunk.unsafeLast(first).text.split(":")[0])
        let ordered = true
        for (;;) {
          const chunk = yield* Effect.option(pull)
          if (Option.isNone(chunk)) break
          for (const item of chunk.value) {
            const n = Number(item.text.split(":")[0])
            if (n !== last + 1) ordered = false
            last = n
          }
          received += Chunk.size(chunk.value)
        }
        expect(ordered).toBe(true)
        expect(received).toBe(total)
      }))

    it.scoped("a server that does not read stops the caller's request stream (no credit while HTTP/2 buffers)", () =>
      Effect.gen(function*() {
        const { address } = yield* rawServer((stream) => {
          stream.pause() // never reads: the HTTP/2 windows close
          respondWithTrailers(stream)
        })
        yield* register("deaf", address)
        const client = yield* Client.make(Interop, { service: "deaf", retry: false, timeout: "20 seconds" })
        let produced = 0
        const text = "y".repeat(1024)
        const input = Stream.repeatEffect(Effect.sync(() => ({ text: `${++produced}:${text}` })))
        const fiber = yield* Effect.forkScoped(Stream.runDrain(client.Chat(input)))
        yield* Effect.sleep("400 millis")
        const stalled = produced
        yield* Effect.sleep("300 millis")
        expect(produced).toBe(stalled)
        // HTTP/2 windows (64 KiB) + the stream's buffer + the Sender's window of 32, not an unbounded flood.
        expect(produced).toBeLessThan(400)
        expect(fiber.unsafePoll()).toBeNull()
      }))

    it.scoped("request messages spanning DATA frames, and replies split across chunks, are framed correctly", () =>
      Effect.gen(function*() {
        const { address } = yield* rawServer((stream) => {
          const parts: Array<Buffer> = []
          stream.on("data", (chunk: Buffer) => parts.push(chunk))
          stream.on("end", () => {
            // Echo the request messages back, cut into 7-byte writes.
            const body = Buffer.concat(parts)
            respondWithTrailers(stream)
            let offset = 0
            const next = () => {
              if (offset >= body.length) return void stream.end()
              stream.write(body.subarray(offset, offset + 7), next)
              offset += 7
            }
            next()
          })
        })
        yield* register("frames", address)
        const client = yield* Client.make(Interop, { service: "frames", retry: false })
        const texts = ["a", "b".repeat(40_000), "", "c".repeat(300)]
        const echoed = yield* Stream.runCollect(client.Chat(Stream.fromIterable(texts.map((text) => ({ text })))))
        expect(Chunk.toReadonlyArray(echoed).map((item) => item.text)).toEqual(texts)
      }))

    it.scoped("a deadline or an interrupted consumer resets the stream with CANCEL", () =>
      Effect.gen(function*() {
        const resets = new Map<string, number | undefined>()
        const { address } = yield* rawServer((stream, headers) => {
          const path = String(headers[":path"])
          stream.on("close", () => resets.set(path, stream.rstCode))
          if (path.endsWith("/Count")) {
            respondWithTrailers(stream)
            stream.write(framed(Buffer.from([0x08, 0x01]))) // { n: 1 }, then nothing more
          }
          // Hello: never answers.
        })
        yield* register("hanging", address)
        const client = yield* Client.make(Interop, { service: "hanging", retry: false })
        const timedOut = yield* Effect.flip(client.Hello({ name: "Ada" }, { timeout: "200 millis" }))
        expect(timedOut).toMatchObject({ _tag: "Timeout" })
        const first = yield* Stream.runCollect(Stream.take(client.Count({ to: 10 }), 1))
        expect(Chunk.toReadonlyArray(first)).toEqual([{ n: 1 }])
        yield* eventually(
          Effect.sync(() => [resets.get("/interop.v1.Interop/Hello"), resets.get("/interop.v1.Interop/Count")]),
          (codes) => codes[0] === NGHTTP2_CANCEL && codes[1] === NGHTTP2_CANCEL
        )
      }))

    it.scoped("streams reset by the server, a dropped connection, trailers-only and HTTP errors", () =>
      Effect.gen(function*() {
        const { address } = yield* rawServer((stream, headers) => {
          const name = String(headers["x-case"] ?? "")
          switch (name) {
            case "internal":
              return stream.close(NGHTTP2_INTERNAL_ERROR)
            case "refused":
              return stream.close(NGHTTP2_REFUSED_STREAM)
            case "drop":
              return stream.session?.destroy()
            case "trailers-only":
              return stream.respond({ ...okResponse, "grpc-status": "5", "grpc-message": "no%20such%20user" }, {
                endStream: true
              })
            case "http":
              stream.respond({ ":status": 503, "content-type": "text/plain" })
              return stream.end("busy")
            default:
              respondWithTrailers(stream)
              stream.end(framed(Buffer.concat([textMessage("Hi"), Buffer.from([0x12, 0x00])])))
          }
        })
        yield* register("faulty", address)
        const client = yield* Client.make(Interop, { service: "faulty", retry: false })
        const call = (name: string) => Effect.flip(client.Hello({ name: "Ada" }, { metadata: { "x-case": name } }))
        expect(yield* call("internal")).toMatchObject({ _tag: "InternalServerError" })
        expect(yield* call("refused")).toMatchObject({ _tag: "TransportError", reason: "refused", notDelivered: true })
        expect(yield* call("trailers-only")).toMatchObject({ _tag: "NotFound", detail: "no such user" })
        expect(yield* call("http")).toMatchObject({ _tag: "ServiceUnavailable" })
        expect(yield* call("drop")).toMatchObject({ _tag: "TransportError", notDelivered: false })
        // A fresh session after the dropped one.
        expect(yield* client.Hello({ name: "Ada" })).toEqual({ greeting: "Hi", caller: "" })
      }))
  })

  it.scoped("tls: mutual TLS with a GrpcServer on grpc-js SSL credentials", () =>
    Effect.gen(function*() {
      const ca = yield* Certificates.makeCa()
      const server = yield* Certificates.issue(ca, { identity: "interop-server" })
      const client = yield* Certificates.issue(ca, { identity: "interop-client" })
      const credentials = grpc.ServerCredentials.createSsl(
        Buffer.from(ca.certPem),
        [{ private_key: Buffer.from(server.keyPem), cert_chain: Buffer.from(server.certPem) }],
        true
      )
      const Served = GrpcServer.layer(Interop, {
        name: "secure",
        package: "interop.v1",
        serviceName: "Interop",
        address: "127.0.0.1:0",
        credentials
      }).pipe(Layer.provide(handlers), Layer.provide(failByMetadata))
      const Secure = GrpcClient.layer({ tls: Certificates.tlsClientOptions(client) }).pipe(
        Layer.provideMerge(Layer.mergeAll(Registry.layerMemory, Selector.layer, Transport.layerTcp(), Codec.layer))
      )
      yield* Effect.gen(function*() {
        const secure = yield* Client.make(Interop, { service: "secure", retry: false })
        expect(yield* secure.Hello({ name: "Ada" })).toEqual({ greeting: "Hello Ada", caller: "" })
        const counted = yield* Stream.runCollect(secure.Count({ to: 3 }))
        expect(Chunk.size(counted)).toBe(3)
      }).pipe(Effect.provide(Layer.provideMerge(Served, Secure)))
    }), 30_000)
})
