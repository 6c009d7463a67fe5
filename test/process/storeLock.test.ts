/**
 * The embedded store never blocks the event loop while another process holds the file's write lock:
 * a child process (better-sqlite3 directly) takes the lock with `BEGIN IMMEDIATE` and keeps it; meanwhile
 * this process writes, keeps serving other work (reads of the same file, which WAL allows under a writer)
 * and measures its event-loop delay with `perf_hooks.monitorEventLoopDelay`.
 *
 * Before the fix a write waited inside SQLite's busy handler on the JS thread: a 3 s hold blocked the
 * loop 3 s, a 7 s hold 5 s (then `Unavailable` without naming SQLITE_BUSY).
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks"
import * as Store from "../../src/Store.js"
import { spawnFixture } from "../support/processes.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-store-lock-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))

/** The documented bound (`busyTimeout`'s default) and the hold that outlasts it. */
const BUSY_TIMEOUT_MS = 5_000
const SHORT_HOLD_MS = 1_500
const LONG_HOLD_MS = 7_000
/**
 * The target: no lock wait blocks the loop for more than a few ms (the old code blocked it for the whole
 * wait: 1.5 s and 5 s here). On a quiet machine the measured maximum is 15–41 ms, p99 6–8 ms. On a loaded
 * 2-core machine the process is also descheduled (and its GCs stretched) for 30–150 ms now and then, with
 * no store call at all running (measured with the same setup and the write left out), so the hard limits
 * are: 99th percentile under 50 ms, and no single stall beyond 250 ms (still 6× below the short hold).
 */
const P99_LOOP_DELAY_MS = 50
const MAX_LOOP_DELAY_MS = 250

/** Another process holding the write lock of `filename` for `holdMs` (from its READY line). */
const holdLock = (filename: string, holdMs: number) =>
  spawnFixture("test/process/fixtures/sqliteLockHolder.ts", { SQLITE_FILE: filename, HOLD_MS: String(holdMs) })

/**
 * Event-loop delay while `effect` runs. The histogram only measures from its first sample on, so the
 * effect starts once one has been recorded (a block before that would go unseen).
 */
const measured = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const histogram = monitorEventLoopDelay({ resolution: 5 })
      histogram.enable()
      return histogram
    }),
    (histogram) =>
      Effect.sync(() => histogram.count).pipe(
        Effect.repeat({ schedule: Schedule.spaced("1 millis"), until: (count) => count > 0 }),
        Effect.timeout("5 seconds"),
        Effect.zipRight(Effect.exit(effect)),
        Effect.map((exit) => ({ exit, histogram }))
      ),
    (histogram) => Effect.sync(() => histogram.disable())
  )

const millis = (histogram: IntervalHistogram) => ({
  max: histogram.max / 1e6,
  p99: histogram.percentile(99) / 1e6
})

describe("embedded store under another process' write lock", () => {
  it.live(
    "waits without blocking the event loop; succeeds after a short hold, fails typed after busyTimeout",
    () =>
      Effect.gen(function*() {
        const filename = path.join(dir, "store.db")
        const store = yield* Store.makeSqlite({ filename, synchronous: "NORMAL" })
        yield* store.write({ key: "before", value: new Uint8Array([1]) })

        // Other work of the process: reads of the same file every 2 ms, counted.
        let served = 0
        yield* store.read("before").pipe(
          Effect.tap(() => {
            served++
          }),
          Effect.zipRight(Effect.sleep("2 millis")),
          Effect.forever,
          Effect.forkScoped
        )

        // Short hold: the write waits for the lock and succeeds once it is released.
        const short = yield* holdLock(filename, SHORT_HOLD_MS)
        const servedBeforeShort = served
        const shortStart = yield* Clock.currentTimeMillis
        const shortRun = yield* measured(store.write({ key: "short", value: new Uint8Array([2]) }))
        const shortElapsed = (yield* Clock.currentTimeMillis) - shortStart
        const shortServed = served - servedBeforeShort
        expect(Exit.isSuccess(shortRun.exit)).toBe(true)
        yield* Effect.promise(() => short.waitForLine((line) => line === "RELEASED", 5_000))
        // It did wait for the lock (the hold started before the write and lasted SHORT_HOLD_MS).
        expect(shortElapsed).toBeGreaterThan(SHORT_HOLD_MS / 2)
        expect(shortElapsed).toBeLessThan(SHORT_HOLD_MS + 3_000)
        expect((yield* store.read("short"))[0]!.value).toEqual(new Uint8Array([2]))

        // Long hold: the write gives up after busyTimeout, typed, with SQLITE_BUSY in the detail.
        const long = yield* holdLock(filename, LONG_HOLD_MS)
        const servedBeforeLong = served
        const longStart = yield* Clock.currentTimeMillis
        const longRun = yield* measured(Effect.flip(store.write({ key: "long", value: new Uint8Array([3]) })))
        const longElapsed = (yield* Clock.currentTimeMillis) - longStart
        const longServed = served - servedBeforeLong
        expect(Exit.isSuccess(longRun.exit)).toBe(true)
        const error = Exit.isSuccess(longRun.exit) ? longRun.exit.value : undefined
        expect(error?._tag).toBe("StoreError")
        expect(error?.reason).toBe("Unavailable")
        expect(error?.detail).toContain("SQLITE_BUSY")
        expect(error?.detail).toContain(`busyTimeout (${BUSY_TIMEOUT_MS} ms)`)
        expect(longElapsed).toBeGreaterThanOrEqual(BUSY_TIMEOUT_MS)
        // At most one retry interval (25 ms, jittered) over the bound, plus scheduling noise.
        expect(longElapsed).toBeLessThan(BUSY_TIMEOUT_MS + 1_000)
        // The lock was still held when the write gave up.
        expect(long.lines).not.toContain("RELEASED")
        yield* Effect.promise(() => long.waitForLine((line) => line === "RELEASED", LONG_HOLD_MS))
        // Once released, the same store writes again.
        yield* store.write({ key: "after", value: new Uint8Array([4]) })
        expect(yield* store.list()).toEqual(["after", "before", "short"])

        const shortDelay = millis(shortRun.histogram)
        const longDelay = millis(longRun.histogram)
        console.log(
          `event-loop delay under a held lock: short hold (${SHORT_HOLD_MS} ms, write took ${shortElapsed} ms, ` +
            `${shortServed} reads served) max ${shortDelay.max.toFixed(1)} ms, p99 ${shortDelay.p99.toFixed(1)} ms; ` +
            `long hold (${LONG_HOLD_MS} ms, write failed after ${longElapsed} ms, ${longServed} reads served) ` +
            `max ${longDelay.max.toFixed(1)} ms, p99 ${longDelay.p99.toFixed(1)} ms`
        )
        // Other work went on: a read every ~2 ms (bounded below generously for a loaded machine).
        expect(shortServed).toBeGreaterThan(SHORT_HOLD_MS / 2 / 20)
        expect(longServed).toBeGreaterThan(BUSY_TIMEOUT_MS / 20)
        for (const delay of [shortDelay, longDelay]) {
          expect(delay.p99).toBeLessThan(P99_LOOP_DELAY_MS)
          expect(delay.max).toBeLessThan(MAX_LOOP_DELAY_MS)
        }
      }).pipe(Effect.scoped),
    40_000
  )
})
