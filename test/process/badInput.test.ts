/**
 * Bad input on the wire, against a real server process: malformed, truncated and oversized frames,
 * unknown endpoints, undecodable payloads, a wrong preface. Each gets a typed error (or a closed
 * connection for a non-protocol peer) and the server keeps serving everyone else.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as net from "node:net"
import { Client } from "../../src/index.js"
import * as wire from "../../src/internal/rpc/wire.js"
import { Testing } from "../support/contract.js"
import { spawnFixture } from "../support/processes.js"
import { clientLayer, errorOf, header, rawPeer, waitFor } from "../support/rawPeer.js"

const fixture = "test/process/fixtures/rpcServer.ts"
const MAX = 64 * 1024

const stillServes = (address: string) =>
  Effect.gen(function*() {
    const testing = yield* Client.make(Testing, { service: "testing" })
    expect(yield* testing.Hello({ name: "still here" })).toBe("Hello, still here!")
  }).pipe(Effect.provide(clientLayer(address)))

describe("bad input on the wire", () => {
  it.scopedLive("each malformed request gets a typed error and the connection keeps working", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "strict", MAX_FRAME_SIZE: String(MAX) })
      const peer = yield* rawPeer(server.ready)
      const send = (frame: Buffer) => peer.socket.write(frame)
      const frameFor = (streamId: number) => waitFor(() => peer.frames.find((f) => f.streamId === streamId))
      send(wire.PREFACE)

      // 1. unknown endpoint → NotFound
      send(wire.encodeOpen(1, wire.OpenFlag.Unary, 0, 32, header("Nope"), Buffer.from("{}")))
      const notFound = yield* frameFor(1)
      expect(notFound.type).toBe(wire.FrameType.Error)
      expect(errorOf(notFound)).toMatchObject({ _tag: "NotFound", code: 404 })

      // 2. undecodable payload (bad JSON, then JSON failing the schema) → BadRequest
      send(wire.encodeOpen(3, wire.OpenFlag.Unary, 0, 32, header("Hello"), Buffer.from("{not json")))
      expect(errorOf(yield* frameFor(3))).toMatchObject({ _tag: "BadRequest", code: 400 })
      send(wire.encodeOpen(5, wire.OpenFlag.Unary, 0, 32, header("Hello"), Buffer.from(`{"name":42}`)))
      expect(errorOf(yield* frameFor(5))).toMatchObject({ _tag: "BadRequest" })

      // 3. unknown content-type → BadRequest naming the supported ones
      send(wire.encodeOpen(7, wire.OpenFlag.Unary, 0, 32, header("Hello", "text/csv"), Buffer.from("x")))
      const badType = errorOf(yield* frameFor(7))
      expect(badType._tag).toBe("BadRequest")
      expect(badType.detail).toContain("application/json")

      // 4. malformed OPEN (header length beyond the frame) → BadRequest
      const malformed = Buffer.alloc(wire.FRAME_HEADER + 11)
      malformed.writeUInt32BE(malformed.byteLength - 4, 0)
      malformed[4] = wire.FrameType.Open
      malformed.writeUInt32BE(9, 5)
      malformed.writeUInt16BE(500, wire.FRAME_HEADER + 9)
      send(malformed)
      expect(errorOf(yield* frameFor(9))).toMatchObject({ _tag: "BadRequest" })

      // 5. oversized frame → BadRequest for that stream, the bytes are skipped
      const big = Buffer.alloc(MAX + 1000, 0x20)
      send(wire.encodeOpen(11, wire.OpenFlag.Unary, 0, 32, header("Hello"), big))
      const oversized = errorOf(yield* frameFor(11))
      expect(oversized._tag).toBe("BadRequest")
      expect(oversized.detail).toContain("exceeds the limit")

      // ... and the same connection still serves a valid call afterwards
      send(wire.encodeOpen(13, wire.OpenFlag.Unary, 0, 32, header("Hello"), Buffer.from(`{"name":"ok"}`)))
      const reply = yield* frameFor(13)
      expect(reply.type).toBe(wire.FrameType.Reply)
      expect(JSON.parse(reply.payload.toString())).toBe("Hello, ok!")

      // 6. unknown frame types are ignored; PING is answered
      send(wire.encodeBody(0x42, 15, Buffer.from("??")))
      send(wire.encodeBody(wire.FrameType.Ping, 0, Buffer.from("12345678")))
      const pong = yield* waitFor(() => peer.frames.find((f) => f.type === wire.FrameType.Pong))
      expect(pong.payload.toString()).toBe("12345678")

      yield* stillServes(server.ready)
    }))

  it.scopedLive("a truncated frame followed by a hang-up does not disturb the server", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "truncated" })
      const peer = yield* rawPeer(server.ready)
      peer.socket.write(wire.PREFACE)
      const frame = wire.encodeOpen(1, wire.OpenFlag.Unary, 0, 32, header("Hello"), Buffer.from(`{"name":"cut"}`))
      peer.socket.end(frame.subarray(0, frame.byteLength - 5))
      yield* Effect.promise(() => peer.closed)
      yield* stillServes(server.ready)
    }))

  it.scopedLive("a peer that does not speak the protocol is disconnected", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "preface" })
      const peer = yield* rawPeer(server.ready)
      peer.socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
      yield* Effect.promise(() => peer.closed)
      expect(peer.frames).toEqual([])
      yield* stillServes(server.ready)
    }))

  it.scopedLive("a client that ignores flow control gets a typed error, not unbounded buffering", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "flow" })
      const peer = yield* rawPeer(server.ready)
      peer.socket.write(wire.PREFACE)
      peer.socket.write(wire.encodeOpen(1, 0, 0, 32, header("Sum"), undefined))
      // Far beyond the window, in one write.
      const burst = Buffer.concat(
        Array.from({ length: 5000 }, () => wire.encodeBody(wire.FrameType.Data, 1, Buffer.from("1")))
      )
      peer.socket.write(burst)
      const frame = yield* waitFor(() => peer.frames.find((f) => f.streamId === 1))
      // The burst is parsed before the handler consumes anything, so the window (32) is exceeded.
      expect(frame.type).toBe(wire.FrameType.Error)
      expect(errorOf(frame)).toMatchObject({ _tag: "BadRequest", detail: "flow-control window exceeded" })
      yield* stillServes(server.ready)
    }))

  it.scopedLive("a server that ignores the client's flow-control window fails the stream with a typed error", () =>
    Effect.gen(function*() {
      // A fake server: answers the OPEN of a server-streaming call with far more DATA than the client's
      // window (32) allows, without waiting for CREDIT.
      const sockets: Array<net.Socket> = []
      const fake = net.createServer((socket) => {
        sockets.push(socket)
        socket.on("error", () => {})
        let received = 0
        socket.on("data", (chunk) => {
          // Once the preface and the OPEN frame are in (they may come in separate writes).
          const before = received
          received += chunk.byteLength
          if (
            before > wire.PREFACE.byteLength + wire.FRAME_HEADER ||
            received <= wire.PREFACE.byteLength + wire.FRAME_HEADER
          ) return
          const burst = Array.from(
            { length: 500 },
            (_, i) => wire.encodeBody(wire.FrameType.Data, 1, Buffer.from(String(i)))
          )
          socket.write(Buffer.concat(burst))
        })
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void fake.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () =>
          Effect.sync(() => {
            for (const socket of sockets) socket.destroy()
            fake.close()
          })
      )
      const address = `127.0.0.1:${(fake.address() as net.AddressInfo).port}`
      const error = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        return yield* testing.Countdown({ from: 3 }).pipe(Stream.runDrain, Effect.flip)
      }).pipe(Effect.provide(clientLayer(address)), Effect.timeout("5 seconds"))
      expect(error).toMatchObject({ _tag: "TransportError", reason: "protocol" })
      expect(String((error as { detail?: string }).detail)).toContain("flow-control window")
    }))

  it.scopedLive("a client that hangs up mid-call has its handler interrupted on the server", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "hangup" })
      const peer = yield* rawPeer(server.ready)
      peer.socket.write(wire.PREFACE)
      peer.socket.write(
        wire.encodeOpen(1, wire.OpenFlag.Unary, 0, 32, header("Sleep"), Buffer.from(`{"millis":60000}`))
      )
      yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-started:60000"))
      peer.socket.destroy()
      yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-interrupted:60000", 5000))
      yield* stillServes(server.ready)
    }))
})
