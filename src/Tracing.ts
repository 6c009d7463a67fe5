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
 * call metadata; the server middleware continues that trace with a span per handled call. A retried call
 * records each retry as a `retry` event on its client span. `layerBroker` and `layerStore` add spans for
 * publish/deliver (the context travels in message headers) and for store operations.
 *
 * Spans go to the Effect `Tracer` in context: `Telemetry.layerOtlp` (OTLP/HTTP to a collector),
 * `Telemetry.layerConsole` (development), or any other. Spans never capture stack traces.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import { Broker } from "./Broker.js"
import type { ClientMiddleware } from "./Client.js"
import * as internalBroker from "./internal/telemetry/broker.js"
import * as internalStore from "./internal/telemetry/store.js"
import * as traceparent from "./internal/telemetry/traceparent.js"
import type { Middleware } from "./Server.js"
import { Store } from "./Store.js"

const TRACEPARENT = traceparent.TRACEPARENT

/**
 * Formats a span as a W3C `traceparent` value (version 00, sampled flag from the span).
 * @since 0.1.0
 * @category utils
 */
export const formatTraceparent: (span: Tracer.AnySpan) => string = traceparent.formatTraceparent

/**
 * Parses a W3C `traceparent` value; None when malformed (a bad header never fails a call).
 * @since 0.1.0
 * @category utils
 */
export const parseTraceparent: (value: string | undefined) => Option.Option<Tracer.ExternalSpan> =
  traceparent.parseTraceparent

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

/**
 * A `Broker` with spans: each publish is a span (`publish <topic>`, kind "producer") whose context travels
 * as the message's `traceparent` header; each delivered message is handled in a span (`deliver <topic>`,
 * kind "consumer") that continues the publisher's trace (a new trace when the message has no valid
 * `traceparent`). Works with every broker, across processes.
 * @since 0.1.0
 * @category constructors
 */
export const wrapBroker: (broker: Broker.Service) => Broker.Service = internalBroker.wrapBroker

/**
 * Wraps the `Broker` in context with `wrapBroker`. Provide the inner broker to it:
 * `Tracing.layerBroker.pipe(Layer.provide(HttpBroker.layer()))`. With auth, put it inside the auth wrapper
 * (`AuthMiddleware.layerBroker.pipe(Layer.provide(Tracing.layerBroker), Layer.provide(HttpBroker.layer()))`)
 * so the delivery span also covers the auth check (a refused message is a failed span).
 * @since 0.1.0
 * @category layers
 */
export const layerBroker: Layer.Layer<Broker, never, Broker> = Layer.effect(
  Broker,
  Effect.map(Broker, internalBroker.wrapBroker)
)

/**
 * A `Store` with a span (kind "client") per `read`, `write`, `delete` and `list`, named `store.<operation>`,
 * with the backend, database, table and key as attributes (`watch` is not traced: it is a long-lived stream).
 * @since 0.1.0
 * @category constructors
 */
export const wrapStore: (store: Store.Service) => Store.Service = internalStore.wrapStore

/**
 * Wraps the `Store` in context with `wrapStore`: `Tracing.layerStore.pipe(Layer.provide(Store.layer()))`.
 * @since 0.1.0
 * @category layers
 */
export const layerStore: Layer.Layer<Store, never, Store> = Layer.effect(
  Store,
  Effect.map(Store, internalStore.wrapStore)
)
