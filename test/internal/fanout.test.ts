/** A store watcher that stops reading fails with "fell behind" instead of holding every change. */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { Store } from "../../src/index.js"
import { ChangeFanout } from "../../src/internal/store/fanout.js"

const ns = { database: "db", table: "t" }
const write = (key: string) => ({ type: "write" as const, database: "db", table: "t", key })

/** Pulls until the stream ends or fails: the keys it delivered, and its error if any. */
const drain = <E>(pull: Effect.Effect<Chunk.Chunk<{ readonly key: string }>, Option.Option<E>>) =>
  Effect.gen(function*() {
    const keys: Array<string> = []
    while (true) {
      const next = yield* Effect.either(pull)
      if (next._tag === "Right") { for (const change of next.right) keys.push(change.key) }
      else return { keys, error: Option.getOrUndefined(next.left) }
    }
  })

describe("ChangeFanout", () => {
  it.scoped("past its capacity a watcher gets what it had, then Unavailable; other watchers are not affected", () =>
    Effect.gen(function*() {
      const fanout = new ChangeFanout("test", 3)
      // A stream subscribes when first pulled: pull each once (the pull waits for the first change).
      const stalled = yield* Stream.toPull(fanout.watch(ns, ""))
      const other = yield* Stream.toPull(fanout.watch(ns, "b"))
      const first = yield* Effect.fork(Effect.zip(stalled, other, { concurrent: true }))
      while (fanout.size < 2) yield* Effect.yieldNow()
      fanout.publish(write("b0"))
      yield* first
      for (const key of ["a1", "a2", "a3", "a4", "b1", "b2"]) fanout.publish(write(key))
      // Dropped from the fan-out at once: nothing more is buffered for it.
      expect(fanout.size).toBe(1)
      const { error, keys } = yield* drain(stalled)
      expect(keys).toEqual(["a1", "a2", "a3"])
      expect(error).toMatchObject({ _tag: "StoreError", reason: "Unavailable" })
      expect(Chunk.toReadonlyArray(yield* other).map((c) => c.key)).toEqual(["b1", "b2"])
    }))

  it.scoped("the memory store: a watcher that never reads fails with Unavailable; writes and readers go on", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      const neverReads = yield* Stream.toPull(store.watch())
      const reader = yield* Stream.toPull(store.watch({ prefix: "k" }))
      // Subscribed by their first pull, which the probe answers.
      const first = yield* Effect.fork(Effect.zip(neverReads, reader, { concurrent: true }))
      yield* Effect.repeat(store.write({ key: "k-probe", value: new Uint8Array([0]) }), {
        until: () => first.unsafePoll() !== null
      })
      yield* first
      let seen = 0
      for (let i = 0; i < 10_050; i++) {
        yield* store.write({ key: `k${i}`, value: new Uint8Array([1]) })
        // The reader keeps up.
        if (i % 1000 === 999) seen += (yield* reader).length
      }
      seen += (yield* reader).length
      // Every write (plus probes that arrived after the first pull).
      expect(seen).toBeGreaterThanOrEqual(10_050)
      const { error, keys } = yield* drain(neverReads)
      expect(keys.length).toBe(10_000)
      expect(error).toMatchObject({ reason: "Unavailable" })
      expect((error as Store.StoreError).detail).toContain("fell more than 10000 changes behind")
    }).pipe(Effect.provide(Store.layerMemory())))
})
