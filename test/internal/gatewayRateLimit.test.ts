/** The gateway's per-client token buckets, on explicit times (no clock, no sleeps). */
import { describe, expect, it } from "@effect/vitest"
import * as rateLimit from "../../src/internal/gateway/rateLimit.js"

describe("gateway rate limiter", () => {
  it("a burst, then refusals with the seconds to wait; tokens refill at the rate", () => {
    const limiter = rateLimit.make({ ratePerSecond: 2, burst: 3, maxClients: 100 })
    expect([0, 0, 0].map(() => limiter.take("a", 1000))).toEqual([0, 0, 0])
    expect(limiter.take("a", 1000)).toBe(1)
    // Another client has its own bucket.
    expect(limiter.take("b", 1000)).toBe(0)
    // Half a second later: one token (2/s).
    expect(limiter.take("a", 1500)).toBe(0)
    expect(limiter.take("a", 1500)).toBe(1)
    // A slow rate: the wait is rounded up to whole seconds.
    const slow = rateLimit.make({ ratePerSecond: 0.2, burst: 1, maxClients: 100 })
    expect(slow.take("c", 0)).toBe(0)
    expect(slow.take("c", 0)).toBe(5)
    expect(slow.take("c", 4000)).toBe(1)
    expect(slow.take("c", 5000)).toBe(0)
  })

  it("memory is bounded: full buckets (idle clients) go first, else the oldest", () => {
    const limiter = rateLimit.make({ ratePerSecond: 10, burst: 10, maxClients: 3 })
    limiter.take("a", 0)
    limiter.take("b", 0)
    limiter.take("c", 0)
    expect(limiter.size()).toBe(3)
    // Two seconds later a, b and c have refilled: they are dropped to make room.
    limiter.take("d", 2000)
    expect(limiter.size()).toBeLessThanOrEqual(3)
    for (let i = 0; i < 1000; i++) limiter.take(`client-${i}`, 2000)
    expect(limiter.size()).toBeLessThanOrEqual(3)
    // A busy client keeps its (empty) bucket until it must go.
    const busy = rateLimit.make({ ratePerSecond: 1, burst: 1, maxClients: 2 })
    busy.take("x", 0)
    busy.take("y", 0)
    expect(busy.take("x", 0)).toBe(1)
  })
})
