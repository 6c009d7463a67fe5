/**
 * `Debug.Stats` in the Prometheus text exposition format (0.0.4): one `# HELP` and `# TYPE` per family,
 * label values escaped, counters suffixed `_total`, the call-duration histogram in seconds with cumulative
 * `_bucket{le}` series, `_sum` and `_count`. Metric names are listed in docs/observability.md.
 */
import type { Stats } from "../../Debug.js"

const escapeLabel = (value: string) => value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, "\\\"")

const labels = (pairs: Record<string, string>) =>
  `{${Object.entries(pairs).map(([key, value]) => `${key}="${escapeLabel(value)}"`).join(",")}}`

const number = (value: number) =>
  Number.isNaN(value) ? "NaN" : value === Infinity ? "+Inf" : value === -Infinity ? "-Inf" : String(value)

class Exposition {
  private readonly lines: Array<string> = []

  family(name: string, type: "counter" | "gauge" | "histogram", help: string): this {
    this.lines.push(`# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`, `# TYPE ${name} ${type}`)
    return this
  }

  sample(name: string, labelPairs: Record<string, string>, value: number): this {
    this.lines.push(`${name}${labels(labelPairs)} ${number(value)}`)
    return this
  }

  text(): string {
    return this.lines.join("\n") + "\n"
  }
}

