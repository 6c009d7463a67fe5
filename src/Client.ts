/**
 * Call services by name. A call is resolved through the `Registry`, a node is picked by the `Selector`
 * (skipping nodes this call already tried), a pooled multiplexed connection is dialled once per node,
 * and retryable failures are retried on another node following a `Schedule`.
 *
 * ```ts
 * const greeter = yield* Client.make(Greeter, { service: "greeter" })
 * const reply = yield* greeter.Hello({ name: "Ada" })     // Effect<string, NotFound | CallError>
 * ```
 *
 * Defaults (documented in README): JSON; per-attempt timeout 5 s for unary calls, sent to the server as
 * the call's deadline (streaming calls have none unless given); 3 retries after 20/40/80 ms (jittered).
 * Retried: connection refused / dial failures and 503 always (the request never ran); timeouts and
 * connection resets only for endpoints annotated `Contract.Idempotent`; endpoint errors never.
 *
 * @since 0.1.0
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import type * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import type { Codecs } from "./Codec.js"
import type { CallError } from "./Errors.js"
import * as internal from "./internal/client.js"
import * as Topic from "./Topic.js"
import type { Metadata } from "./Metadata.js"
import type { Registry } from "./Registry.js"
import type { Filter, Selector } from "./Selector.js"
import type { Transport } from "./Transport.js"

/**
 * Options for a client (and, overriding them, for one call).
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** Content-type of requests (the server replies in it). Default: the first codec, JSON. */
  readonly contentType?: string | undefined
  /** Per-attempt timeout, also sent to the server as the call's deadline. Default 5 s for unary calls. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Retry policy for retryable failures, or false for none. Default: 3 retries, 20 ms exponential, jittered. */
  readonly retry?: Schedule.Schedule<unknown, CallError> | false | undefined
  /** Metadata sent with the call. */
  readonly metadata?: Metadata | undefined
  /** Only nodes matching this version/metadata. */
  readonly filter?: Filter | undefined
  /** Skip discovery: call this `host:port` directly. */
  readonly node?: string | undefined
  /**
   * Affinity key: with `Selector.layerHashed`, calls with the same key go to the same node while it is
   * available (e.g. a user or tenant id, for per-node caches). Other strategies ignore it.
   */
  readonly key?: string | undefined
}

/**
 * What client middleware sees of an outgoing call; it may change the metadata.
 * @since 0.1.0
 * @category models
 */
export interface OutgoingCall {
  readonly service: string
  readonly endpoint: string
  readonly contentType: string
  readonly metadata: Metadata
}

/**
 * Client middleware: wraps a call (for streaming calls, opening the stream). Call `next` with the
 * (possibly changed) call to proceed.
 * @since 0.1.0
 * @category models
 */
export type ClientMiddleware = <A, E, R>(
  call: OutgoingCall,
  next: (call: OutgoingCall) => Effect.Effect<A, E, R>
) => Effect.Effect<A, E | CallError, R>

/**
 * The client runtime: connection pool, registry, selector, codecs, defaults and middleware.
 * @since 0.1.0
 * @category tags
 */
export class Client extends Context.Tag("effect-micro/Client")<Client, internal.ClientService>() {}

/**
 * A typed client for a contract: one method per endpoint, shaped by its call shape.
 * @since 0.1.0
 * @category models
 */
export type TypedClient<Rpcs extends Rpc.Any> = {
  readonly [R in Rpcs as R["_tag"]]: Method<R>
}

/**
 * @since 0.1.0
 * @category models
 */
export type Method<R> = R extends Rpc.Rpc<infer _Tag, infer P, infer S, infer E, infer _M> ?
  [P] extends [RpcSchema.Stream<infer PA, infer _PE>] ?
    [S] extends [RpcSchema.Stream<infer SA, infer SE>] ?
      (input: Stream.Stream<PA["Type"]>, options?: ClientOptions) => Stream.Stream<
        SA["Type"],
        SE["Type"] | E["Type"] | CallError
      >
    : (input: Stream.Stream<PA["Type"]>, options?: ClientOptions) => Effect.Effect<S["Type"], E["Type"] | CallError>
  : [S] extends [RpcSchema.Stream<infer SA, infer SE>] ?
    (input: Rpc.PayloadConstructor<R>, options?: ClientOptions) => Stream.Stream<
      SA["Type"],
      SE["Type"] | E["Type"] | CallError
    >
  : (input: Rpc.PayloadConstructor<R>, options?: ClientOptions) => Effect.Effect<S["Type"], E["Type"] | CallError>
  : never

/**
 * A typed client for `service` speaking `group`.
 * @since 0.1.0
 * @category constructors
 */
export const make: <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ClientOptions & { readonly service: string }
) => Effect.Effect<TypedClient<Rpcs>, never, Client> = internal.make

/**
 * The client runtime. Needs a Registry (use the cached one in production), a Selector, a Transport and
 * Codecs. Connections are closed when the layer's scope closes.
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: LayerOptions
): Layer.Layer<Client, never, Registry | Selector | Transport | Codecs> => Layer.scoped(Client, internal.makeService(options))

/**
 * Options of the client runtime: call defaults plus middleware and limits.
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends ClientOptions {
  readonly middleware?: ReadonlyArray<ClientMiddleware> | undefined
  /**
   * Largest frame sent or accepted (default 4 MiB, the server's default). A request larger than this fails
   * at once with `BadRequest`, without touching the network.
   */
  readonly maxFrameSize?: number | undefined
}

/**
 * Publishes a typed event (validated and encoded by its topic's Schema) through the `Broker` in context:
 * `yield* Client.publish(OrderCreated, order)`. Delivery failures come back as typed errors.
 * @since 0.1.0
 * @category messaging
 */
export const publish: typeof Topic.publish = Topic.publish
