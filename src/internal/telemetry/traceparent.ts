/** W3C trace context (`traceparent`) for the RPC middlewares and the broker wrapper. */
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"

export const TRACEPARENT = "traceparent"

export const formatTraceparent = (span: Tracer.AnySpan): string =>
  `00-${span.traceId.padStart(32, "0").slice(-32)}-${span.spanId.padStart(16, "0").slice(-16)}-${
    span.sampled ? "01" : "00"
  }`

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
