/** The client's retry budget, on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { RetryBudget } from "../../src/internal/rpc/retryBudget.js"

const drain = (budget: RetryBudget): number => {
  let n = 0
  while (budget.tryWithdraw()) n++
  return n
}

describe("RetryBudget", () => {
  it.effect("starts full (burst), then allows `ratio` retries per call", () =>
    Effect.gen(function*() {
      const budget = new RetryBudget(yield* Effect.clock, { burst: 50, minRetriesPerSecond: 0 })
      expect(drain(budget)).toBe(50)
      for (let i = 0; i < 100; i++) budget.deposit()
      expect(drain(budget)).toBe(20) // 20 % of 100 calls
      for (let i = 0; i < 4; i++) budget.deposit()
      expect(budget.tryWithdraw()).toBe(false) // 0.8 of a retry is not one
      budget.deposit()
      expect(budget.tryWithdraw()).toBe(true)
    }))

  it.effect("the floor refills by time, up to the burst", () =>
    Effect.gen(function*() {
      const budget = new RetryBudget(yield* Effect.clock, { burst: 30, ratio: 0 })
      expect(drain(budget)).toBe(30)
      yield* TestClock.adjust("500 millis")
      expect(drain(budget)).toBe(5) // 10 per second
      yield* TestClock.adjust("1 hour")
      expect(drain(budget)).toBe(30)
    }))

  it.effect("deposits never exceed the burst", () =>
    Effect.gen(function*() {
      const budget = new RetryBudget(yield* Effect.clock, { burst: 3, minRetriesPerSecond: 0 })
      for (let i = 0; i < 1000; i++) budget.deposit()
      expect(drain(budget)).toBe(3)
    }))
})
