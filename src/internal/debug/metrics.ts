/**
 * The framework's figures as Effect `Metric`s (in the global metric registry, where any Effect metrics
 * exporter reads them), on when `Debug.layerMetrics` is provided. Per-call metrics update hooks resolved once
 * per endpoint (no key building, no Effect per call); process-wide figures (broker counters, memory, event
 * loop, GC) are copied into metrics once a second by one collector fiber per process.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import type * as MetricHook from "effect/MetricHook"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import type * as Scope from "effect/Scope"
import type { Store } from "../../Store.js"
import { brokerCounters } from "../broker/counters.js"
import { registryCounters } from "../registry/counters.js"
import { Outcome } from "../rpc/serverStats.js"
import { DURATION_BUCKETS_MS } from "../rpc/serverStats.js"
import * as processStats from "./process.js"

const registry = Metric.globalMetricRegistry

const labelsOf = (labels: Record<string, string>) =>
  Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value))

const counter = (name: string, description: string, labels: Record<string, string>) =>
  registry.getCounter(MetricKey.taggedWithLabels(MetricKey.counter(name, { description }), labelsOf(labels)))

const gauge = (name: string, description: string, labels: Record<string, string>) =>
  registry.getGauge(MetricKey.taggedWithLabels(MetricKey.gauge(name, { description }), labelsOf(labels)))

const SECONDS = MetricBoundaries.fromIterable(DURATION_BUCKETS_MS.map((ms) => ms / 1000))

const histogram = (name: string, description: string, labels: Record<string, string>) =>
  registry.getHistogram(MetricKey.taggedWithLabels(MetricKey.histogram(name, SECONDS, description), labelsOf(labels)))

/**
 * One endpoint's call metrics, on one side (`server` or `client`). Calls are counted by `outcome` and `code`:
 * `ok` for a success, the framework error's code (`408`, `503` …) or `error` (the endpoint's own error)
 * for a failure, `cancelled`. The counter of a failure code is resolved on its first occurrence.
 */
export class CallMetrics {
  private readonly succeeded: MetricHook.MetricHook.Counter<number>
  private readonly cancelled: MetricHook.MetricHook.Counter<number>
  private readonly failed = new Map<string, MetricHook.MetricHook.Counter<number>>()
  private readonly duration: MetricHook.MetricHook.Histogram
  private readonly inFlightGauge: MetricHook.MetricHook.Gauge<number>
  private readonly calls: string
  private readonly help: string
  private readonly labels: Record<string, string>
  private inFlight = 0

  constructor(side: "server" | "client", service: string, endpoint: string) {
    const labels = { service, endpoint }
    this.labels = labels
    this.calls = `micro_${side}_calls_total`
    this.help = side === "server"
      ? "Calls this server handled, by outcome and code."
      : "Calls (attempts, for unary calls) this client made, by outcome and code."
    this.succeeded = counter(this.calls, this.help, { ...labels, outcome: "succeeded", code: "ok" })
    this.cancelled = counter(this.calls, this.help, { ...labels, outcome: "cancelled", code: "cancelled" })
    this.duration = histogram(`micro_${side}_call_duration_seconds`, "Call duration.", labels)
    this.inFlightGauge = gauge(`micro_${side}_calls_in_flight`, "Calls running now.", labels)
  }

  start(): void {
    this.inFlightGauge.update(++this.inFlight)
  }

  end(outcome: Outcome, millis: number, failCode = "error"): void {
    this.inFlightGauge.update(--this.inFlight)
    if (outcome === Outcome.Succeeded) this.succeeded.update(1)
    else if (outcome === Outcome.Cancelled) this.cancelled.update(1)
    else {
      let failed = this.failed.get(failCode)
      if (failed === undefined) {
        failed = counter(this.calls, this.help, { ...this.labels, outcome: "failed", code: failCode })
        this.failed.set(failCode, failed)
      }
      failed.update(1)
    }
    this.duration.update(millis / 1000)
  }
}

/** `store` with each read, write, delete and list counted and timed (`micro_store_*`, tagged by backend). */
export const measuredStore = (store: Store.Service): Store.Service => {
  const measure = (operation: string) => {
    const metrics = new OperationMetrics(store.backend, operation)
    return <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
      Effect.suspend(() => {
        const startedAt = performance.now()
        return Effect.onExit(effect, (exit) => Effect.sync(() => metrics.end(exit, performance.now() - startedAt)))
      })
  }
  const read = measure("read")
  const write = measure("write")
  const del = measure("delete")
  const list = measure("list")
  return {
    ...store,
    read: (key, options) => read(store.read(key, options)),
    write: (record, options) => write(store.write(record, options)),
    delete: (key, options) => del(store.delete(key, options)),
    list: (options) => list(store.list(options))
  }
}

