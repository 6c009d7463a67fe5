/**
 * Large messages (1 MiB and 4 MiB) round trip intact, unary and streamed, over TCP, mutual TLS and over the memory
 * transport with the byte stream re-cut into many small chunks (every frame reassembled from pieces); and the
 * framing below: bodies of `LARGE_BODY` bytes or more leave uncopied (head and body as one writev).
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Certificates, Client, Codec, Contract, Registry, Selector, Server, Transport } from "../src/index.js"
import type { FrameHandler } from "../src/internal/rpc/wire.js"
import {
  BatchWriter,
  bodyFrame,
  encodeBody,
  encodeError,
  encodeOpen,
  errorFrame,
  FrameDecoder,
  FrameType,
  LARGE_BODY,
  openFrame
} from "../src/internal/rpc/wire.js"
import * as TlsTransport from "../src/TlsTransport.js"

const Large = RpcGroup.make(
  Rpc.make("EchoBytes", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf }),
  Rpc.make("EchoText", { payload: { data: Schema.String }, success: Schema.String }),
  // Server stream: the request's bytes three times (raw bytes carry no other fields).
  Rpc.make("Repeat", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf, stream: true }),
  Contract.bidi("ChatBytes", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf })
)

const handlers = Large.toLayer({
  EchoBytes: (bytes) => Effect.succeed(bytes),
  EchoText: ({ data }) => Effect.succeed(data),
  Repeat: (bytes) => Stream.make(bytes, bytes, bytes),
  ChatBytes: (messages) => messages
})

const MiB = 1024 * 1024
const maxFrameSize = 8 * MiB
const octetStream = { contentType: "application/octet-stream" } as const

/** A pattern that differs at every offset modulo 251, so a shifted, repeated or truncated copy shows. */
const pattern = (size: number, seed: number): Uint8Array => {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i + seed) % 251
  return bytes
}

const sameBytes = (actual: Uint8Array, expected: Uint8Array) => {
  expect(actual.byteLength).toBe(expected.byteLength)
  expect(Buffer.compare(Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength), expected)).toBe(0)
}

// Mutual TLS: the corked writev of a large frame goes through the TLS socket (one certificate, issued once).
const issued = Effect.runPromise(
  Effect.flatMap(Certificates.makeCa(), (ca) => Certificates.issue(ca, { identity: "large-test" }))
)
const tls = Layer.unwrapEffect(
  Effect.map(
    Effect.promise(() => issued),
    (certificate) => TlsTransport.layer(TlsTransport.optionsFromIssued(certificate))
  )
)

for (
  const [transportName, transport, address] of [
    ["TCP transport", Transport.layerTcp(), "127.0.0.1:0"],
    ["mutual-TLS transport", tls, "127.0.0.1:0"],
    [
      "memory transport, the byte stream re-cut into pieces of ≤ 64 KiB",
      Transport.layerMemoryWith({ fragment: { seed: 3, maxChunkBytes: 64 * 1024 } }),
      "memory:0"
    ]
  ] as const
) {
  const env = Layer.mergeAll(
    Server.layer(Large, { name: "large", address, maxFrameSize }).pipe(Layer.provide(handlers)),
    Client.layer({ maxFrameSize })
  ).pipe(Layer.provideMerge(Layer.mergeAll(transport, Registry.layerMemory, Codec.layer, Selector.layer)))

  describe(`large messages over the ${transportName}`, () => {
    it.scoped(
      "1 MiB and 4 MiB unary echoes (raw bytes and JSON) round trip intact, also concurrently",
      () =>
        Effect.gen(function*() {
          const bytes = yield* Client.make(Large, { service: "large", ...octetStream })
          const json = yield* Client.make(Large, { service: "large" })
          for (const size of [MiB, 4 * MiB]) {
            const sent = pattern(size, size >> 20)
            sameBytes(yield* bytes.EchoBytes(sent), sent)
            const text = "é".repeat(size / 4) + "x".repeat(size / 2)
            expect(yield* json.EchoText({ data: text })).toBe(text)
          }
          // Several in flight on one connection: their frames interleave with nothing else in between.
          const many = [1, 2, 3, 4].map((seed) => pattern(MiB + seed, seed))
          const echoed = yield* Effect.forEach(many, (sent) => bytes.EchoBytes(sent), { concurrency: "unbounded" })
          echoed.forEach((reply, i) => sameBytes(reply, many[i]!))
        }).pipe(Effect.provide(env)),
      60_000
    )

    it.scoped(
      "1 MiB and 4 MiB stream messages round trip intact (server stream and bidi)",
      () =>
        Effect.gen(function*() {
          const large = yield* Client.make(Large, { service: "large", ...octetStream })
          for (const size of [MiB, 4 * MiB]) {
            const sent = pattern(size, 7)
            const repeated = yield* Stream.runCollect(large.Repeat(sent))
            expect(Chunk.size(repeated)).toBe(3)
            for (const reply of repeated) sameBytes(reply, sent)
            const messages = [pattern(size, 1), pattern(size, 2), pattern(size, 3)]
            const replies = Chunk.toReadonlyArray(
              yield* Stream.runCollect(large.ChatBytes(Stream.fromIterable(messages)))
            )
            expect(replies.length).toBe(3)
            replies.forEach((reply, i) => sameBytes(reply, messages[i]!))
          }
        }).pipe(Effect.provide(env)),
      60_000
    )
  })
}

