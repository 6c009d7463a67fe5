/**
 * Call deadlines without a fiber per call.
 *
 * `Effect.timeoutFail` forks a sleeper and races it for every call; on the RPC hot path that measured
 * ≈ 100 µs of CPU per call (bench/README.md). Instead, each server and each client keeps one timing wheel:
 * deadlines go into buckets of `tickMillis`, one fiber wakes once per tick while any deadline is pending
 * (and parks otherwise), and expires whole buckets. Insert and remove are O(1).
 *
 * Time comes from Effect's `Clock`, so `TestClock` drives deadlines in tests. Expiry is late by at most
 * one tick.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export interface DeadlineEntry {
  readonly bucket: number
  readonly onExpire: () => void
}

export class DeadlineWheel {
  private readonly buckets = new Map<number, Set<DeadlineEntry>>()
  private size = 0
  private wake: (() => void) | undefined = undefined

  constructor(readonly clock: Clock.Clock, private readonly tickMillis = 20) {}

  /** Calls `onExpire` once `timeoutMillis` have passed, unless removed first. */
  add(timeoutMillis: number, onExpire: () => void): DeadlineEntry {
    const deadline = this.clock.unsafeCurrentTimeMillis() + timeoutMillis
    const bucket = Math.ceil(deadline / this.tickMillis) * this.tickMillis
    const entry: DeadlineEntry = { bucket, onExpire }
    let set = this.buckets.get(bucket)
    if (set === undefined) {
      set = new Set()
      this.buckets.set(bucket, set)
    }
    set.add(entry)
    if (this.size++ === 0 && this.wake !== undefined) {
      const wake = this.wake
      this.wake = undefined
      wake()
    }
    return entry
  }

  remove(entry: DeadlineEntry | undefined): void {
    if (entry === undefined) return
    const set = this.buckets.get(entry.bucket)
    if (set !== undefined && set.delete(entry)) {
      this.size--
      if (set.size === 0) this.buckets.delete(entry.bucket)
    }
  }

  private expire(now: number): void {
    for (const [bucket, set] of this.buckets) {
      if (bucket > now) continue
      this.buckets.delete(bucket)
      this.size -= set.size
      for (const entry of set) entry.onExpire()
    }
  }

  /**
   * The driver: run it forked in the owner's scope. It parks only when the wheel was empty at the end of a
   * tick, never straight after a wake: at one call in flight the wheel empties after every call, and
   * parking then would cost a wake-up and a park per call (measured as most of the memory a server
   * promoted to the old generation at 1 call in flight).
   */
  readonly run: Effect.Effect<never> = Effect.suspend((): Effect.Effect<void> =>
    this.size === 0
      ? Effect.async<void>((resume) => {
        this.wake = () => resume(Effect.void)
        return Effect.sync(() => {
          this.wake = undefined
        })
      })
      : Effect.void
  ).pipe(
    Effect.zipRight(Effect.suspend(() => this.clock.sleep(Duration.millis(this.tickMillis)))),
    Effect.zipRight(Effect.sync(() => this.expire(this.clock.unsafeCurrentTimeMillis()))),
    Effect.forever
  )
}
