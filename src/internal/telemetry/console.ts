/**
 * The development tracer and logger: Effect's own tracer (random W3C-sized ids) with every ended span
 * printed as one logfmt line, and Effect's logfmt logger with service, node, trace and span ids added.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { ConsoleOptions } from "../../Telemetry.js"

// logfmt: bare when the value has no space, quote or equals sign; JSON-quoted otherwise.
const value = (input: unknown): string => {
  const text = typeof input === "string" ? input : String(input)
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)
}

const spanLine = (span: Tracer.Span, base: ReadonlyArray<readonly [string, string]>): string => {
  const status = span.status
  const fields: Array<readonly [string, unknown]> = [["span", span.name], ["kind", span.kind]]
  for (const field of base) fields.push(field)
  fields.push(["trace_id", span.traceId], ["span_id", span.spanId])
  if (Option.isSome(span.parent)) fields.push(["parent_id", span.parent.value.spanId])
  if (status._tag === "Ended") {
    fields.push(["duration_ms", (Number(status.endTime - status.startTime) / 1e6).toFixed(3)])
    const exit = status.exit
    fields.push([
      "status",
      Exit.isSuccess(exit) ? "ok" : Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "error"
    ])
    if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
      fields.push(["error", Cause.pretty(exit.cause).split("\n")[0]])
    }
  }
  for (const [key, attribute] of span.attributes) fields.push([key, attribute])
  return fields.map(([key, field]) => `${key}=${value(field)}`).join(" ")
}

// Effect's tracer with `end` intercepted: the span stays Effect's own (ids, parent, attributes, events).
const printingTracer = (
  base: Tracer.Tracer,
  fields: ReadonlyArray<readonly [string, string]>,
  write: (line: string) => void
): Tracer.Tracer =>
  Tracer.make({
    span(name, parent, context, links, startTime, kind, options) {
      const span = base.span(name, parent, context, links, startTime, kind, options)
      const end = span.end
      ;(span as { end: Tracer.Span["end"] }).end = (endTime, exit) => {
        end.call(span, endTime, exit)
        write(spanLine(span, fields))
      }
      return span
    },
    context: base.context
  })

const correlatedLogger = (
  fields: ReadonlyArray<readonly [string, string]>,
  write: (line: string) => void
): Logger.Logger<unknown, void> =>
  Logger.make((options) => {
    let annotations = options.annotations
    for (const [key, field] of fields) annotations = HashMap.set(annotations, key, field)
    const span = Context.getOption(FiberRefs.getOrDefault(options.context, FiberRef.currentContext), Tracer.ParentSpan)
    if (Option.isSome(span)) {
      annotations = HashMap.set(annotations, "trace_id", span.value.traceId)
      annotations = HashMap.set(annotations, "span_id", span.value.spanId)
    }
    write(Logger.logfmtLogger.log({ ...options, annotations }))
  })

export const layer = (options: ConsoleOptions = {}): Layer.Layer<never> => {
  const write = options.write ?? ((line: string) => console.log(line))
  const fields: Array<readonly [string, string]> = []
  if (options.serviceName !== undefined) fields.push(["service", options.serviceName])
  if (options.node !== undefined) fields.push(["node", options.node])
  const tracer = options.spans === false
    ? Layer.empty
    : Layer.unwrapEffect(Effect.map(Effect.tracer, (base) => Layer.setTracer(printingTracer(base, fields, write))))
  const logger = options.logs === false
    ? Layer.empty
    : Logger.replace(Logger.defaultLogger, correlatedLogger(fields, write))
  return Layer.merge(tracer, logger)
}