describe("wire: frames with large bodies", () => {
  const collect = () => {
    const frames: Array<{ type: number; streamId: number; payload: Buffer }> = []
    const handler: FrameHandler = {
      onFrame: (type, streamId, payload) => frames.push({ type, streamId, payload: Buffer.from(payload) }),
      onOversized: () => {
        throw new Error("oversized")
      },
      onProtocolError: (detail) => {
        throw new Error(detail)
      },
      onFrameDefect: (_type, _streamId, defect) => {
        throw defect
      }
    }
    return { frames, decoder: new FrameDecoder(handler, maxFrameSize, false) }
  }

  it("a large body is handed to the writev sink uncopied, with bytes identical to the copying encoders", () => {
    const header = Buffer.from([0, 1, 0x61, 0, 1, 0x62, 0, 1, 0x63, 0, 0])
    const body = pattern(LARGE_BODY + 5, 1)
    const small = pattern(100, 2)
    const writes: Array<ReadonlyArray<Uint8Array>> = []
    const copied: Array<Buffer> = []
    const writer = new BatchWriter((data) => copied.push(data), (pieces) => writes.push(pieces))
    writer.write(encodeBody(FrameType.Data, 1, small))
    writer.writeFrame(openFrame(3, 1, 5000, 32, header, body))
    writer.writeFrame(bodyFrame(FrameType.Reply, 5, body))
    writer.writeFrame(errorFrame(7, 1, body))
    writer.flush()
    expect(copied).toEqual([])
    // (Flushed early every 64 KiB, as batches always are.) The body itself, not a copy, is in the writevs,
    // once per frame that carries it.
    const pieces = writes.flat()
    expect(pieces.filter((piece) => piece === body).length).toBe(3)
    const expected = Buffer.concat([
      encodeBody(FrameType.Data, 1, small),
      encodeOpen(3, 1, 5000, 32, header, body),
      encodeBody(FrameType.Reply, 5, body),
      encodeError(7, 1, body)
    ])
    expect(Buffer.concat(pieces).equals(expected)).toBe(true)
    // Below LARGE_BODY frames are single buffers, batched into one copying write as before.
    expect(bodyFrame(FrameType.Data, 1, small)).toBeInstanceOf(Buffer)
  })

  it("without a writev sink, a batch holding a large body is concatenated into one write", () => {
    const body = pattern(LARGE_BODY, 3)
    const copied: Array<Buffer> = []
    const writer = new BatchWriter((data) => copied.push(data))
    writer.writeFrame(bodyFrame(FrameType.Data, 9, body))
    writer.flush()
    expect(copied.length).toBe(1)
    expect(copied[0]!.equals(encodeBody(FrameType.Data, 9, body))).toBe(true)
  })

  it("a 4 MiB frame split over 1,024 reads (and reads holding the end of one frame and the next) decodes intact", () => {
    const { decoder, frames } = collect()
    const big = pattern(4 * MiB, 5)
    const stream = Buffer.concat([
      encodeBody(FrameType.Data, 1, big),
      encodeBody(FrameType.Data, 3, pattern(10, 1)),
      encodeBody(FrameType.Reply, 5, big)
    ])
    const piece = 4096 + 3 // not aligned with the frames
    for (let offset = 0; offset < stream.byteLength; offset += piece) {
      decoder.push(stream.subarray(offset, offset + piece))
    }
    expect(frames.map((f) => [f.type, f.streamId, f.payload.byteLength])).toEqual([
      [FrameType.Data, 1, 4 * MiB],
      [FrameType.Data, 3, 10],
      [FrameType.Reply, 5, 4 * MiB]
    ])
    sameBytes(frames[0]!.payload, big)
    sameBytes(frames[2]!.payload, big)
    expect(decoder.midFrame).toBe(false)
  })
})