export const render = (stats: Stats): string => {
  const node = { service: stats.service, node: stats.node }
  const out = new Exposition()

  out.family("micro_server_calls_total", "counter", "Calls that ended, by endpoint, outcome and code.")
  for (const endpoint of stats.endpoints) {
    const at = { ...node, endpoint: endpoint.endpoint }
    out.sample("micro_server_calls_total", { ...at, outcome: "succeeded", code: "ok" }, endpoint.succeeded)
    for (const [code, count] of Object.entries(endpoint.failedByCode)) {
      out.sample("micro_server_calls_total", { ...at, outcome: "failed", code }, count)
    }
    out.sample("micro_server_calls_total", { ...at, outcome: "cancelled", code: "cancelled" }, endpoint.cancelled)
  }
  out.family("micro_server_calls_started_total", "counter", "Calls started, by endpoint.")
  for (const endpoint of stats.endpoints) {
    out.sample("micro_server_calls_started_total", { ...node, endpoint: endpoint.endpoint }, endpoint.started)
  }
  out.family("micro_server_calls_in_flight", "gauge", "Calls running now, by endpoint.")
  for (const endpoint of stats.endpoints) {
    out.sample("micro_server_calls_in_flight", { ...node, endpoint: endpoint.endpoint }, endpoint.inFlight)
  }
  out.family("micro_server_call_duration_seconds", "histogram", "Time from a call's OPEN to its last frame.")
  for (const endpoint of stats.endpoints) {
    const at = { ...node, endpoint: endpoint.endpoint }
    endpoint.durationBucketsMillis.forEach((bound, i) => {
      out.sample(
        "micro_server_call_duration_seconds_bucket",
        { ...at, le: String(bound / 1000) },
        endpoint.durationCounts[i]!
      )
    })
    const count = endpoint.durationCounts[endpoint.durationCounts.length - 1] ?? 0
    out.sample("micro_server_call_duration_seconds_bucket", { ...at, le: "+Inf" }, count)
    out.sample("micro_server_call_duration_seconds_sum", at, endpoint.durationSumMillis / 1000)
    out.sample("micro_server_call_duration_seconds_count", at, count)
  }

  out.family("micro_server_connections", "gauge", "Connections open now.")
    .sample("micro_server_connections", node, stats.connections.open)
    .family("micro_server_connections_accepted_total", "counter", "Connections accepted.")
    .sample("micro_server_connections_accepted_total", node, stats.connections.accepted)
    .family("micro_server_connections_refused_total", "counter", "Connections over the limit (calls refused).")
    .sample("micro_server_connections_refused_total", node, stats.connections.refused)
    .family("micro_server_received_bytes_total", "counter", "Bytes read from clients.")
    .sample("micro_server_received_bytes_total", node, stats.bytes.received)
    .family("micro_server_sent_bytes_total", "counter", "Bytes written to clients.")
    .sample("micro_server_sent_bytes_total", node, stats.bytes.sent)

  out.family("micro_broker_published_total", "counter", "Messages published by this process, by outcome.")
    .sample("micro_broker_published_total", { ...node, outcome: "succeeded" }, stats.broker.published)
    .sample("micro_broker_published_total", { ...node, outcome: "failed" }, stats.broker.publishFailed)
    .family("micro_broker_delivered_total", "counter", "Messages handled by this process's subscribers, by outcome.")
    .sample("micro_broker_delivered_total", { ...node, outcome: "succeeded" }, stats.broker.delivered)
    .sample("micro_broker_delivered_total", { ...node, outcome: "failed" }, stats.broker.deliveryFailed)

  out.family("micro_registry_registrations_total", "counter", "Registrations and renewals, by outcome.")
    .sample("micro_registry_registrations_total", { ...node, outcome: "succeeded" }, stats.registry.registrations)
    .sample("micro_registry_registrations_total", { ...node, outcome: "failed" }, stats.registry.registrationFailures)
    .family("micro_registry_lookups_total", "counter", "Lookups the client cache sent to the registry, by outcome.")
    .sample(
      "micro_registry_lookups_total",
      { ...node, outcome: "succeeded" },
      stats.registry.lookups - stats.registry.lookupFailures
    )
    .sample("micro_registry_lookups_total", { ...node, outcome: "failed" }, stats.registry.lookupFailures)
    .family(
      "micro_registry_stale_served_total",
      "counter",
      "Lookups answered from the cache while the registry was down."
    )
    .sample("micro_registry_stale_served_total", node, stats.registry.staleServed)
    .family("micro_registry_watch_events_total", "counter", "Registry watch events applied by the client cache.")
    .sample("micro_registry_watch_events_total", node, stats.registry.watchEvents)

  out.family("process_resident_memory_bytes", "gauge", "Resident set size.")
    .sample("process_resident_memory_bytes", node, stats.memory.rss)
    .family("nodejs_heap_used_bytes", "gauge", "V8 heap in use.")
    .sample("nodejs_heap_used_bytes", node, stats.memory.heapUsed)
    .family("nodejs_heap_total_bytes", "gauge", "V8 heap reserved.")
    .sample("nodejs_heap_total_bytes", node, stats.memory.heapTotal)
    .family("nodejs_external_memory_bytes", "gauge", "Memory of C++ objects bound to JavaScript (buffers).")
    .sample("nodejs_external_memory_bytes", node, stats.memory.external)
    .family("nodejs_eventloop_delay_seconds", "gauge", "Event-loop delay since the first server started.")
    .sample("nodejs_eventloop_delay_seconds", { ...node, stat: "p50" }, stats.eventLoopDelayMillis.p50 / 1000)
    .sample("nodejs_eventloop_delay_seconds", { ...node, stat: "p99" }, stats.eventLoopDelayMillis.p99 / 1000)
    .sample("nodejs_eventloop_delay_seconds", { ...node, stat: "max" }, stats.eventLoopDelayMillis.max / 1000)
    .sample("nodejs_eventloop_delay_seconds", { ...node, stat: "mean" }, stats.eventLoopDelayMillis.mean / 1000)
    .family("nodejs_gc_total", "counter", "Garbage collections since the first server started.")
    .sample("nodejs_gc_total", node, stats.gc.count)
    .family("nodejs_gc_pause_seconds_total", "counter", "Time spent in garbage collection.")
    .sample("nodejs_gc_pause_seconds_total", node, stats.gc.pauseMillis / 1000)
    .family("micro_uptime_seconds", "gauge", "Time since the server started.")
    .sample("micro_uptime_seconds", node, stats.uptimeMillis / 1000)
  return out.text()
}
