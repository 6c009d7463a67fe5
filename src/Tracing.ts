/**
 * Opt-in distributed tracing. Spans cost several µs per call (PERF-NOTES.md), so nothing is traced unless
 * these middlewares are installed:
 *
 * ```ts
 * Server.layer(Greeter, { name: "greeter" }).pipe(Layer.provide(Server.layerMiddleware(Tracing.server)))
 * Client.layer({ middleware: [Tracing.client] })
 * ```
 *
 * The client middleware opens a span per call and sends its context as a W3C `traceparent` header in the
 * call metadata; the server middleware continues that trace with a span per handled call. Any Effect
 * `Tracer` (e.g. @effect/opentelemetry) receives them. Spans never capture stack traces.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { ClientMiddleware } from "./Client.js"
import type { Middleware } from "./Server.js"

const TRACEPARENT = "traceparent"

/**
 * Formats a span as a W3C `traceparent` value (version 00, sampled flag from the span).
 * @since 0.1.0
 * @category utils
 */
export const formatTraceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId.padStart(32, "0").slice(-32)}-${span.spanId.padStart(16, "0").slice(-16)}-${
    span.sampled ? "01" : "00"
  }`

/**
 * Parses a W3C `traceparent` value; None when malformed (a bad header never fails a call).
 * @since 0.1.0
 * @category utils
 */
export const parseTraceparent = (value: string | undefined): Option.Option<Tracer.ExternalSpan> => {
  if (value === undefined) return Option.none()
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(value.trim().toLowerCase())
  if (match === null || match[1] === "ff" || /^0+$/.test(match[2]!) || /^0+$/.test(match[3]!)) return Option.none()
  return Option.some(Tracer.externalSpan({
    traceId: match[2]!,
    spanId: match[3]!,
    sampled: (parseInt(match[4]!, 16) & 1) === 1
  }))
}

/**
 * Server middleware: a span per handled call (`<service>/<endpoint>`, kind "server"), child of the caller's
 * span when the call carries a `traceparent`.
 * @since 0.1.0
 * @category middleware
 */
export const server: Middleware = (call, next) => {
  const parent = parseTraceparent(call.metadata[TRACEPARENT])
  return Effect.withSpan(next, `${call.service}/${call.endpoint}`, {
    kind: "server",
    captureStackTrace: false,
    attributes: { "rpc.system": "effect-micro", "rpc.service": call.service, "rpc.method": call.endpoint },
    ...(Option.isSome(parent) ? { parent: parent.value } : {})
  })
}

/**
 * Client middleware: a span per call (kind "client") whose context travels as the `traceparent` metadata.
 * @since 0.1.0
 * @category middleware
 */
export const client: ClientMiddleware = (call, next) =>
  Effect.useSpan(`${call.service}/${call.endpoint}`, {
    kind: "client",
    captureStackTrace: false,
    attributes: { "rpc.system": "effect-micro", "rpc.service": call.service, "rpc.method": call.endpoint }
  }, (span) =>
    Effect.withParentSpan(
      next({ ...call, metadata: { ...call.metadata, [TRACEPARENT]: formatTraceparent(span) } }),
      span
    ))
