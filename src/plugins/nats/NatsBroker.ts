/**
 * The NATS broker: a separate entry point (`effect-micro/plugins/nats/NatsBroker`) so the core never loads
 * the NATS client. NATS core semantics: at-most-once, no persistence; topics are subjects, queue groups are
 * NATS queue subscriptions; the client reconnects (forever by default) and re-subscribes by itself.
 * `publish` succeeds once the client accepted the message (buffered while reconnecting); handler failures
 * are logged on the subscriber, not reported to the publisher.
 *
 * With `jetstream` set: at-least-once. Publishes are persisted in a stream and acknowledged by the server
 * before `publish` succeeds; subscriptions are push consumers with explicit acks (queue group = durable
 * consumer), a failed handler's message is redelivered, a rejected one is terminated. See docs/broker.md.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Broker, type BrokerError } from "../../Broker.js"
import * as internal from "./internal.js"

/**
 * Connection options; every field has a default (127.0.0.1:4222, reconnect forever every 250 ms).
 * @since 0.1.0
 * @category models
 */
export type NatsBrokerOptions = internal.NatsBrokerOptions

/**
 * Connects (failing with `BrokerError("Unavailable")` when NATS does not answer within `connectTimeout`);
 * drains and closes the connection when the scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: NatsBrokerOptions) => Effect.Effect<Broker.Service, BrokerError, Scope.Scope> =
  internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: NatsBrokerOptions): Layer.Layer<Broker, BrokerError> =>
  Layer.scoped(Broker, internal.make(options))

/**
 * `layer` with its options read from `Config`, e.g. `NatsBroker.layerConfig({ servers: Config.string("NATS_URL") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<NatsBrokerOptions>
): Layer.Layer<Broker, BrokerError | ConfigError.ConfigError> =>
  Layer.scoped(Broker, Effect.flatMap(Config.unwrap(config), internal.make))
