/**
 * Call deadlines without a fiber per call.
 *
 * `Effect.timeoutFail` forks a sleeper and races it for every call; on the RPC hot path that measured
 * ≈ 100 µs of CPU per call (bench/README.md). Instead, each server and each client keeps one timing wheel:
 * deadlines go into buckets of `tickMillis`, one fiber sleeps until the earliest bucket is due (woken early
 * only when an entry is added before it), expires whole buckets, and parks while the wheel is empty. Insert
 * and remove are O(1). Sleeping to the next bucket rather than ticking matters for long timers (idle
 * connections, minutes away): they cost one wake-up each, not one per tick, in production and under
 * `TestClock.adjust` alike.
 *
 * Time comes from Effect's `Clock`, so `TestClock` drives deadlines in tests. Expiry is late by at most
 * one tick.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

/**
 * Entries and buckets are class instances and their arrays come from `slice()`, not object or array
 * literals: V8 tracks survival per literal site and, when most of a site's objects outlive a young
 * collection (a stalled stream's entry lives for its idle timeout), allocates all later ones straight in the
 * old generation. Everything such an entry or bucket points to then survives young collections until a full
 * one: measured on a busy bidi stream, every message was promoted and the server spent 15 % of its time in GC.
 */
export class DeadlineEntry {
  constructor(
    readonly bucket: Bucket,
    /**
     * Cleared when the entry is removed or expires (skipped when its bucket expires). Clearing it matters:
     * a bucket keeps its removed entries until it empties, and a server's callback captures the call's whole
     * state (fiber, refs, buffers).
     */
    public onExpire: (() => void) | undefined
  ) {}
}

/**
 * The entries due in one tick. An array with a count of live entries rather than a `Set`: a server adds and
 * removes an entry per call, and a `Set` that has been promoted reallocates its table in the old generation
 * each time it compacts deleted entries (measured as a main source of old-generation garbage under load).
 * Removed entries stay in the array until the bucket empties, is compacted or expires.
 *
 * A bucket stays in the wheel's map until it expires even when it empties, for the same reason: deleting
 * and re-adding it per call made the map rehash every few hundred calls, and once a rehashed table had been
 * promoted V8 allocates every later one in the old generation (a 60 s run: ≈ 2 MB/s of old-space garbage from
 * that map alone, mark-compacts every 1–2 s after the first).
 */
class Bucket {
  entries: Array<DeadlineEntry> = NO_ENTRIES.slice()
  live = 0
  expired = false

  /**
   * Drops removed entries. A bucket far away (a stream's idle timeout, tens of seconds) collects thousands
   * of entries that are removed within milliseconds; kept, they would all live until the bucket expires.
   * Compacting when three quarters are removed keeps the work amortized O(1) per entry.
   */
  compact(): void {
    if (this.live === 0) this.entries.length = 0
    else this.entries = this.entries.filter(isPending)
  }
}

const NO_ENTRIES: ReadonlyArray<DeadlineEntry> = []

const isPending = (entry: DeadlineEntry): boolean => entry.onExpire !== undefined

/** Buckets smaller than this are not compacted (they empty or expire soon enough). */
const COMPACT_AT = 64

export class DeadlineWheel {
  /** Buckets by due time; empty ones stay until due (see `Bucket`), all go when the wheel is empty. */
  private readonly buckets = new Map<number, Bucket>()
  private size = 0
  /** When the driver looks next (Infinity while parked); an entry due earlier wakes it. */
  private wakeAt = Infinity
  private wake: (() => void) | undefined = undefined
  /**
   * An entry came in earlier than `wakeAt` since the driver last looked. Between deciding how long to sleep
   * and waiting to be woken the driver cannot be woken (its `wake` is not installed yet): this flag makes it
   * look again at once instead of missing the entry.
   */
  private wakeRequested = false
  /** The driver found the wheel empty once: it parks if it still is after one more tick. */
  private emptyOnce = false

  constructor(readonly clock: Clock.Clock, private readonly tickMillis = 20) {}

