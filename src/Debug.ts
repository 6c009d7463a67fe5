/**
 * What a running service says about itself, as go-micro's `Debug` handlers do. Every server answers three
 * built-in endpoints over its own protocol, whatever its contract:
 *
 * - `Debug.Health`: status (`not-ready` until registered, `serving`, `draining` once it stops), uptime,
 *   version, node. Call it with `Client.health(service, { node })`.
 * - `Debug.Describe`: the contract: every endpoint's call shape and the JSON Schemas of its messages and
 *   errors (what the CLI and the gateway need to call a service without its TypeScript contract).
 * - `Debug.Stats`: calls started/succeeded/failed/cancelled and a duration histogram per endpoint, calls in
 *   flight, connections, bytes in and out, broker publishes and deliveries, memory, event-loop delay and GC.
 *   Call it with `Client.stats(service, { node })`. The counters are plain numbers bumped on the hot path.
 *
 * The server option `http` adds the HTTP side operators and Kubernetes expect: `/health` (liveness),
 * `/ready` (readiness: registered and accepting, 503 while draining), `/stats` (JSON) and `/metrics`
 * (Prometheus text format). See docs/observability.md for every metric name.
 *
 * @since 0.1.0
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { TransportError } from "./Errors.js"
import * as internalMetrics from "./internal/debug/metrics.js"

/**
 * `not-ready`: listening but not registered yet; `serving`; `draining`: stopping (deregistered, finishing
 * calls in flight).
 * @since 0.1.0
 * @category models
 */
export const Status = Schema.Literal("not-ready", "serving", "draining")
/**
 * @since 0.1.0
 * @category models
 */
export type Status = typeof Status.Type

/**
 * @since 0.1.0
 * @category models
 */
export const Health = Schema.Struct({
  status: Status,
  service: Schema.String,
  version: Schema.String,
  /** The node id. */
  node: Schema.String,
  address: Schema.String,
  uptimeMillis: Schema.Number
})
/**
 * @since 0.1.0
 * @category models
 */
export interface Health extends Schema.Schema.Type<typeof Health> {}

/**
 * One endpoint's calls. `durationCounts[i]` counts calls that took at most `durationBucketsMillis[i]`
 * (cumulative, as Prometheus histograms are); the last count is every call.
 * @since 0.1.0
 * @category models
 */
export const EndpointStats = Schema.Struct({
  endpoint: Schema.String,
  started: Schema.Number,
  succeeded: Schema.Number,
  failed: Schema.Number,
  /** Ended by the caller (cancel, connection lost) or by the server's stop. */
  cancelled: Schema.Number,
  /** `failed` by code: the framework error's (`"408"`, `"500"` …) or `"error"` for the endpoint's own errors. */
  failedByCode: Schema.Record({ key: Schema.String, value: Schema.Number }),
  inFlight: Schema.Number,
  durationBucketsMillis: Schema.Array(Schema.Number),
  durationCounts: Schema.Array(Schema.Number),
  durationSumMillis: Schema.Number
})
/**
 * @since 0.1.0
 * @category models
 */
export interface EndpointStats extends Schema.Schema.Type<typeof EndpointStats> {}

/**
 * A node's figures since it started (counters) or now (gauges).
 * @since 0.1.0
 * @category models
 */
export const Stats = Schema.Struct({
  service: Schema.String,
  node: Schema.String,
  uptimeMillis: Schema.Number,
  endpoints: Schema.Array(EndpointStats),
  connections: Schema.Struct({ open: Schema.Number, accepted: Schema.Number, refused: Schema.Number }),
  bytes: Schema.Struct({ received: Schema.Number, sent: Schema.Number }),
  /** Every broker of this process: messages published (or failed to), delivered to handlers (or failed). */
  broker: Schema.Struct({
    published: Schema.Number,
    publishFailed: Schema.Number,
    delivered: Schema.Number,
    deliveryFailed: Schema.Number
  }),
  /** This process' registry activity: its servers' registrations, its clients' cache lookups. */
  registry: Schema.Struct({
    registrations: Schema.Number,
    registrationFailures: Schema.Number,
    lookups: Schema.Number,
    lookupFailures: Schema.Number,
    staleServed: Schema.Number,
    watchEvents: Schema.Number
  }),
  memory: Schema.Struct({
    rss: Schema.Number,
    heapUsed: Schema.Number,
    heapTotal: Schema.Number,
    external: Schema.Number
  }),
  /** Event-loop delay since the first server of this process started (ms). */
  eventLoopDelayMillis: Schema.Struct({
    min: Schema.Number,
    mean: Schema.Number,
    max: Schema.Number,
    p50: Schema.Number,
    p99: Schema.Number
  }),
  /** Garbage collections since the first server of this process started, and their total pause (ms). */
  gc: Schema.Struct({ count: Schema.Number, pauseMillis: Schema.Number })
})
/**
 * @since 0.1.0
 * @category models
 */
export interface Stats extends Schema.Schema.Type<typeof Stats> {}

/**
 * One endpoint as `Debug.Describe` tells it: call shape, idempotency, and JSON Schemas (as JSON text, so that
 * every codec carries them) of one request message, one reply message and the endpoint's typed errors, for
 * their wire (encoded) form. A Schema with no JSON Schema form is described as `{"description": …}`.
 * @since 0.1.0
 * @category models
 */
