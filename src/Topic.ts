/**
 * Typed topics: a topic name bound to a Schema once, so publish and subscribe are type-checked and the
 * payload is validated on both ends.
 *
 * ```ts
 * const OrderCreated = Topic.make("orders.created", Schema.Struct({ id: Schema.String, total: Schema.Number }))
 * yield* Topic.subscribe(OrderCreated, (order) => Effect.log(order.total), { queue: "billing" })
 * yield* Topic.publish(OrderCreated, { id: "o-1", total: 12 })
 * ```
 *
 * Encoding uses the `Codecs` in context (the default codecs when there are none): the topic's content-type,
 * else the default codec (JSON). An invalid value fails `publish` with `CodecError` before anything is sent.
 * A received message that does not decode with the Schema never reaches the handler: it is rejected (HTTP
 * 400, `Rejected` in the publisher's `BrokerError`).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { BrokerError, Message, PublishOptions, SubscribeOptions, Subscription } from "./Broker.js"
import { Broker } from "./Broker.js"
import * as Codec from "./Codec.js"
import type { BadRequest, CodecError } from "./Errors.js"
import * as Protobuf from "./Protobuf.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-micro/Topic")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A topic carrying values of `A` (encoded as `I`).
 * @since 0.1.0
 * @category models
 */
export interface Topic<A, I = A> {
  readonly [TypeId]: TypeId
  readonly name: string
  readonly schema: Schema.Schema<A, I, never>
  /** Content-type used to publish; default: the default codec of the `Codecs` in context. */
  readonly contentType: string | undefined
}

/**
 * Binds a topic name to a Schema.
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(
  name: string,
  schema: Schema.Schema<A, I, never>,
  options?: { readonly contentType?: string | undefined }
): Topic<A, I> => ({ [TypeId]: TypeId, name, schema, contentType: options?.contentType })

/**
 * @since 0.1.0
 * @category guards
 */
export const isTopic = (u: unknown): u is Topic<unknown, unknown> =>
  typeof u === "object" && u !== null && TypeId in u

const defaultCodecs: Codec.Codecs.Service = Codec.makeCodecs([
  Codec.json,
  Protobuf.codec,
  Protobuf.codecAlias,
  Codec.msgpack,
  Codec.bytes
])

const codecs: Effect.Effect<Codec.Codecs.Service> = Effect.map(
  Effect.serviceOption(Codec.Codecs),
  Option.getOrElse(() => defaultCodecs)
)

/**
 * Validates and encodes a value for a topic (what `publish` sends).
 * @since 0.1.0
 * @category encoding
 */
export const encode = <A, I>(
  topic: Topic<A, I>,
  value: A,
  contentType?: string | undefined
): Effect.Effect<{ readonly body: Uint8Array; readonly contentType: string }, CodecError | BadRequest> =>
  Effect.flatMap(codecs, (codecs): Effect.Effect<{ readonly body: Uint8Array; readonly contentType: string }, CodecError | BadRequest> => {
    const codec = contentType ?? topic.contentType
    const chosen = codec === undefined ? Either.right(codecs.default) : codecs.get(codec)
    if (Either.isLeft(chosen)) return Effect.fail(chosen.left)
    const encoded = chosen.right.compile(topic.schema).encode(value)
    return Either.isLeft(encoded)
      ? Effect.fail(encoded.left)
      : Effect.succeed({ body: encoded.right, contentType: chosen.right.contentType })
  })

/**
 * Decodes and validates a received message for a topic.
 * @since 0.1.0
 * @category encoding
 */
export const decode = <A, I>(topic: Topic<A, I>, message: Message): Effect.Effect<A, CodecError | BadRequest> =>
  Effect.flatMap(codecs, (codecs): Effect.Effect<A, CodecError | BadRequest> => {
    const codec = codecs.get(message.contentType)
    if (Either.isLeft(codec)) return Effect.fail(codec.left)
    return codec.right.compile(topic.schema).decode(message.body)
  })

/**
 * Publishes a value: validated and encoded first (an invalid value fails with `CodecError`, nothing sent).
 * `options.contentType` overrides the topic's.
 * @since 0.1.0
 * @category publishing
 */
export const publish = <A, I>(
  topic: Topic<A, I>,
  value: A,
  options?: PublishOptions
): Effect.Effect<void, BrokerError | CodecError | BadRequest, Broker> =>
  Effect.flatMap(encode(topic, value, options?.contentType), ({ body, contentType }) =>
    Effect.flatMap(Broker, (broker) => broker.publish(topic.name, body, { ...options, contentType })))

/**
 * Subscribes a typed handler until the scope closes. Messages that do not decode are rejected and never
 * reach the handler.
 * @since 0.1.0
 * @category subscribing
 */
export const subscribe = <A, I, E, R>(
  topic: Topic<A, I>,
  handler: (value: A, message: Message) => Effect.Effect<void, E, R>,
  options?: SubscribeOptions
): Effect.Effect<Subscription, BrokerError, Broker | Scope.Scope | R> =>
  // Every broker runs handlers with the context of the fiber that subscribed (which has R).
  Effect.flatMap(codecs, (codecs) =>
      Effect.flatMap(Broker, (broker) =>
        broker.subscribe(
          topic.name,
          (message) => {
            const codec = codecs.get(message.contentType)
            if (Either.isLeft(codec)) return Effect.fail(codec.left)
            const value = codec.right.compile(topic.schema).decode(message.body)
            return Either.isLeft(value)
              ? Effect.fail(value.left)
              : handler(value.right, message) as Effect.Effect<void, E>
          },
          options
        )))
