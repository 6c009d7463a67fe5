/**
 * Process-wide figures for `Debug.Stats`: event-loop delay (`monitorEventLoopDelay`) and GC pauses (a
 * `PerformanceObserver` on "gc" entries). Both run while at least one server is up (reference counted),
 * so a process without servers pays nothing.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import type { IntervalHistogram } from "node:perf_hooks"

interface Monitors {
  readonly delay: IntervalHistogram
  readonly gc: PerformanceObserver
}

let monitors: Monitors | undefined
let users = 0
const gc = { count: 0, pauseMillis: 0 }

const start = (): Monitors => {
  const delay = monitorEventLoopDelay({ resolution: 20 })
  delay.enable()
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      gc.count++
      gc.pauseMillis += entry.duration
    }
  })
  observer.observe({ entryTypes: ["gc"] })
  return { delay, gc: observer }
}

/** Keeps the monitors running for the scope (the server's). */
export const acquire: Effect.Effect<void, never, Scope.Scope> = Effect.acquireRelease(
  Effect.sync(() => {
    if (users++ === 0) monitors = start()
  }),
  () =>
    Effect.sync(() => {
      if (--users === 0 && monitors !== undefined) {
        monitors.delay.disable()
        monitors.gc.disconnect()
        monitors = undefined
      }
    })
)

const ms = (nanos: number) => (Number.isFinite(nanos) ? nanos / 1e6 : 0)

export const snapshot = () => {
  const memory = process.memoryUsage()
  const delay = monitors?.delay
  return {
    memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
    eventLoopDelayMillis: delay === undefined || delay.count === 0
      ? { min: 0, mean: 0, max: 0, p50: 0, p99: 0 }
      : {
        min: ms(delay.min),
        mean: ms(delay.mean),
        max: ms(delay.max),
        p50: ms(delay.percentile(50)),
        p99: ms(delay.percentile(99))
      },
    gc: { count: gc.count, pauseMillis: gc.pauseMillis }
  }
}