class OperationMetrics {
  private readonly succeeded: MetricHook.MetricHook.Counter<number>
  private readonly failed: MetricHook.MetricHook.Counter<number>
  private readonly duration: MetricHook.MetricHook.Histogram

  constructor(backend: string, operation: string) {
    const labels = { backend, operation }
    const help = "Store operations, by outcome (a read of a missing key fails with NotFound)."
    this.succeeded = counter("micro_store_operations_total", help, { ...labels, outcome: "succeeded" })
    this.failed = counter("micro_store_operations_total", help, { ...labels, outcome: "failed" })
    this.duration = histogram("micro_store_operation_duration_seconds", "Store operation duration.", labels)
  }

  end(exit: Exit.Exit<unknown, unknown>, millis: number): void {
    ;(Exit.isSuccess(exit) ? this.succeeded : this.failed).update(1)
    this.duration.update(millis / 1000)
  }
}

/** Copies the process-wide figures into metrics (counters by their increase since the last copy). */
const makeCopy = () => {
  const publishHelp = "Messages published, by outcome."
  const deliverHelp = "Messages handled by this process's subscribers, by outcome."
  const published = counter("micro_broker_published_total", publishHelp, { outcome: "succeeded" })
  const publishFailed = counter("micro_broker_published_total", publishHelp, { outcome: "failed" })
  const delivered = counter("micro_broker_delivered_total", deliverHelp, { outcome: "succeeded" })
  const deliveryFailed = counter("micro_broker_delivered_total", deliverHelp, { outcome: "failed" })
  const rss = gauge("process_resident_memory_bytes", "Resident set size.", {})
  const heapUsed = gauge("nodejs_heap_used_bytes", "V8 heap in use.", {})
  const delayP99 = gauge("nodejs_eventloop_delay_seconds", "Event-loop delay.", { stat: "p99" })
  const gcCount = counter("nodejs_gc_total", "Garbage collections.", {})
  const registrationHelp = "Registrations and renewals, by outcome."
  const lookupHelp = "Lookups the client cache sent to the registry, by outcome."
  const registrations = counter("micro_registry_registrations_total", registrationHelp, { outcome: "succeeded" })
  const registrationFailures = counter("micro_registry_registrations_total", registrationHelp, { outcome: "failed" })
  const lookups = counter("micro_registry_lookups_total", lookupHelp, { outcome: "succeeded" })
  const lookupFailures = counter("micro_registry_lookups_total", lookupHelp, { outcome: "failed" })
  const last = { ...brokerCounters, gc: 0 }
  const lastRegistry = { ...registryCounters }
  // The increase since the metrics started, not since the process did: start from the current values.
  last.gc = processStats.snapshot().gc.count
  return () => {
    published.update(brokerCounters.published - last.published)
    publishFailed.update(brokerCounters.publishFailed - last.publishFailed)
    delivered.update(brokerCounters.delivered - last.delivered)
    deliveryFailed.update(brokerCounters.deliveryFailed - last.deliveryFailed)
    Object.assign(last, brokerCounters)
    registrations.update(registryCounters.registrations - lastRegistry.registrations)
    registrationFailures.update(registryCounters.registrationFailures - lastRegistry.registrationFailures)
    lookups.update(
      registryCounters.lookups - registryCounters.lookupFailures - (lastRegistry.lookups - lastRegistry.lookupFailures)
    )
    lookupFailures.update(registryCounters.lookupFailures - lastRegistry.lookupFailures)
    Object.assign(lastRegistry, registryCounters)
    const snapshot = processStats.snapshot()
    rss.update(snapshot.memory.rss)
    heapUsed.update(snapshot.memory.heapUsed)
    delayP99.update(snapshot.eventLoopDelayMillis.p99 / 1000)
    gcCount.update(snapshot.gc.count - last.gc)
    last.gc = snapshot.gc.count
  }
}

let holders = 0
let timer: ReturnType<typeof setInterval> | undefined

/** Keeps the process-wide figures flowing into metrics (every second) while the scope is open. */
export const collect: Effect.Effect<void, never, Scope.Scope> = Effect.zipRight(
  processStats.acquire,
  Effect.acquireRelease(
    Effect.sync(() => {
      if (holders++ > 0) return
      const copy = makeCopy()
      copy()
      timer = setInterval(copy, 1000)
      timer.unref()
    }),
    () =>
      Effect.sync(() => {
        if (--holders === 0 && timer !== undefined) {
          clearInterval(timer)
          timer = undefined
        }
      })
  )
)
