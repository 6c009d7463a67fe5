/**
 * Where spans and logs go. Tracing itself is opt-in per component (the `Tracing` middlewares and layers);
 * these layers choose the destination:
 *
 * - `layerOtlp`: OTLP/HTTP to a collector (OpenTelemetry Collector, Jaeger, Tempo, Honeycomb ...): spans,
 *   log records (each carrying the trace and span id of the span it was logged in) and Effect metrics, through
 *   @effect/opentelemetry's native exporters. No OpenTelemetry SDK is needed; `@effect/opentelemetry` is an
 *   optional peer, loaded only when this layer is built.
 * - `layerConsole`: for development, every ended span and every log line printed as logfmt with service,
 *   node, trace and span ids.
 *
 * ```ts
 * const Main = Server.layer(Greeter, { name: "greeter", id: "greeter-1" }).pipe(
 *   Layer.provide(Server.layerMiddleware(Tracing.server)),
 *   Layer.provide(Telemetry.layerOtlp({ url: "http://127.0.0.1:4318", serviceName: "greeter", node: "greeter-1" }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as internalConsole from "./internal/telemetry/console.js"
import type * as otlp from "./internal/telemetry/otlp.js"

/**
 * Options of `layerOtlp`.
 * @since 0.1.0
 * @category models
 */
export interface OtlpOptions {
  /**
   * Base URL of the OTLP/HTTP receiver, e.g. `http://127.0.0.1:4318`; `/v1/traces`, `/v1/logs` and
   * `/v1/metrics` are appended.
   */
  readonly url: string
  /** The resource's `service.name` (shown on every span and log record). */
  readonly serviceName: string
  /** The resource's `service.version`. Default: none. */
  readonly serviceVersion?: string | undefined
  /** This process' node id (e.g. the Server's `id`), sent as the resource's `service.instance.id`. Default: none. */
  readonly node?: string | undefined
  /** More resource attributes (merged over `OTEL_RESOURCE_ATTRIBUTES`). Default: none. */
  readonly attributes?: Record<string, unknown> | undefined
  /** HTTP headers of every export request (e.g. an API key). Default: none. */
  readonly headers?: Record<string, string> | undefined
  /** Body encoding of the exports: `json` (OTLP/JSON) or `protobuf` (binary OTLP, smaller). Default `json`. */
  readonly encoding?: "json" | "protobuf" | undefined
  /** How often buffered spans and log records are sent (and sooner once `maxBatchSize` are buffered). Default 1 second. */
  readonly exportInterval?: Duration.DurationInput | undefined
  /** Most spans (or log records) per export request. Default 1000. */
  readonly maxBatchSize?: number | undefined
  /** Export log records. Default true. */
  readonly logs?: boolean | undefined
  /**
   * Replace the default (console) logger instead of adding the exporter beside it. Default false: logs still
   * print locally too.
   */
  readonly replaceLogger?: boolean | undefined
  /** Export Effect metrics (`effect/Metric`). Default true. */
  readonly metrics?: boolean | undefined
  /** How often metrics are sent. Default 10 seconds. */
  readonly metricsExportInterval?: Duration.DurationInput | undefined
  /**
   * How long closing the layer waits for the last export. Default 3 seconds. A collector that cannot be
   * reached never fails the program: a failed export is retried, then exporting pauses for a minute.
   */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

// @effect/opentelemetry is an optional peer: loaded only when an OTLP layer is built.
const loadOtlp = Effect.tryPromise({
  try: () => import("./internal/telemetry/otlp.js") as Promise<typeof otlp>,
  catch: (cause) => new Error("Telemetry.layerOtlp needs @effect/opentelemetry installed", { cause })
}).pipe(Effect.orDie)

/**
 * Exports spans, log records and Effect metrics over OTLP/HTTP while the layer is alive; buffered data is
 * flushed when it closes. Provide it to the whole program (spans are created wherever a `Tracing`
 * middleware or layer is installed). Log records made inside a span carry its trace and span id.
 * @since 0.1.0
 * @category layers
 */
export const layerOtlp = (options: OtlpOptions): Layer.Layer<never> =>
  Layer.unwrapEffect(Effect.map(loadOtlp, (module) => module.layer(options)))

/**
 * `layerOtlp` with options read from `Config`, e.g. the standard variables:
 * `Telemetry.layerOtlpConfig({ url: Config.string("OTEL_EXPORTER_OTLP_ENDPOINT"), serviceName: Config.string("OTEL_SERVICE_NAME") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerOtlpConfig = (config: Config.Config.Wrap<OtlpOptions>): Layer.Layer<never, ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), layerOtlp))

/**
 * Options of `layerConsole`.
 * @since 0.1.0
 * @category models
 */
export interface ConsoleOptions {
  /** Printed as `service=` on every line. Default: none. */
  readonly serviceName?: string | undefined
  /** Printed as `node=` on every line. Default: none. */
  readonly node?: string | undefined
  /** Print a line per ended span. Default true. */
  readonly spans?: boolean | undefined
  /** Replace the default logger with one adding service, node, `trace_id` and `span_id`. Default true. */
  readonly logs?: boolean | undefined
  /** Where lines go. Default `console.log`. */
  readonly write?: ((line: string) => void) | undefined
}

/**
 * A development tracer and logger: every ended span is printed as one logfmt line (`span=<name> kind=...
 * trace_id=... span_id=... parent_id=... duration_ms=... status=ok` and its attributes), and log lines are
 * Effect's logfmt with `service`, `node`, `trace_id` and `span_id` added. Spans use Effect's own tracer.
 * @since 0.1.0
 * @category layers
 */
export const layerConsole: (options?: ConsoleOptions) => Layer.Layer<never> = internalConsole.layer
