import { describe, expect, it } from "@effect/vitest"
import { BatchWriter, MAX_BATCH_FRAMES } from "../../src/internal/rpc/wire.js"

const frame = (i: number) => Buffer.from([i])
const turn = () => new Promise<void>((resolve) => setImmediate(resolve))
/** Until the event loop has waited for I/O: a timer makes it block in its poll phase. */
const loopWaits = () => new Promise<void>((resolve) => setTimeout(resolve, 5))

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

  it("frames from later callbacks leave together in the check phase until the loop waits again", async () => {
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
    // A turn that follows without the loop waiting is the same busy stretch: held for the check phase.
    writer.write(frame(10))
    await Promise.resolve()
    expect(writes.length).toBe(2)
    await turn()
    expect(writes.at(-1)).toEqual(Buffer.from([10]))
    // Once the loop has waited, the next frame is not held back.
    await loopWaits()
    writer.write(frame(11))
    await Promise.resolve()
    expect(writes.at(-1)).toEqual(Buffer.from([11]))
  })

  it(`every ${MAX_BATCH_FRAMES} frames leave at once (the peer starts on them)`, () => {
    const writes: Array<Buffer> = []
    const writer = new BatchWriter((data) => writes.push(data))
    for (let i = 0; i < MAX_BATCH_FRAMES * 2 + 1; i++) writer.write(frame(i))
    expect(writes.map((w) => w.length)).toEqual([MAX_BATCH_FRAMES, MAX_BATCH_FRAMES])
  })
})
