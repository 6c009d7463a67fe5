/**
 * The chaos suite's load generator and helpers: N caller fibers in this process, each calling in a closed
 * loop (a new call as soon as the previous one ends), alternating `Echo` (idempotent: retried on timeouts
 * and resets) and `Hello` (not idempotent: retried only when it provably never ran). Every completion is
 * counted in 100 ms buckets; every failure is kept with its endpoint, tag and time.
 */
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { TypedClient } from "../../src/Client.js"
import { Selector } from "../../src/index.js"
import type { Testing } from "../support/contract.js"
import { type Child, spawnFixture } from "../support/processes.js"

export const fixture = "test/chaos/fixtures/node.ts"

/** Which selector the suite runs with: the default, unless CHAOS_SELECTOR names another (for comparisons). */
export const selectorName = process.env.CHAOS_SELECTOR ?? "default"

const makeSelector = (): Selector.Selector["Type"] => {
  switch (selectorName) {
    case "random":
      return Selector.makeRandom()
    case "roundRobin":
      return Selector.makeRoundRobin()
    case "leastLatency":
      return Selector.makeLeastLatency()
    default:
      return Selector.makeLeastOutstanding()
  }
}

/** The suite's selector, recording when it picks `watched` (epoch ms per pick). */
export const recordingSelector = (watched: { address: string | undefined; picks: Array<number> }) =>
  Layer.sync(Selector.Selector, () => {
    const inner = makeSelector()
    return {
      ...inner,
      select: (request) =>
        Effect.map(inner.select(request), (node) => {
          if (node.address === watched.address) watched.picks.push(Date.now())
          return node
        })
    }
  })

export interface Failure {
  readonly at: number
  readonly endpoint: "Echo" | "Hello"
  readonly tag: string
  readonly detail: string
}

const BUCKET = 100

export class Load {
  readonly startedAt = Date.now()
  /** Completed calls per 100 ms since `startedAt`. */
  readonly buckets: Array<number> = []
  readonly failures: Array<Failure> = []
  /** Echo replies per serving node id, and when each node last served one. */
  readonly servedBy = new Map<string, number>()
  readonly lastServed = new Map<string, number>()
  completed = 0
  stopped = false
  fibers: Array<Fiber.RuntimeFiber<void>> = []

  record(endpoint: "Echo" | "Hello", exit: Exit.Exit<unknown, unknown>): void {
    const now = Date.now()
    if (Exit.isSuccess(exit)) {
      const bucket = Math.floor((now - this.startedAt) / BUCKET)
      while (this.buckets.length <= bucket) this.buckets.push(0)
      this.buckets[bucket]!++
      this.completed++
      if (endpoint === "Echo") {
        const node = (exit.value as { node: string }).node
        this.servedBy.set(node, (this.servedBy.get(node) ?? 0) + 1)
        this.lastServed.set(node, now)
      }
    } else {
      const error = exit.cause._tag === "Fail" ? (exit.cause.error as { _tag?: string; detail?: string }) : undefined
      this.failures.push({
        at: now,
        endpoint,
        tag: error?._tag ?? exit.cause._tag,
        detail: error?.detail ?? String(exit.cause)
      })
    }
  }

  /** Completed calls per second between two epoch times. */
  rate(from: number, to: number): number {
    let count = 0
    const first = Math.floor((from - this.startedAt) / BUCKET)
    const last = Math.floor((to - this.startedAt) / BUCKET)
    for (let i = Math.max(0, first); i < last && i < this.buckets.length; i++) count += this.buckets[i]!
    return (count * 1000) / ((last - first) * BUCKET)
  }

  /** Per-second rates from `from` for `seconds` seconds. */
  perSecond(from: number, seconds: number): Array<number> {
    return Array.from({ length: seconds }, (_, i) => Math.round(this.rate(from + i * 1000, from + (i + 1) * 1000)))
  }

  /**
   * Runs until the rate settles (two consecutive seconds within 15 % of each other: JIT warm, connections
   * open), at most `maxSeconds`; returns the time spent.
   */
  warmUp(maxSeconds = 8): Effect.Effect<number> {
    return Effect.gen(this, function*() {
      const started = Date.now()
      let previous = Number.NaN
      for (let i = 0; i < maxSeconds; i++) {
        yield* Effect.sleep(1000)
        const rate = this.rate(Date.now() - 1000, Date.now())
        if (i >= 1 && Math.abs(rate - previous) <= 0.15 * previous) break
        previous = rate
      }
      return Date.now() - started
    })
  }

  readonly stop = Effect.suspend(() => {
    this.stopped = true
    return Fiber.awaitAll(this.fibers)
  })
}

/** Starts `callers` closed-loop callers; they stop with `load.stop` (or when the scope closes). */
export const startLoad = (
  testing: TypedClient<RpcGroup.Rpcs<typeof Testing>>,
  callers = 16
): Effect.Effect<Load, never, Scope.Scope> =>
  Effect.gen(function*() {
    const load = new Load()
    const caller = (index: number): Effect.Effect<void> => {
      let i = index
      const loop: Effect.Effect<void> = Effect.suspend(() => {
        if (load.stopped) return Effect.void
        const echo = i++ % 2 === 0
        const call: Effect.Effect<unknown, unknown> = echo
          ? testing.Echo({ text: `c${index}` })
          : testing.Hello({ name: `c${index}` })
        return Effect.flatMap(Effect.exit(call), (exit) => {
          load.record(echo ? "Echo" : "Hello", exit)
          return loop
        })
      })
      return loop
    }
    for (let index = 0; index < callers; index++) load.fibers.push(yield* Effect.forkScoped(caller(index)))
    return load
  })

/** Spawns a node, killed when the scope closes (a generous ready timeout: the machine may be busy). */
export const spawnNode = (id: string, env: Record<string, string> = {}): Effect.Effect<Child, Error, Scope.Scope> =>
  spawnFixture(fixture, { NODE_ID: id, ...env }, 60_000)

/** Spawns nodes (in parallel), killed when the scope closes. */
export const spawnNodes = (
  ids: ReadonlyArray<string>,
  env: Record<string, string> = {}
): Effect.Effect<Array<Child>, Error, Scope.Scope> =>
  Effect.all(ids.map((id) => spawnNode(id, env)), { concurrency: "unbounded" })

/** One line per scenario with its figures, for docs/reliability.md. */
export const report = (scenario: string, figures: Record<string, unknown>): void => {
  console.log(`CHAOS ${scenario} [selector: ${selectorName}] ${JSON.stringify(figures)}`)
}
