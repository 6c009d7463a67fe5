/**
 * Two services for the telemetry suites (in-memory and cross-process): `front` relays to `back`, which
 * writes to the store and publishes on the broker. Every step logs, so logs can be matched to spans.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { Broker, Client, Store } from "../../src/index.js"

export const topic = "telemetry.events"

export const Front = RpcGroup.make(Rpc.make("Relay", { payload: { text: Schema.String }, success: Schema.String }))
export const Back = RpcGroup.make(Rpc.make("Publish", { payload: { text: Schema.String }, success: Schema.String }))

/** Counted by `front` (an Effect metric, exported by `Telemetry.layerOtlp`). */
export const relays = Metric.counter("telemetry_relays")

/** `front`'s handler: logs, counts, then calls `back` (whose service name is given). */
export const frontHandlers = (backService: string) =>
  Front.toLayer(Effect.gen(function*() {
    const back = yield* Client.make(Back, { service: backService })
    return {
      Relay: ({ text }) =>
        Effect.log(`front relaying ${text}`).pipe(
          Effect.zipRight(Metric.increment(relays)),
          Effect.zipRight(back.Publish({ text }).pipe(Effect.orDie))
        )
    }
  }))

/** `back`'s handler: logs, writes the text to the store, publishes it on `topic`. */
export const backHandlers = Back.toLayer(Effect.gen(function*() {
  const broker = yield* Broker.Broker
  const store = yield* Store.Store
  return {
    Publish: ({ text }) =>
      Effect.gen(function*() {
        yield* Effect.log(`back publishing ${text}`)
        const body = new TextEncoder().encode(text)
        yield* store.write({ key: text, value: body })
        yield* broker.publish(topic, body)
        return text
      }).pipe(Effect.orDie)
  }
}))
