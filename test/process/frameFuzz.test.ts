/**
 * Structure-aware frame fuzzing against a real server process (bounded: 100k frames, seeded, a few seconds).
 *
 * Frames are generated from the protocol's own shapes (OPENs for every endpoint and content-type, DATA,
 * END, CANCEL, CREDIT, PING, GOAWAY, SETTINGS, unknown types) with plausible and hostile field values, then
 * a share of them is mutated (bytes flipped, truncated, extended, length fields corrupted) and the stream
 * is cut into random chunks. Afterwards the server must be alive, its memory and file descriptors back
 * near where they started, no defect logged, and a well-behaved caller answered.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as net from "node:net"
import { Client } from "../../src/index.js"
import * as wire from "../../src/internal/rpc/wire.js"
import { Testing } from "../support/contract.js"
import { spawnFixture } from "../support/processes.js"
import { clientLayer, openFds, rssMb } from "../support/rawPeer.js"

const CONNECTIONS = 200
const FRAMES_PER_CONNECTION = 500

/** mulberry32: a small seeded PRNG, so a failure can be replayed from its seed. */
const prng = (seed: number) => () => {
  seed |= 0
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

const endpoints = ["Hello", "Echo", "Countdown", "Sum", "Chat", "Sleep", "Boom", "WhoAmI", "Bytes", "Nope", ""]
const contentTypes = [
  "application/json",
  "application/msgpack",
  "application/protobuf",
  "application/octet-stream",
  "text/x",
  ""
]

const frameGenerator = (random: () => number) => {
  const pick = <A>(items: ReadonlyArray<A>): A => items[Math.floor(random() * items.length)]!
  const int = (max: number) => Math.floor(random() * max)
  const bytes = (length: number) => Buffer.from(Array.from({ length }, () => int(256)))
  const u32 = () => pick([0, 1, 32, 0x7fffffff, 0xffffffff, int(0x100000000)])
  let nextStream = 1
  const streamId = () => random() < 0.7 ? Math.max(1, nextStream - 2 * int(4)) : u32()
  const body = (endpoint: string): Buffer => {
    switch (int(8)) {
      case 0:
        return Buffer.alloc(0)
      case 1:
        return bytes(int(64))
      case 2:
        return Buffer.from("[".repeat(2000 + int(3000)))
      case 3:
        return Buffer.concat([Buffer.alloc(1000 + int(3000), 0x91), Buffer.from([0x90])])
      default:
        return Buffer.from(JSON.stringify(
          endpoint === "Sleep" ? { millis: int(50) } : endpoint === "Countdown" ? { from: pick([3, 1e9, -1, "x"]) } : {
            name: pick(["a", "nobody", 42, null]),
            text: "t".repeat(int(100)),
            message: "boom"
          }
        ))
    }
  }
  const open = (): Buffer => {
    const endpoint = pick(endpoints)
    const metadata: Record<string, string> = {}
    for (let i = int(3); i > 0; i--) metadata[pick(["authorization", "x-a", "traceparent", ""])] = "v".repeat(int(300))
    const id = nextStream
    nextStream += 2
    const header = wire.encodeCallHeader({
      service: pick(["testing", "", "other"]),
      endpoint,
      contentType: pick(contentTypes),
      metadata
    })
    return wire.encodeOpen(
      id,
      pick([0, 1, 1, 1, int(256)]),
      pick([0, 0, 100, 5000, 0xffffffff]),
      u32(),
      header,
      body(endpoint)
    )
  }
  const generate = (): Buffer => {
    switch (int(10)) {
      case 0:
      case 1:
      case 2:
      case 3:
        return open()
      case 4:
        return wire.encodeBody(wire.FrameType.Data, streamId(), body("Sum"))
      case 5:
        return wire.encodeEmpty(pick([wire.FrameType.End, wire.FrameType.Cancel, wire.FrameType.GoAway]), streamId())
      case 6:
        return wire.encodeU32(wire.FrameType.Credit, streamId(), u32())
      case 7:
        return wire.encodeBody(pick([wire.FrameType.Ping, wire.FrameType.Pong]), 0, bytes(pick([8, 0, 3, 20])))
      case 8:
        return wire.encodeSettings(Array.from({ length: int(4) }, () => [int(5), u32()] as const))
      default:
        return wire.encodeBody(int(256), streamId(), bytes(int(40)))
    }
  }
  const mutate = (frame: Buffer): Buffer => {
    switch (int(6)) {
      case 0: {
        const copy = Buffer.from(frame)
        for (let i = 1 + int(4); i > 0; i--) copy[int(copy.byteLength)] = int(256)
        return copy
      }
      case 1:
        return frame.subarray(0, int(frame.byteLength))
      case 2:
        return Buffer.concat([frame, bytes(int(32))])
      case 3: {
        const copy = Buffer.from(frame)
        copy.writeUInt32BE(pick([0, 4, 5, 9, 0xffffffff, int(1 << 24)]), 0)
        return copy
      }
      default: {
        // A header field claiming more than the frame holds.
        const copy = Buffer.from(frame)
        if (copy.byteLength > 20) copy.writeUInt16BE(int(0x10000), 9 + 9)
        return copy
      }
    }
  }
  return { generate, mutate, random, int }
}

describe("frame fuzzing", () => {
  it.scopedLive(
    `${CONNECTIONS * FRAMES_PER_CONNECTION} structure-aware frames: the server survives, stays bounded, keeps serving`,
    () =>
      Effect.gen(function*() {
        const server = yield* spawnFixture("test/process/fixtures/rpcServer.ts", {
          NODE_ID: "fuzzed",
          LIMITS: JSON.stringify({ streamIdleTimeout: 1000, frameTimeout: 1000, handshakeTimeout: 1000 })
        })
        const pid = server.process.pid!
        const rssBefore = rssMb(pid)
        const fdsBefore = openFds(pid)
        const seed = Number(process.env.FUZZ_SEED ?? 20261205)
        const [host, port] = server.ready.split(":")
        let peakRss = rssBefore
        yield* Effect.promise(async () => {
          for (let c = 0; c < CONNECTIONS; c += 20) {
            // 20 connections at a time, each with its own seeded stream of frames.
            await Promise.all(Array.from({ length: 20 }, (_, k) =>
              new Promise<void>((resolve) => {
                const fuzz = frameGenerator(prng(seed + c + k))
                const socket = net.connect({ host: host!, port: Number(port) })
                socket.on("error", () => resolve())
                socket.on("data", () => {})
                socket.on("close", () => resolve())
                socket.on("connect", () => {
                  const frames: Array<Buffer> = [fuzz.random() < 0.95 ? wire.PREFACE : fuzz.mutate(wire.PREFACE)]
                  for (let i = 0; i < FRAMES_PER_CONNECTION; i++) {
                    const frame = fuzz.generate()
                    frames.push(fuzz.random() < 0.25 ? fuzz.mutate(frame) : frame)
                  }
                  const stream = Buffer.concat(frames)
                  for (let offset = 0; offset < stream.byteLength;) {
                    const length = 1 + fuzz.int(4096)
                    socket.write(stream.subarray(offset, offset + length))
                    offset += length
                  }
                  // Leave the connection open briefly (streams run, timers fire), then hang up.
                  setTimeout(() => socket.destroy(), 200 + fuzz.int(300))
                })
              })))
            peakRss = Math.max(peakRss, rssMb(pid))
          }
        })
        expect(server.process.exitCode).toBeNull()
        // Every connection is gone: descriptors return to where they were.
        yield* Effect.promise(async () => {
          const deadline = Date.now() + 5000
          while (openFds(pid) > fdsBefore + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
        })
        expect(openFds(pid)).toBeLessThanOrEqual(fdsBefore + 2)
        expect(peakRss - rssBefore).toBeLessThan(200)
        // A defect caught on the socket path is logged: none may have happened.
        expect(server.lines.filter((line) => line.includes("failed to handle") || line.includes("decoder failed")))
          .toEqual([])
        const reply = yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing" })
          return yield* testing.Hello({ name: "after the storm" })
        }).pipe(Effect.provide(clientLayer(server.ready)))
        expect(reply).toBe("Hello, after the storm!")
        if (process.env.FIGURES === "1") {
          process.stdout.write(
            `FIGURES fuzz: frames=${CONNECTIONS * FRAMES_PER_CONNECTION} peakRssGrowthMb=${
              Math.round(peakRss - rssBefore)
            }\n`
          )
        }
      }),
    90_000
  )
})
