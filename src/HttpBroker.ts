/**
 * The default broker: every subscribing process serves an HTTP endpoint and advertises each subscription
 * in the `Registry` (service `micro.broker.<topic>`, one node per subscription); publishers look the topic
 * up (use the cached registry) and POST the message to every broadcast subscriber and to one member of each
 * queue group, batching per subscriber while many publishes are in flight.
 *
 * Delivery is at-most-once with no persistence; the publisher gets the delivery results (handler failures,
 * rejections, unreachable queue groups) as a typed `BrokerError` unless it publishes fire-and-forget.
 * Wire format and semantics: docs/broker.md.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Broker } from "./Broker.js"
import type { EjectionOptions } from "./Client.js"
import * as internal from "./internal/broker/http.js"
import type { Registry } from "./Registry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface HttpBrokerOptions {
  /** Interface the subscriber endpoint binds to. Default `"127.0.0.1"` (use `"0.0.0.0"` across hosts). */
  readonly host?: string | undefined
  /** Port of the subscriber endpoint. Default 0 (a free port). */
  readonly port?: number | undefined
  /** `host:port` to advertise instead of the bound address (default: bound; a LAN IPv4 for 0.0.0.0). */
  readonly advertise?: string | undefined
  /** Registry service name prefix; a topic's subscribers are the nodes of `<prefix><topic>`. Default `"micro.broker."`. */
  readonly servicePrefix?: string | undefined
  /** TTL of a subscription's registration. Default 90 s. */
  readonly registerTtl?: Duration.DurationInput | undefined
  /** How often a subscription is re-registered. Default 30 s. */
  readonly registerInterval?: Duration.DurationInput | undefined
  /** Longest a POST waits for its reply (then `Timeout`). Default 10 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Largest request body the endpoint accepts (bigger: 413), and largest reply a publisher reads. Default 16 MiB. */
  readonly maxBodySize?: number | undefined
  /** Most messages per batch POST. Default 1000. */
  readonly maxBatchMessages?: number | undefined
  /** Batches pipelined to one subscriber endpoint at a time (on one connection, so order is kept). Default 4. */
  readonly maxInFlight?: number | undefined
  /**
   * Messages queued for one subscriber endpoint beyond which fire-and-forget publishes wait for their results
   * (backpressure instead of unbounded memory). Default 50 000.
   */
  readonly maxPending?: number | undefined
  /** Batch size (bytes) after which a batch is sent without more messages. Default 1 MiB. */
  readonly maxBatchBytes?: number | undefined
  /**
   * Subscriber endpoint: longest a client may take to send a request's headers (Node's `headersTimeout`;
   * then the connection is closed with 408). Default 10 s; `Duration.infinity`: none.
   */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /**
   * Subscriber endpoint: longest a request's body may take to arrive after its headers (then 408 and the
   * connection is closed). The subscription is not held while a body arrives. Default 10 s; `Duration.infinity`: none.
   */
  readonly bodyTimeout?: Duration.DurationInput | undefined
  /**
   * Subscriber endpoint: longest the handler may run for one request (one message, or one batch); then it is
   * interrupted, the request gets 504 `Timeout` and the subscription's next request runs. Default 30 s; `Duration.infinity`: none.
   */
  readonly handlerTimeout?: Duration.DurationInput | undefined
  /** Subscriber endpoint: idle keep-alive connections are closed after this. Default 5 s. */
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /**
   * Publisher: longest a connection to a subscriber endpoint may take to open (then `Unreachable`, and the
   * endpoint is ejected, see `ejection`). Default 5 s.
   */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * Publisher: outlier ejection of subscriber endpoints, the RPC client's circuit breaker with the same
   * meaning and defaults (`EjectionOptions`: 5 failures in a row, 1 s doubling up to 30 s, panic threshold
   * 0.5), one per endpoint address. A refused, reset or timed-out connection ejects at once; publish timeouts
   * and 5xx replies are counted. Messages for an ejected endpoint fail at once with `Unreachable` (a queue
   * group tries another member; a group with too few usable members ignores ejection); half-open, one trial
   * batch goes out. `false`: no ejection (batches in flight still steer queue-group selection). Default: on.
   */
  readonly ejection?: EjectionOptions | false | undefined
  /** Subscriber endpoint: connections beyond this many are dropped at once (Node's `maxConnections`). Default 10 000. */
  readonly maxConnections?: number | undefined
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: HttpBrokerOptions) => Effect.Effect<Broker.Service, never, Scope.Scope | Registry> =
  internal.make

/**
 * The HTTP broker over the `Registry` in context.
 * @example
 * import * as Layer from "effect/Layer"
 * import * as CachedRegistry from "effect-micro/CachedRegistry"
 * import * as HttpBroker from "effect-micro/HttpBroker"
 * import * as MdnsRegistry from "effect-micro/MdnsRegistry"
 *
 * export const broker = HttpBroker.layer().pipe(
 *   Layer.provide(CachedRegistry.layer()),
 *   Layer.provide(MdnsRegistry.layer())
 * )
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: HttpBrokerOptions): Layer.Layer<Broker, never, Registry> =>
  Layer.scoped(Broker, internal.make(options))

/**
 * `layer` with its options read from `Config`, e.g. `HttpBroker.layerConfig({ port: Config.integer("BROKER_PORT") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<HttpBrokerOptions>
): Layer.Layer<Broker, ConfigError.ConfigError, Registry> =>
  Layer.scoped(Broker, Effect.flatMap(Config.unwrap(config), internal.make))
