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
import type { ConnectionOptions } from "@nats-io/transport-node"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
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
export interface NatsBrokerOptions {
  /** `host:port` (or `nats://…`) of one or more servers. Default `"127.0.0.1:4222"`. */
  readonly servers?: string | ReadonlyArray<string> | undefined
  /**
   * Subject prefix prepended to every topic. Default none (the topic is the subject); `"micro.events."` with
   * `jetstream`.
   */
  readonly subjectPrefix?: string | undefined
  /** Timeout of the first connection. Default 5 s (then `BrokerError("Unavailable")`). */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** Wait between reconnect attempts. Default 250 ms. */
  readonly reconnectTimeWait?: Duration.DurationInput | undefined
  /** Reconnect attempts per server before giving up; -1 = forever. Default -1. */
  readonly maxReconnectAttempts?: number | undefined
  /** Messages received but not yet handled, per subscription, beyond which new ones are dropped. Default 100 000. */
  readonly maxPending?: number | undefined
  /**
   * At-least-once delivery through JetStream instead of NATS core: publishes are persisted in a stream and
   * acknowledged by the server; subscriptions are JetStream push consumers with explicit acks (a queue group
   * is a durable consumer, so its messages survive subscriber crashes and restarts). Requires a
   * `subjectPrefix` (default `"micro.events."` in this mode): the stream holds `<prefix>>`. `true` uses the
   * `JetStreamOptions` defaults. Default false: NATS core (at most once).
   */
  readonly jetstream?: JetStreamOptions | boolean | undefined
  /** Any other `@nats-io/transport-node` connection option (auth, TLS, name, ...). Default: none. */
  readonly connection?: Partial<ConnectionOptions> | undefined
}

/**
 * JetStream settings (`NatsBrokerOptions.jetstream`).
 * @since 0.1.0
 * @category models
 */
export interface JetStreamOptions {
  /** Stream name. Default `"MICRO"`. */
  readonly stream?: string | undefined
  /** How long the server waits for an ack before redelivering. Default 30 s. */
  readonly ackWait?: Duration.DurationInput | undefined
  /** Deliveries of one message before the server gives up on it; -1 = no limit. Default 10. */
  readonly maxDeliver?: number | undefined
  /** How long a publish waits for the stream's ack. Default 5 s. */
  readonly publishTimeout?: Duration.DurationInput | undefined
}

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
