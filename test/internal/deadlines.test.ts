/** The timing wheel behind call and publish deadlines, on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { DeadlineWheel } from "../../src/internal/rpc/deadlines.js"

const wheel = Effect.gen(function*() {
  const deadlines = new DeadlineWheel(yield* Effect.clock, 20)
  yield* Effect.forkScoped(deadlines.run)
  yield* Effect.yieldNow()
  return deadlines
})

/** A wheel whose driver's looks (sleeps) are counted. */
const countingWheel = Effect.gen(function*() {
  const clock = yield* Effect.clock
  let sleeps = 0
  const counting: Clock.Clock = Object.create(clock)
  ;(counting as { sleep: Clock.Clock["sleep"] }).sleep = (duration) => {
    sleeps++
    return clock.sleep(duration)
  }
  const deadlines = new DeadlineWheel(counting, 20)
  yield* Effect.forkScoped(deadlines.run)
  yield* Effect.yieldNow()
  return { deadlines, sleeps: () => sleeps }
})

/** Enough scheduler turns for a woken driver to look again and go back to sleep. */
const settle = Effect.yieldNow().pipe(Effect.repeatN(10))

describe("DeadlineWheel", () => {
  it.scoped("expires an entry within one tick after its deadline, not before", () =>
    Effect.gen(function*() {
      const deadlines = yield* wheel
      const expired: Array<string> = []
      deadlines.add(100, () => expired.push("a"))
      yield* TestClock.adjust("90 millis")
      expect(expired).toEqual([])
      yield* TestClock.adjust("40 millis")
      expect(expired).toEqual(["a"])
    }))

  it.scoped("a removed entry never fires; others in the same bucket still do", () =>
    Effect.gen(function*() {
      const deadlines = yield* wheel
      const expired: Array<string> = []
      const a = deadlines.add(50, () => expired.push("a"))
      deadlines.add(50, () => expired.push("b"))
      deadlines.remove(a)
      deadlines.remove(a)
      yield* TestClock.adjust("100 millis")
      expect(expired).toEqual(["b"])
    }))

  it.scoped("a bucket that collects many removed entries still fires the ones left, once each", () =>
    Effect.gen(function*() {
      const deadlines = yield* wheel
      const expired: Array<number> = []
      const entries = Array.from({ length: 300 }, (_, i) => deadlines.add(5_000, () => expired.push(i)))
      // Removed in an order that compacts the bucket several times on the way.
      entries.forEach((entry, i) => i % 50 === 7 ? undefined : deadlines.remove(entry))
      yield* TestClock.adjust("6 seconds")
      expect(expired).toEqual([7, 57, 107, 157, 207, 257])
    }))

  it.scoped("a removed entry lets go of its callback while its bucket still holds it", () =>
    Effect.gen(function*() {
      const deadlines = yield* wheel
      // A server's callback captures the whole call; the bucket keeps the entry until the bucket empties.
      const a = deadlines.add(50, () => {})
      const b = deadlines.add(50, () => {})
      deadlines.remove(a)
      expect(a.onExpire).toBeUndefined()
      expect(b.onExpire).toBeDefined()
    }))

  it.scoped("wakes from parked after a long empty spell, and keeps working across add/remove churn", () =>
    Effect.gen(function*() {
      const deadlines = yield* wheel
      const expired: Array<number> = []
      // Empty for a long time (parked), then churn: every entry removed right after being added.
      yield* TestClock.adjust("10 seconds")
      for (let i = 0; i < 1000; i++) deadlines.remove(deadlines.add(30, () => expired.push(-1)))
      yield* Effect.yieldNow()
      deadlines.add(30, () => expired.push(1))
      yield* TestClock.adjust("25 millis")
      expect(expired).toEqual([])
      yield* TestClock.adjust("30 millis")
      expect(expired).toEqual([1])
      // Empty again for several ticks, then a new entry still fires.
      yield* TestClock.adjust("1 second")
      deadlines.add(40, () => expired.push(2))
      yield* TestClock.adjust("80 millis")
      expect(expired).toEqual([1, 2])
    }))

  it.scoped("short entries added and removed between looks do not wake the driver each time", () =>
    Effect.gen(function*() {
      // A server: one idle timer minutes away, and calls with a 5 s deadline that finish in microseconds.
      const { deadlines, sleeps } = yield* countingWheel
      const expired: Array<string> = []
      deadlines.add(300_000, () => expired.push("idle"))
      // Let the driver settle on the idle timer.
      yield* TestClock.adjust("100 millis")
      const before = sleeps()
      for (let i = 0; i < 1000; i++) {
        // Done before the woken driver gets to run, as a fast call is.
        deadlines.remove(deadlines.add(5_000, () => expired.push("call")))
        yield* settle
        if (i % 100 === 0) yield* TestClock.adjust("1 millis")
      }
      // Once to move the look from the idle timer to the first call's bucket (measured before the fix: 1000).
      expect(sleeps() - before).toBeLessThanOrEqual(2)
      yield* TestClock.adjust("5 seconds")
      deadlines.add(100, () => expired.push("late"))
      yield* TestClock.adjust("200 millis")
      expect(expired).toEqual(["late"])
    }))

  it.scoped("under steady load the driver does not wake for every bucket that emptied", () =>
    Effect.gen(function*() {
      // A busy server: calls with a 5 s deadline every few milliseconds, each done long before it; every 20 ms
      // bucket fills and empties. Waking for each (a timer race per tick) made garbage that outlived young GCs.
      const { deadlines, sleeps } = yield* countingWheel
      const expired: Array<string> = []
      deadlines.add(300_000, () => expired.push("idle"))
      const traffic = (millis: number) =>
        Effect.gen(function*() {
          for (let t = 0; t < millis; t += 10) {
            deadlines.remove(deadlines.add(5_000, () => expired.push("call")))
            yield* TestClock.adjust("10 millis")
            yield* settle
          }
        })
      yield* traffic(6_000)
      const before = sleeps()
      yield* traffic(3_000)
      // About one look per deadline length (measured before the change: 150, one per 20 ms bucket).
      expect(sleeps() - before).toBeLessThanOrEqual(4)
      // A call still pending when its deadline passes fires, within a tick.
      deadlines.add(5_000, () => expired.push("slow"))
      yield* traffic(5_100)
      expect(expired).toEqual(["slow"])
    }))

  it.scoped("an entry added while the driver is between looking and waiting is not missed", () =>
    Effect.gen(function*() {
      // Other code adds an entry right after the driver woke (a publish failing on its timeout and the caller
      // publishing again): at some point the driver has already decided to sleep until `long` but is not yet
      // waiting to be woken. Try every point of that window.
      for (let turns = 0; turns < 24; turns++) {
        const deadlines = new DeadlineWheel(yield* Effect.clock, 20)
        const driver = yield* Effect.fork(deadlines.run)
        const expired: Array<string> = []
        deadlines.add(30_000, () => expired.push("long"))
        yield* TestClock.adjust("100 millis")
        const again = Effect.yieldNow().pipe(
          Effect.repeatN(turns),
          Effect.andThen(() => deadlines.add(100, () => expired.push("second")))
        )
        deadlines.add(100, () => {
          expired.push("first")
          Effect.runFork(again)
        })
        yield* TestClock.adjust("120 millis")
        yield* settle
        yield* TestClock.adjust("150 millis")
        expect({ turns, expired }).toEqual({ turns, expired: ["first", "second"] })
        yield* Fiber.interrupt(driver)
      }
    }))
})