export const EndpointDescription = Schema.Struct({
  name: Schema.String,
  shape: Schema.Literal("unary", "server-stream", "client-stream", "bidi"),
  idempotent: Schema.Boolean,
  request: Schema.String,
  response: Schema.String,
  error: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export interface EndpointDescription extends Schema.Schema.Type<typeof EndpointDescription> {}

/**
 * A typed topic the service's process subscribes to (`Topic.subscribe`, `Subscriber.layer`): its name, queue
 * group (absent: every subscriber gets every message), and the JSON Schema of its messages.
 * @since 0.1.0
 * @category models
 */
export const TopicDescription = Schema.Struct({
  topic: Schema.String,
  queue: Schema.optional(Schema.String),
  schema: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export interface TopicDescription extends Schema.Schema.Type<typeof TopicDescription> {}

/**
 * What a service serves. `digest` (also in each registered node's metadata as `describe`) changes when the
 * contract does: a client that cached a description can tell it is stale without asking again.
 * @since 0.1.0
 * @category models
 */
export const Description = Schema.Struct({
  service: Schema.String,
  version: Schema.String,
  digest: Schema.String,
  endpoints: Schema.Array(EndpointDescription),
  /** Typed topics the process subscribes to, as they are when asked (not part of `digest`). */
  topics: Schema.optional(Schema.Array(TopicDescription))
})
/**
 * @since 0.1.0
 * @category models
 */
export interface Description extends Schema.Schema.Type<typeof Description> {}

/**
 * The built-in endpoints every server answers (names `Debug.Health` and `Debug.Stats`), as a contract: for
 * clients in other languages (`Protobuf.toProto(Debug.Contract)`) and for `Client.make`.
 * @since 0.1.0
 * @category contracts
 */
export const Contract = RpcGroup.make(
  Rpc.make("Debug.Health", { success: Health }),
  Rpc.make("Debug.Stats", { success: Stats }),
  Rpc.make("Debug.Describe", { success: Description })
)

/**
 * The opt-in HTTP port of a server (`Server.layer(group, { http: { port: 9100 } })`): `/health` (200 while
 * the process runs), `/ready` (200 while `serving`, else 503), `/stats` (JSON) and `/metrics` (Prometheus
 * text format 0.0.4). It opens before the server listens and closes after it drained.
 * @since 0.1.0
 * @category models
 */
export interface HttpOptions {
  /** Default 0 (a free port: read it from `ServerInfo.httpAddress`). */
  readonly port?: number | undefined
  /** Default "0.0.0.0" (probes come from outside the pod/host). */
  readonly host?: string | undefined
}

/**
 * Options of `serveHttp` / `layerHttp`: the probe port of a process that runs no server.
 * @since 0.1.0
 * @category models
 */
export interface ProbeOptions extends HttpOptions {
  /** The process' name in `/health` and `/stats` (and the `service` label of `/metrics`). */
  readonly name: string
  /** Its node id. Default `<name>-<pid>`. */
  readonly node?: string | undefined
  /** Its version in `/health`. Default "latest". */
  readonly version?: string | undefined
}

/**
 * The HTTP probe port for a process that runs no server (a worker that only subscribes, a gateway, a batch
 * job): `/health`, `/ready` (200 once listening), `/stats` and `/metrics` with the process-wide figures —
 * broker publishes and deliveries, registry lookups, memory, event-loop delay, GC — and no endpoints. Open
 * until the scope closes; returns the bound address (`port: 0` picks a free one). A process with a server
 * uses the server's `http` option instead.
 * @since 0.1.0
 * @category probes
 */
export const serveHttp = (
  options: ProbeOptions
): Effect.Effect<{ readonly address: string }, TransportError, Scope.Scope> =>
  Effect.flatMap(
    Effect.promise(() => import("./internal/debug/standalone.js")),
    (standalone) => standalone.serve(options)
  )

/**
 * `serveHttp` as a layer, open as long as the layer.
 * @since 0.1.0
 * @category probes
 */
export const layerHttp = (options: ProbeOptions): Layer.Layer<never, TransportError> =>
  Layer.scopedDiscard(serveHttp(options))

/**
 * Whether servers, clients and the broker of this context report to Effect `Metric`s (off by default).
 * Read when each is built: provide `layerMetrics` to them (or to the whole program).
 * @since 0.1.0
 * @category references
 */
export class Metrics extends Context.Reference<Metrics>()("effect-micro/Debug/Metrics", {
  defaultValue: (): boolean => false
}) {}

/**
 * Turns the framework's figures into Effect `Metric`s, in the global metric registry where any Effect
 * metrics exporter (OTLP, Prometheus through OpenTelemetry) reads them: per endpoint on servers and clients
 * `micro_{server,client}_calls_total{service,endpoint,outcome}`, `micro_{server,client}_call_duration_seconds`
 * (histogram) and `micro_{server,client}_calls_in_flight`; per store operation
 * `micro_store_operations_total{backend,operation,outcome}` and its duration; per process the broker counters, RSS, heap,
 * event-loop delay and GC (copied once a second). Costs a few hook updates per call (see docs/observability.md).
 * @since 0.1.0
 * @category layers
 */
export const layerMetrics: Layer.Layer<Metrics> = Layer.scoped(Metrics, Effect.as(internalMetrics.collect, true))