  /** Calls `onExpire` once `timeoutMillis` have passed, unless removed first. */
  add(timeoutMillis: number, onExpire: () => void): DeadlineEntry {
    const deadline = this.clock.unsafeCurrentTimeMillis() + timeoutMillis
    const due = Math.ceil(deadline / this.tickMillis) * this.tickMillis
    let bucket = this.buckets.get(due)
    if (bucket === undefined) {
      bucket = new Bucket()
      this.buckets.set(due, bucket)
    }
    const entry = new DeadlineEntry(bucket, onExpire)
    bucket.entries.push(entry)
    bucket.live++
    this.size++
    if (due < this.wakeAt) {
      // The driver will look at least this early, even if the entry is removed before it runs: otherwise
      // a server whose only other timer is minutes away is woken by every short call (each one added and
      // removed before the driver runs), and the wake-ups cost more than the calls (measured: +25 MB peak RSS).
      this.wakeAt = due
      this.wakeRequested = true
      if (this.wake !== undefined) {
        const wake = this.wake
        this.wake = undefined
        wake()
      }
    }
    return entry
  }

  remove(entry: DeadlineEntry | undefined): void {
    if (entry === undefined || entry.onExpire === undefined) return
    entry.onExpire = undefined
    const bucket = entry.bucket
    // Expiring right now (this is called from another entry's callback): the entry is skipped there.
    if (bucket.expired) return
    this.size--
    bucket.live--
    if (bucket.live === 0 || (bucket.entries.length >= COMPACT_AT && bucket.live * 4 < bucket.entries.length)) {
      bucket.compact()
    }
  }

  private expire(now: number): void {
    if (this.size === 0) {
      // Only empty buckets left: drop them all (the driver parks next).
      this.buckets.clear()
      return
    }
    for (const [due, bucket] of this.buckets) {
      if (due > now) continue
      this.buckets.delete(due)
      bucket.expired = true
      this.size -= bucket.live
      for (const entry of bucket.entries) {
        const onExpire = entry.onExpire
        if (onExpire === undefined) continue
        entry.onExpire = undefined
        onExpire()
      }
    }
  }

  /**
   * The earliest bucket with a pending entry. Buckets whose entries were all removed are not waited for
   * (the next look drops them once due): under steady load every 20 ms bucket empties within milliseconds of
   * filling, and waking for each of them would mean a timer race (two fibers) per tick, whose objects live
   * for the tick and so survive young collections (≈ 5 KB per scavenge of promoted garbage on a busy server).
   */
  private nextBucket(): number {
    let next = Infinity
    for (const [due, bucket] of this.buckets) if (bucket.live > 0 && due < next) next = due
    return next
  }

  private readonly woken: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.wakeRequested) return resume(Effect.void)
    this.wake = () => resume(Effect.void)
    return Effect.sync(() => {
      this.wake = undefined
    })
  })

  /**
   * The driver: run it forked in the owner's scope. It parks only when the wheel was empty for a whole
   * tick, never straight after expiring: at one call in flight the wheel empties after every call, and
   * parking then would cost a wake-up and a park per call (measured as most of the memory a server
   * promoted to the old generation at 1 call in flight).
   */
  readonly run: Effect.Effect<never> = Effect.suspend((): Effect.Effect<void> => {
    const now = this.clock.unsafeCurrentTimeMillis()
    this.wakeRequested = false
    if (this.size === 0) {
      if (this.emptyOnce) {
        this.wakeAt = Infinity
        return this.woken
      }
      this.emptyOnce = true
      this.wakeAt = now + this.tickMillis
    } else {
      this.emptyOnce = false
      // `wakeAt` may still hold the bucket of an entry added (and maybe already removed) since the last look.
      this.wakeAt = Math.max(Math.min(this.nextBucket(), this.wakeAt > now ? this.wakeAt : Infinity), now + 1)
    }
    return Effect.raceFirst(this.clock.sleep(Duration.millis(this.wakeAt - now)), this.woken)
  }).pipe(
    Effect.zipRight(Effect.sync(() => this.expire(this.clock.unsafeCurrentTimeMillis()))),
    Effect.forever
  )
}
