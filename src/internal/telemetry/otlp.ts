/**
 * OTLP/HTTP export through @effect/opentelemetry's native exporters (no OpenTelemetry SDK): traces, logs and
 * Effect metrics, posted with the fetch HttpClient. Loaded on demand by `Telemetry.layerOtlp`, so importing
 * effect-micro does not need @effect/opentelemetry installed.
 */
import * as OtlpLogger from "@effect/opentelemetry/OtlpLogger"
import * as OtlpMetrics from "@effect/opentelemetry/OtlpMetrics"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type { OtlpOptions } from "../../Telemetry.js"

export const layer = (options: OtlpOptions): Layer.Layer<never> => {
  const base = options.url.replace(/\/+$/, "")
  const resource = {
    serviceName: options.serviceName,
    serviceVersion: options.serviceVersion,
    attributes: {
      ...options.attributes,
      ...(options.node !== undefined ? { "service.instance.id": options.node } : {})
    }
  }
  const common = {
    resource,
    headers: options.headers,
    maxBatchSize: options.maxBatchSize,
    shutdownTimeout: options.shutdownTimeout ?? "3 seconds"
  }
  const exportInterval = options.exportInterval ?? "1 second"
  const tracer = OtlpTracer.layer({ ...common, url: `${base}/v1/traces`, exportInterval })
  const logger = options.logs === false
    ? Layer.empty
    : OtlpLogger.layer({
      ...common,
      url: `${base}/v1/logs`,
      exportInterval,
      excludeLogSpans: true,
      ...(options.replaceLogger === true ? { replaceLogger: Logger.defaultLogger } : {})
    })
  const metrics = options.metrics === false
    ? Layer.empty
    : OtlpMetrics.layer({
      url: `${base}/v1/metrics`,
      resource,
      headers: options.headers,
      exportInterval: options.metricsExportInterval ?? "10 seconds",
      shutdownTimeout: common.shutdownTimeout
    })
  return Layer.mergeAll(tracer, logger, metrics).pipe(
    Layer.provide(options.encoding === "protobuf" ? OtlpSerialization.layerProtobuf : OtlpSerialization.layerJson),
    Layer.provide(FetchHttpClient.layer)
  )
}
