import { describe, expect, it } from "@effect/vitest"
import { BatchWriter, MAX_BATCH_FRAMES } from "../../src/internal/rpc/wire.js"

const frame = (i: number) => Buffer.from([i])
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("BatchWriter", () => {
  it("a lone frame leaves at the end of the microtask drain, before the loop turns", async () => {
    const writes: Array<Buffer> = []
    const writer = new BatchWriter((data) => writes.push(data))
    writer.write(frame(1))
    writer.write(frame(2))
    expect(writes).toEqual([])
    await Promise.resolve()
    expect(writes).toEqual([Buffer.from([1, 2])])
  })

  it("frames from later callbacks of the same turn leave together in its check phase", async () => {
    const writes: Array<Buffer> = []
    const writer = new BatchWriter((data) => writes.push(data))
    // Ten callbacks of one check phase, each writing one frame (requests arriving on ten sockets).
    await Promise.all(Array.from({ length: 10 }, (_, i) =>
      new Promise<void>((resolve) =>
        setImmediate(() => {
          writer.write(frame(i))
          resolve()
        })
      )))
    await turn()
    expect(writes).toEqual([Buffer.from([0]), Buffer.from([1, 2, 3, 4, 5, 6, 7, 8, 9])])
    // The next turn starts afresh: its first frame is not held back.
    writer.write(frame(10))
    await Promise.resolve()
    expect(writes.at(-1)).toEqual(Buffer.from([10]))
  })

  it(`every ${MAX_BATCH_FRAMES} frames leave at once (the peer starts on them)`, () => {
    const writes: Array<Buffer> = []
    const writer = new BatchWriter((data) => writes.push(data))
    for (let i = 0; i < MAX_BATCH_FRAMES * 2 + 1; i++) writer.write(frame(i))
    expect(writes.map((w) => w.length)).toEqual([MAX_BATCH_FRAMES, MAX_BATCH_FRAMES])
  })
})
