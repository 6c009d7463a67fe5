/**
 * An OTLP/HTTP receiver for the telemetry tests: a node:http server on 127.0.0.1 (ephemeral port) that
 * decodes OTLP/JSON exports (what `Telemetry.layerOtlp` sends by default) into flat span, log and metric
 * records. Closed with the scope.
 */
import * as Effect from "effect/Effect"
import * as http from "node:http"
import type { AddressInfo } from "node:net"

interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: number | string
  readonly boolValue?: boolean
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}
interface Resource {
  readonly attributes: ReadonlyArray<KeyValue>
}
export interface ExportedSpan {
  readonly service: string
  readonly node: string | undefined
  readonly name: string
  readonly kind: number
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId: string | undefined
}
export interface ExportedLog {
  readonly service: string
  readonly node: string | undefined
  readonly body: string
  readonly traceId: string | undefined
  readonly spanId: string | undefined
}

const attribute = (resource: Resource, key: string) => resource.attributes.find((a) => a.key === key)?.value.stringValue

/** An OTLP/HTTP JSON receiver on 127.0.0.1: POST /v1/traces, /v1/logs and /v1/metrics (others accepted, ignored). */
export const receiver = Effect.acquireRelease(
  Effect.async<
    {
      url: string
      spans: Array<ExportedSpan>
      logs: Array<ExportedLog>
      metrics: Array<{ service: string; name: string; value: unknown }>
      contentTypes: Set<string>
      server: http.Server
    }
  >((resume) => {
    const spans: Array<ExportedSpan> = []
    const logs: Array<ExportedLog> = []
    const metrics: Array<{ service: string; name: string; value: unknown }> = []
    const contentTypes = new Set<string>()
    const server = http.createServer((request, response) => {
      const chunks: Array<Buffer> = []
      request.on("data", (chunk: Buffer) => chunks.push(chunk))
      request.on("end", () => {
        contentTypes.add(String(request.headers["content-type"]))
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}")
        if (request.url === "/v1/traces") {
          for (const rs of body.resourceSpans ?? []) {
            for (const ss of rs.scopeSpans ?? []) {
              for (const span of ss.spans ?? []) {
                spans.push({
                  service: attribute(rs.resource, "service.name")!,
                  node: attribute(rs.resource, "service.instance.id"),
                  name: span.name,
                  kind: span.kind,
                  traceId: span.traceId,
                  spanId: span.spanId,
                  parentSpanId: span.parentSpanId || undefined
                })
              }
            }
          }
        } else if (request.url === "/v1/logs") {
          for (const rl of body.resourceLogs ?? []) {
            for (const sl of rl.scopeLogs ?? []) {
              for (const record of sl.logRecords ?? []) {
                logs.push({
                  service: attribute(rl.resource, "service.name")!,
                  node: attribute(rl.resource, "service.instance.id"),
                  body: record.body?.stringValue ?? "",
                  traceId: record.traceId || undefined,
                  spanId: record.spanId || undefined
                })
              }
            }
          }
        } else if (request.url === "/v1/metrics") {
          for (const rm of body.resourceMetrics ?? []) {
            for (const sm of rm.scopeMetrics ?? []) {
              for (const metric of sm.metrics ?? []) {
                metrics.push({
                  service: attribute(rm.resource, "service.name")!,
                  name: metric.name,
                  value: metric.sum?.dataPoints?.[0]?.asInt ?? metric.sum?.dataPoints?.[0]?.asDouble
                })
              }
            }
          }
        }
        response.writeHead(200, { "content-type": "application/json" }).end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}`, spans, logs, metrics, contentTypes, server }))
    })
  }),
  ({ server }) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)
