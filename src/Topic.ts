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
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { BrokerError, Message, PublishOptions, SubscribeOptions, Subscription } from "./Broker.js"
import { Broker } from "./Broker.js"
import * as Codec from "./Codec.js"
import type { BadRequest, CodecError } from "./Errors.js"
import { jsonSchemaText } from "./internal/debug/describe.js"
import { TopicDirectory } from "./internal/debug/topics.js"
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
export const isTopic = (u: unknown): u is Topic<unknown, unknown> => typeof u === "object" && u !== null && TypeId in u

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
 * Per-topic publish cache: the codec chosen for the last (Codecs, requested content-type) pair, compiled for
 * the topic's Schema, and the options object handed to the broker for the last caller's options. The hot path
 * of `publish` is then one Effect step plus the broker's own.
 */
interface PublishCache {
  codecs: Codec.Codecs.Service | undefined
  requested: string | undefined
  compiled: Codec.SchemaCodec<any> | undefined
  contentType: string
  options: PublishOptions | undefined
  merged: PublishOptions | undefined
}
const publishCaches = new WeakMap<Topic<any, any>, PublishCache>()

/** The topic's publish cache, (re)compiled for these codecs and requested content-type when they changed. */
const publishCacheOf = <A, I>(
  topic: Topic<A, I>,
  requested: string | undefined,
  codecs: Codec.Codecs.Service
): PublishCache | CodecError | BadRequest => {
  let cache = publishCaches.get(topic)
  if (cache === undefined) {
    cache = {
      codecs: undefined,
      requested: undefined,
      compiled: undefined,
      contentType: "",
      options: undefined,
      merged: undefined
    }
    publishCaches.set(topic, cache)
  }
  if (cache.compiled === undefined || cache.codecs !== codecs || cache.requested !== requested) {
    const codec = requested ?? topic.contentType
    const chosen = codec === undefined ? Either.right(codecs.default) : codecs.get(codec)
    if (Either.isLeft(chosen)) return chosen.left
    cache.codecs = codecs
    cache.requested = requested
    cache.compiled = chosen.right.compile(topic.schema)
    cache.contentType = chosen.right.contentType
    cache.options = undefined
    cache.merged = undefined
  }
  return cache
}

const isFailure = (u: PublishCache | CodecError | BadRequest): u is CodecError | BadRequest => "_tag" in u

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
  Effect.flatMap(
    codecs,
    (codecs): Effect.Effect<{ readonly body: Uint8Array; readonly contentType: string }, CodecError | BadRequest> => {
      const cache = publishCacheOf(topic, contentType, codecs)
      if (isFailure(cache)) return Effect.fail(cache)
      const encoded = (cache.compiled as Codec.SchemaCodec<A>).encode(value)
      return Either.isLeft(encoded)
        ? Effect.fail(encoded.left)
        : Effect.succeed({ body: encoded.right, contentType: cache.contentType })
    }
  )

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
  // One Effect step (hot path): services read from the fiber's context directly, codec compiled once per
  // topic, options merged once per distinct options object, nothing allocated here but the encoded bytes.
  Effect.withFiberRuntime<void, BrokerError | CodecError | BadRequest, Broker>((fiber) => {
    const context = fiber.currentContext as Context.Context<Broker>
    const given: Codec.Codecs.Service | undefined = context.unsafeMap.get(Codec.Codecs.key)
    const cache = publishCacheOf(topic, options?.contentType, given ?? defaultCodecs)
    if (isFailure(cache)) return Effect.fail(cache)
    const encoded = (cache.compiled as Codec.SchemaCodec<A>).encode(value)
    if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
    const body = encoded.right
    let merged = cache.merged
    if (merged === undefined || cache.options !== options) {
      merged = options === undefined
        ? { contentType: cache.contentType }
        : { ...options, contentType: cache.contentType }
      cache.options = options
      cache.merged = merged
    }
    return Context.get(context, Broker).publish(topic.name, body, merged)
  })

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
  Effect.zipLeft(subscribeTyped(topic, handler, options), listed(topic, options))

// Shown by `Debug.Describe` of the process' servers for as long as the subscription lives.
const listed = <A, I>(topic: Topic<A, I>, options: SubscribeOptions | undefined) =>
  Effect.flatMap(TopicDirectory, (directory) =>
    Effect.acquireRelease(
      Effect.sync(() =>
        directory.add({
          topic: topic.name,
          ...(options?.queue === undefined ? {} : { queue: options.queue }),
          schema: jsonSchemaText(topic.schema)
        })
      ),
      (remove) => Effect.sync(remove)
    ))

const subscribeTyped = <A, I, E, R>(
  topic: Topic<A, I>,
  handler: (value: A, message: Message) => Effect.Effect<void, E, R>,
  options?: SubscribeOptions
): Effect.Effect<Subscription, BrokerError, Broker | Scope.Scope | R> =>
  Effect.flatMap(codecs, (codecs) =>
    Effect.flatMap(Broker, (broker) => {
      // The codec compiled for the last content-type seen (a publisher's messages share one).
      let lastContentType: string | undefined
      let lastCodec: Codec.SchemaCodec<A> | undefined
      return broker.subscribe(
        topic.name,
        (message) => {
          let compiled = lastCodec
          if (compiled === undefined || lastContentType !== message.contentType) {
            const codec = codecs.get(message.contentType)
            if (Either.isLeft(codec)) return Effect.fail(codec.left)
            compiled = codec.right.compile(topic.schema)
            lastContentType = message.contentType
            lastCodec = compiled
          }
          const value = compiled.decode(message.body)
          return Either.isLeft(value)
            ? Effect.fail(value.left)
            : handler(value.right, message) as Effect.Effect<void, E>
        },
        options
      )
    }))
