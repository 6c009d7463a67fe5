/**
 * The HTTP broker.
 *
 * Subscriber side: the first `subscribe` starts one HTTP server per broker (in the layer's scope); each
 * subscription is registered as a node of the service `<servicePrefix><topic>` (metadata: broker, topic,
 * path, queue) with a TTL and renewed on an interval; closing the subscription deregisters it, then removes
 * it locally (later POSTs get 404 and the publisher tries another member).
 *
 * Publisher side: looks the topic's service up in the Registry in context (use the cached one), sends to
 * every broadcast subscriber and to one member of each queue group (the less loaded of two, skipping ejected
 * endpoints: see the breaker in `httpOutbox`). Sends go through one outbox per subscription endpoint with at
 * most `maxInFlight` batch requests pipelined on one connection: while they are out, later messages queue and
 * leave together as the next batch, so batches grow with load while order per publisher is kept (TCP order +
 * the endpoint's FIFO per subscription) and every message gets its own result.
 *
 * This module assembles the broker from its parts:
 * - `httpSettings`: options resolved with their defaults, and the state both sides share;
 * - `httpSubscriber` (the server, `subscribe`) with `httpInbound` (one request's body and turn);
 * - `httpPublisher` (`publish`) with `httpPublication` (one publish's targets, queue-group picks, results),
 *   `httpOutbox` (per-endpoint outboxes and breakers) and `httpBatch` (one batch POST on undici);
 * - `httpWire`: the wire format.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Broker } from "../../Broker.js"
import type { HttpBrokerOptions } from "../../HttpBroker.js"
import { Registry } from "../../Registry.js"
import { DeadlineWheel } from "../rpc/deadlines.js"
import { countingPublish } from "./counters.js"
import { makePublisher } from "./httpPublisher.js"
import type { BrokerState } from "./httpSettings.js"
import { resolveSettings } from "./httpSettings.js"
import { makeSubscriber } from "./httpSubscriber.js"

export { defaults } from "./httpSettings.js"

export const make = (
  options?: HttpBrokerOptions
): Effect.Effect<Broker.Service, never, Scope.Scope | Registry> =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const layerScope = yield* Effect.scope
    const settings = resolveSettings(options)
    // Publish timeouts and subscriber body deadlines on one timing wheel driven by the layer's Clock
    // (TestClock in tests), not a timer each.
    const deadlines = new DeadlineWheel(yield* Effect.clock)
    yield* Effect.forkScoped(deadlines.run)

    // Closing the layer: the endpoint answers 503, publishes fail with `Closed`.
    const state: BrokerState = { draining: false }
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        state.draining = true
      })
    )

    const subscribe = yield* makeSubscriber(settings, registry, layerScope, deadlines, state)
    const publish = yield* makePublisher(settings, registry, layerScope, deadlines, state)
    return { name: "http", publish: countingPublish(publish), subscribe } satisfies Broker.Service
  })
