/** The queue behind streaming calls' inbound messages. */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { Inbox } from "../../src/internal/rpc/inbox.js"

/** Runs `inbox.stream` to its end, recording the chunk sizes taken. */
const collect = <A, E>(inbox: Inbox<A, E>) => {
  const taken: Array<number> = []
  return Effect.map(
    Stream.runCollect(inbox.stream((size) => taken.push(size))),
    (items) => ({ items: Chunk.toReadonlyArray(items), taken })
  )
}

describe("Inbox", () => {
  it.effect("delivers what was offered before and after the reader started, in order, then ends", () =>
    Effect.gen(function*() {
      const inbox = new Inbox<number>()
      inbox.offer(1)
      inbox.offer(2)
      const reader = yield* Effect.fork(collect(inbox))
      yield* Effect.yieldNow()
      for (let i = 3; i <= 10; i++) inbox.offer(i)
      inbox.done(Exit.void)
      expect(inbox.offer(11)).toBe(false)
      const { items, taken } = yield* Fiber.join(reader)
      expect(items).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      // Every message is counted once for credit, in chunks of what had arrived when the reader looked.
      expect(taken.reduce((a, b) => a + b, 0)).toBe(10)
      expect(taken.length).toBeLessThanOrEqual(2)
    }))

  it.effect("a failure ends the stream after the messages queued before it", () =>
    Effect.gen(function*() {
      const inbox = new Inbox<string, string>()
      inbox.offer("a")
      inbox.offer("b")
      inbox.done(Exit.fail("boom"))
      inbox.done(Exit.void)
      const seen: Array<string> = []
      const exit = yield* Effect.exit(Stream.runForEach(inbox.stream(() => {}), (s) => Effect.sync(() => seen.push(s))))
      expect(seen).toEqual(["a", "b"])
      expect(exit).toEqual(Exit.fail("boom"))
    }))

  it.effect("a request stream read from two fibers at once: each message goes to one of them, both end", () =>
    Effect.gen(function*() {
      const inbox = new Inbox<number>()
      const stream = inbox.stream(() => {})
      const readers = yield* Effect.all([
        Effect.fork(Stream.runCollect(stream)),
        Effect.fork(Stream.runCollect(stream))
      ])
      yield* Effect.yieldNow()
      for (let i = 1; i <= 5; i++) {
        inbox.offer(i)
        yield* Effect.yieldNow()
      }
      inbox.done(Exit.void)
      const [a, b] = yield* Effect.all(readers.map(Fiber.join))
      expect([...Chunk.toReadonlyArray(a), ...Chunk.toReadonlyArray(b)].sort()).toEqual([1, 2, 3, 4, 5])
    }))

  it.effect("a reader interrupted while waiting is not resumed by a later offer", () =>
    Effect.gen(function*() {
      const inbox = new Inbox<number>("immediate")
      const reader = yield* Effect.fork(collect(inbox))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(reader)
      inbox.offer(1)
      // The pending wake-up (at setImmediate) finds no waiter; a new reader still gets the message.
      yield* Effect.promise(() => new Promise((resolve) => setImmediate(resolve)))
      inbox.done(Exit.void)
      const { items } = yield* collect(inbox)
      expect(items).toEqual([1])
    }))

  it.effect("\"immediate\" gathers offers from separate callbacks of one turn into one chunk", () =>
    Effect.gen(function*() {
      const inbox = new Inbox<number>("immediate")
      const taken: Array<number> = []
      const first = yield* Deferred.make<void>()
      const reader = yield* Effect.fork(
        Stream.runForEach(inbox.stream((size) => taken.push(size)), () => Deferred.succeed(first, undefined))
      )
      yield* Effect.yieldNow()
      // Three callbacks of the same turn (as grpc-js delivers request messages: one per tick).
      yield* Effect.promise(() =>
        new Promise<void>((resolve) => {
          setImmediate(() => {
            inbox.offer(1)
            process.nextTick(() => inbox.offer(2))
            queueMicrotask(() => {
              inbox.offer(3)
              resolve()
            })
          })
        })
      )
      yield* Deferred.await(first)
      inbox.done(Exit.void)
      yield* Fiber.join(reader)
      expect(taken).toEqual([3])
    }))
})
