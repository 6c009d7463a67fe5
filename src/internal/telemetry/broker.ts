/**
 * Tracing wrapped around any `Broker.Service`: a producer span per publish whose context travels in the
 * message's `traceparent` header, a consumer span per delivered message that continues it. The brokers
 * themselves know nothing about tracing (like auth, see internal/auth/broker.ts).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Broker, Handler } from "../../Broker.js"
import { formatTraceparent, parseTraceparent, TRACEPARENT } from "./traceparent.js"

export const wrapBroker = (broker: Broker.Service): Broker.Service => {
  const system = broker.name
  const publish: Broker.Service["publish"] = (topic, body, options) =>
    Effect.useSpan(`publish ${topic}`, {
      kind: "producer",
      captureStackTrace: false,
      attributes: {
        "messaging.system": system,
        "messaging.destination.name": topic,
        "messaging.operation.type": "send",
        "messaging.message.body.size": body.byteLength
      }
    }, (span) =>
      Effect.withParentSpan(
        broker.publish(topic, body, {
          ...options,
          // Ours wins over a `traceparent` the caller set: the deliveries are children of this span.
          headers: { ...options?.headers, [TRACEPARENT]: formatTraceparent(span) }
        }),
        span
      ))
  const subscribe: Broker.Service["subscribe"] = (topic, handler, options) => {
    const queue = options?.queue
    const traced: Handler = (message) => {
      const parent = parseTraceparent(message.headers[TRACEPARENT])
      return Effect.withSpan(handler(message), `deliver ${topic}`, {
        kind: "consumer",
        captureStackTrace: false,
        attributes: {
          "messaging.system": system,
          "messaging.destination.name": topic,
          "messaging.operation.type": "process",
          "messaging.message.body.size": message.body.byteLength,
          ...(queue !== undefined ? { "messaging.consumer.group.name": queue } : {})
        },
        // Without a traceparent the delivery starts its own trace rather than joining whatever span the
        // subscribing fiber happened to be in.
        ...(Option.isSome(parent) ? { parent: parent.value } : { root: true })
      })
    }
    return broker.subscribe(topic, traced, options)
  }
  return { name: broker.name, publish, subscribe }
}
