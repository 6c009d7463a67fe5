/**
 * Asynchronous messaging: publish a message to a topic, subscribe a handler to it.
 *
 * The `Broker` Tag moves **bytes**: a message is a body (`Uint8Array`), its content-type and string
 * headers. Typed topics (`Topic.make(name, schema)`) encode and validate values with the `Codecs` on top of
 * it. Without a queue every subscriber of a topic gets every message; subscribers sharing a `queue` name form
 * a queue group and each message goes to exactly one member of each group.
 *
 * Layers: `layerMemory` (one process, tests), `HttpBroker.layer` (default: subscribers serve HTTP and are
 * found through the Registry), `plugins/nats/NatsBroker` (NATS core). Delivery semantics per broker:
 * docs/broker.md.
 *
 * ```ts
 * yield* Broker.subscribe("orders.created", (message) => Effect.log(message.headers), { queue: "billing" })
 * yield* Broker.publish("orders.created", bytes, { contentType: "application/json" })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/broker/memory.js"
import type { Metadata } from "./Metadata.js"

/**
 * A message as a handler receives it.
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly topic: string
  readonly body: Uint8Array
  /** Content-type of `body` (default `application/octet-stream` for raw publishes). */
  readonly contentType: string
  /** Headers given at publish (keys lowercased). */
  readonly headers: Metadata
  /**
   * Acknowledges the message. Only meaningful with `autoAck: false`: the delivery then counts as successful
   * only if the handler called `ack` (a failure after `ack` is logged, not reported).
   */
  readonly ack: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PublishOptions {
  /** Headers delivered with the message (keys are lowercased). Default: none. */
  readonly headers?: Metadata | undefined
  /** Content-type of the body. Default `application/octet-stream` (typed topics: their codec's). */
  readonly contentType?: string | undefined
  /**
   * Return as soon as the message is handed to the broker, without waiting for delivery results
   * (failures are logged at debug level). Default false: publish waits and fails with the delivery failures.
   */
  readonly fireAndForget?: boolean | undefined
  /** Longest publish waits for delivery results. Default 10 s (HTTP), none (memory). */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SubscribeOptions {
  /** Queue group: each message goes to one subscriber of the group. Default: none (every subscriber). */
  readonly queue?: string | undefined
  /**
   * Default true: the message is acknowledged when the handler succeeds. With false the handler must call
   * `message.ack`; a message not acknowledged is a failed delivery.
   */
  readonly autoAck?: boolean | undefined
}

/**
 * A live subscription; it ends when the scope it was made in closes.
 * @since 0.1.0
 * @category models
 */
export interface Subscription {
  readonly id: string
  readonly topic: string
  readonly queue: string | undefined
  /** HTTP broker: the URL messages are POSTed to (see docs/broker.md for the format). */
  readonly endpoint?: string | undefined
}

/**
 * A message handler. Failing with `BadRequest` or `CodecError` rejects the message (HTTP 400, reason
 * `Rejected`); `Unauthorized` / `Forbidden` are reported as those reasons (auth, see
 * `AuthMiddleware.layerBroker`); any other failure or defect is `HandlerFailed`.
 * @since 0.1.0
 * @category models
 */
export type Handler<E = unknown, R = never> = (message: Message) => Effect.Effect<void, E, R>

/**
 * Why one delivery (to one subscriber, or one queue group) failed.
 * @since 0.1.0
 * @category models
 */
export type FailureReason =
  /** The subscriber refused the message: malformed, wrong schema, too large, unsupported content-type. */
  | "Rejected"
  /** The handler failed or died. */
  | "HandlerFailed"
  /** `autoAck: false` and the handler did not call `ack`. */
  | "NotAcknowledged"
  /** No member could be reached (network error, or every member of a queue group refused). */
  | "Unreachable"
  /** No answer within the publish timeout. */
  | "Timeout"
  /** The subscriber requires authentication: no valid token (or the handler failed with `Unauthorized`). */
  | "Unauthorized"
  /** The publisher's account may not publish to the topic (or the handler failed with `Forbidden`). */
  | "Forbidden"

/**
 * One failed delivery.
 * @since 0.1.0
 * @category models
 */
export interface DeliveryFailure {
  /** The subscriber (node id) or, for a queue group, the last member tried. */
  readonly subscriber: string
  readonly queue: string | undefined
  readonly reason: FailureReason
  readonly detail: string
}

/**
 * A broker operation failed.
 * - `DeliveryFailed`: the message reached the broker but some deliveries failed (`failures` says which).
 * - `Unavailable`: the broker (connection, registry) could not be used; nothing was delivered.
 * - `Timeout`: no complete result within the publish timeout.
 * - `Closed`: the broker's layer is closed.
 * @since 0.1.0
 * @category errors
 */
export class BrokerError extends Data.TaggedError("BrokerError")<{
  readonly reason: "DeliveryFailed" | "Unavailable" | "Timeout" | "Closed"
  readonly topic: string
  readonly detail: string
  readonly failures: ReadonlyArray<DeliveryFailure>
  readonly cause?: unknown
}> {
  override get message(): string {
    return `broker ${this.reason} (${this.topic}): ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Broker extends Context.Tag("effect-micro/Broker")<Broker, Broker.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Broker {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** `memory`, `http`, `nats`. */
    readonly name: string
    /** Publishes bytes; waits for the delivery results unless `fireAndForget`. */
    readonly publish: (topic: string, body: Uint8Array, options?: PublishOptions) => Effect.Effect<void, BrokerError>
    /**
     * Subscribes until the scope closes (which unsubscribes everywhere the broker advertised it). Handlers run
     * with the context (services, FiberRefs) of the fiber that called `subscribe`.
     */
    readonly subscribe: (
      topic: string,
      handler: Handler,
      options?: SubscribeOptions
    ) => Effect.Effect<Subscription, BrokerError, Scope.Scope>
  }
}

/**
 * Publishes bytes with the `Broker` in context.
 * @since 0.1.0
 * @category accessors
 */
export const publish = (
  topic: string,
  body: Uint8Array,
  options?: PublishOptions
): Effect.Effect<void, BrokerError, Broker> => Effect.flatMap(Broker, (broker) => broker.publish(topic, body, options))

/**
 * Subscribes a handler with the `Broker` in context; the handler runs with the caller's context.
 * @since 0.1.0
 * @category accessors
 */
export const subscribe = <E, R>(
  topic: string,
  handler: Handler<E, R>,
  options?: SubscribeOptions
): Effect.Effect<Subscription, BrokerError, Broker | Scope.Scope | R> =>
  // Every broker runs handlers with the context of the fiber that subscribed (which has R).
  Effect.flatMap(Broker, (broker) => broker.subscribe(topic, handler as Handler<E>, options))

/**
 * An in-process broker with the same semantics as the others (fan-out, queue groups, delivery results).
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Broker.Service> = internal.makeMemory

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Broker> = Layer.effect(Broker, internal.makeMemory)
