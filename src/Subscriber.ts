/**
 * Server-side subscribers (go-micro's `micro.RegisterSubscriber`): a Layer that subscribes when it is built
 * and unsubscribes when it is released. Compose it next to `Server.layer` so subscriptions start and stop
 * with the service:
 *
 * ```ts
 * const Main = Layer.mergeAll(
 *   Server.layer(Billing, { name: "billing" }),
 *   Subscriber.layer(OrderCreated, (order) => charge(order), { queue: "billing" })
 * ).pipe(Layer.provide(BillingLive), Layer.provide(Defaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { BrokerError, Handler, Message, SubscribeOptions } from "./Broker.js"
import * as Broker from "./Broker.js"
import type { Topic } from "./Topic.js"
import * as TopicModule from "./Topic.js"

/**
 * A typed subscriber living as long as the layer. The handler's requirements come from the layer's inputs.
 * @since 0.1.0
 * @category layers
 */
export const layer = <A, I, E, R>(
  topic: Topic<A, I>,
  handler: (value: A, message: Message) => Effect.Effect<void, E, R>,
  options?: SubscribeOptions
): Layer.Layer<never, BrokerError, Broker.Broker | R> =>
  Layer.scopedDiscard(TopicModule.subscribe(topic, handler, options))

/**
 * A raw (bytes) subscriber living as long as the layer.
 * @since 0.1.0
 * @category layers
 */
export const layerRaw = <E, R>(
  topic: string,
  handler: Handler<E, R>,
  options?: SubscribeOptions
): Layer.Layer<never, BrokerError, Broker.Broker | R> => Layer.scopedDiscard(Broker.subscribe(topic, handler, options))
