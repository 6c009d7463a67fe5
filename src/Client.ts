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
 * Resilience (docs/reliability.md): the runtime tracks every node it calls — calls in flight (for the
 * default least-outstanding selector), a circuit breaker per node (`ejection`), frozen nodes detected by
 * PING (`hungNodes`) — and limits retries to a budget (`retryBudget`). Hedging is opt-in per client or
 * call (`hedge`).
 *
 * @since 0.1.0
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import type * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Stream from "effect/Stream"
import type { Codecs } from "./Codec.js"
import * as Debug from "./Debug.js"
import type { CallError } from "./Errors.js"
import * as internal from "./internal/rpc/client.js"
import * as runtime from "./internal/rpc/clientService.js"
import * as internalDynamic from "./internal/rpc/dynamic.js"
import type { Metadata } from "./Metadata.js"
import type { Registry } from "./Registry.js"
import type { Filter, Selector } from "./Selector.js"
import * as Topic from "./Topic.js"
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
  /** Metadata sent with the call. Default: none. */
  readonly metadata?: Metadata | undefined
  /** Only nodes matching this version/metadata. Default: every node of the service. */
  readonly filter?: Filter | undefined
  /** Skip discovery: call this `host:port` directly. Default: none (the registry and selector pick a node). */
  readonly node?: string | undefined
  /**
   * Affinity key: with `Selector.layerHashed`, calls with the same key go to the same node while it is
   * available (e.g. a user or tenant id, for per-node caches). Other strategies ignore it. Default: none.
   */
  readonly key?: string | undefined
  /**
   * Hedged requests, for endpoints annotated `Contract.Idempotent` only (ignored on others and on streaming
   * calls): when the first attempt has not answered after `delay`, a second one goes to another node; the
   * first answer wins and the other attempt is cancelled (CANCEL on the wire). A hedge is paid from the
   * retry budget and is skipped when the budget is empty. Default: off.
   */
  readonly hedge?: HedgeOptions | false | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HedgeOptions {
  /** How long the first attempt may go unanswered before the hedge is sent (e.g. the endpoint's p95). */
  readonly delay: Duration.DurationInput
}

/**
 * Outlier ejection: a circuit breaker per node address, shared by every call of one client runtime.
 * Closed → (failures) → open for an ejection time that doubles with each ejection in a row → half-open,
 * where exactly one trial call goes through: its success closes the breaker, its failure re-opens it.
 * @since 0.1.0
 * @category models
 */
export interface EjectionOptions {
  /**
   * Failures in a row that eject a node: client-side timeouts, connection resets, 503s. Default 5.
   * A refused or failed dial, or a hung node (see `HungNodeOptions`), ejects at once.
   */
  readonly consecutiveFailures?: number | undefined
  /** The first ejection time; each ejection in a row doubles it (1 s, 2 s, 4 s …). Default 1 s. */
  readonly baseTime?: Duration.DurationInput | undefined
  /**
   * The cap on the ejection time (default 30 s). A node that stayed healthy this long starts again from
   * `baseTime` on its next ejection.
   */
  readonly maxTime?: Duration.DurationInput | undefined
  /**
   * When fewer than this fraction of a call's candidate nodes are usable, ejection is ignored for that call
   * (Envoy's panic threshold), so ejection never empties a service. Default 0.5.
   */
  readonly panicThreshold?: number | undefined
}

/**
 * Hung-node detection: a node with calls in flight that sends nothing for a while gets a PING; no answer
 * means the process is frozen (stopped, swapping, a blocked event loop), and the node is ejected without
 * waiting for each call's deadline. The calls already on it keep their deadlines.
 * @since 0.1.0
 * @category models
 */
export interface HungNodeOptions {
  /** How often nodes with calls in flight are checked. Default 50 ms. */
  readonly interval?: Duration.DurationInput | undefined
  /** A node is pinged after sending nothing for max(`quietMin`, `quietMultiple` × its recent latency). Default 200 ms. */
  readonly quietMin?: Duration.DurationInput | undefined
  /** See `quietMin`. Default 8. */
  readonly quietMultiple?: number | undefined
  /** How long the PING may go unanswered before the node is ejected as hung. Default 250 ms. */
  readonly pingTimeout?: Duration.DurationInput | undefined
}

/**
 * The retry budget of a client runtime (Finagle's retry budget, gRPC's retry throttling): every call
 * deposits `ratio` of a retry, every retry (and hedge) withdraws one, so a sick cluster is not hit with
 * a retry storm. A retry refused by the budget fails the call with `RetryBudgetExhausted`.
 * @since 0.1.0
 * @category models
 */
export interface RetryBudgetOptions {
  /** Retries allowed per call made, on average. Default 0.2 (20 %). */
  readonly ratio?: number | undefined
  /** Retries allowed per second whatever the traffic (the floor, for clients that make few calls). Default 10. */
  readonly minRetriesPerSecond?: number | undefined
  /** The most retries the budget saves up (the largest burst; it starts full). Default 100. */
  readonly burst?: number | undefined
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
 * How one node looks to this client runtime (see docs/reliability.md for the breaker).
 * @since 0.1.0
 * @category models
 */
export interface NodeStatus {
  readonly address: string
  /** `closed`: in use; `open`: ejected until `ejectedUntil`; `half-open`: one trial call admitted. */
  readonly status: "closed" | "open" | "half-open"
  /** Calls sent to it and not answered yet. */
  readonly outstanding: number
  readonly consecutiveFailures: number
  /** While open: when it turns half-open (epoch millis of the client's Clock). */
  readonly ejectedUntil: number | undefined
  /** Why it was last ejected. */
  readonly reason: "refused" | "failure" | "hung" | undefined
}

/**
 * @since 0.1.0
 */
export declare namespace Client {
  /**
   * What the client runtime shows of itself. Typed clients come from `Client.make`; connections, the
   * timing wheel and the breaker state stay internal.
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The call defaults of this runtime (`Client.layer(options)`). */
    readonly defaults: ClientOptions
    /** Every node this runtime has called recently, with its breaker state and calls in flight. */
    readonly nodes: () => ReadonlyArray<NodeStatus>
  }
}

/**
 * The client runtime: connection pool, registry, selector, codecs, defaults and middleware.
 * @since 0.1.0
 * @category tags
 */
export class Client extends Context.Tag("effect-micro/Client")<Client, Client.Service>() {}

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
 * Options of one call from Promise code: the client's options, and a signal that cancels the call (the
 * server hears CANCEL; the Promise rejects with the signal's reason).
 * @since 0.1.0
 * @category models
 */
export interface PromiseCallOptions extends ClientOptions {
  /** Aborting it cancels the call (CANCEL to the server) and rejects with its reason. Default: none. */
  readonly signal?: AbortSignal | undefined
}

/**
 * A typed client for Promise code (`makePromise`): one method per endpoint, shaped by its call shape.
 * @since 0.1.0
 * @category models
 */
export type PromiseClient<Rpcs extends Rpc.Any> = {
  readonly [R in Rpcs as R["_tag"]]: PromiseMethod<R>
}

/**
 * A method of a `PromiseClient`. A unary or client-stream call resolves with the reply and rejects with the
 * error the Effect method fails with (the endpoint's error or a `CallError`, as they are: `error._tag`); a
 * streaming reply is an async iterable, which throws that error. Request streams are iterables or async
 * iterables.
 * @since 0.1.0
 * @category models
 */
export type PromiseMethod<R> = R extends Rpc.Rpc<infer _Tag, infer P, infer S, infer _E, infer _M> ?
  [P] extends [RpcSchema.Stream<infer PA, infer _PE>] ? [S] extends [RpcSchema.Stream<infer SA, infer _SE>] ? (
        input: AsyncIterable<PA["Type"]> | Iterable<PA["Type"]>,
        options?: PromiseCallOptions
      ) => AsyncIterable<SA["Type"]>
    : (input: AsyncIterable<PA["Type"]> | Iterable<PA["Type"]>, options?: PromiseCallOptions) => Promise<S["Type"]>
  : [S] extends [RpcSchema.Stream<infer SA, infer _SE>] ?
    (input: Rpc.PayloadConstructor<R>, options?: PromiseCallOptions) => AsyncIterable<SA["Type"]>
  : (input: Rpc.PayloadConstructor<R>, options?: PromiseCallOptions) => Promise<S["Type"]>
  : never

/**
 * A typed client for code that is not an Effect (an Express handler, a script, a test): the same calls as
 * `make` (resolved, balanced, retried, with deadlines) as Promises and async iterables, on the runtime
 * this Effect runs in (its `Client` and, for middleware, its context).
 *
 * Prefer it to `runtime.runPromise(client.X(...))` per call: a unary call whose node is connected settles
 * its Promise straight from the reply, without starting a fiber (a fiber per call costs about as much CPU
 * as the rest of the call, bench/README.md).
 *
 * ```ts
 * const runtime = ManagedRuntime.make(Defaults.layer)
 * const greeter = await runtime.runPromise(Client.makePromise(Greeter, { service: "greeter" }))
 * const reply = await greeter.Hello({ name: "Ada" })
 * ```
 * @since 0.1.0
 * @category constructors
 */
export const makePromise: <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ClientOptions & { readonly service: string }
) => Effect.Effect<PromiseClient<Rpcs>, never, Client> = internal.makePromise

/**
 * Asks a service's built-in `Debug.Health` endpoint: one node of it as the selector picks, or the one at
 * `options.node` (an address). Not retried by default: a probe should see the node as it is.
 * @since 0.1.0
 * @category debug
 */
export const health = (
  service: string,
  options?: ClientOptions
): Effect.Effect<Debug.Health, CallError, Client> =>
  Effect.flatMap(make(Debug.Contract, { retry: false, ...options, service }), (debug) => debug["Debug.Health"]())

/**
 * Asks a service's built-in `Debug.Stats` endpoint (see `health` for which node answers).
 * @since 0.1.0
 * @category debug
 */
export const stats = (
  service: string,
  options?: ClientOptions
): Effect.Effect<Debug.Stats, CallError, Client> =>
  Effect.flatMap(make(Debug.Contract, { retry: false, ...options, service }), (debug) => debug["Debug.Stats"]())

/**
 * Asks a service's built-in `Debug.Describe` endpoint: its endpoints, their call shapes and the JSON Schemas
 * of their messages (see `health` for which node answers).
 * @since 0.1.0
 * @category debug
 */
export const describe = (
  service: string,
  options?: ClientOptions
): Effect.Effect<Debug.Description, CallError, Client> =>
  Effect.flatMap(make(Debug.Contract, { retry: false, ...options, service }), (debug) => debug["Debug.Describe"]())

/**
 * A client of a service without its TypeScript contract: `Debug.Describe` tells its endpoints, and each is
 * callable with any JSON value (the server validates it against its real Schemas). `methods[name]` is
 * `(json) => Effect` (unary), `(json) => Stream` (server stream), `(Stream) => Effect` (client stream) or
 * `(Stream) => Stream` (bidi); endpoint errors fail with their JSON value. Messages travel as JSON, or as
 * MessagePack with `contentType: "application/msgpack"` (protobuf needs the real Schemas). For the CLI,
 * gateways and scripts.
 * @since 0.1.0
 * @category constructors
 */
export const dynamic: (
  service: string,
  options?: ClientOptions
) => Effect.Effect<DynamicClient, CallError, Client> = internalDynamic.dynamic

/**
 * @since 0.1.0
 * @category models
 */
export type DynamicClient = internalDynamic.DynamicClient

/**
 * The client runtime. Needs a Registry (use the cached one in production), a Selector, a Transport and
 * Codecs. Connections are closed when the layer's scope closes.
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options?: ClientLayerOptions
): Layer.Layer<Client, never, Registry | Selector | Transport | Codecs> =>
  Layer.scoped(Client, runtime.makeService(options))

/**
 * Options of the client runtime: call defaults plus middleware and limits.
 * @since 0.1.0
 * @category models
 */
export interface ClientLayerOptions extends ClientOptions {
  /** Middleware run around every call of this runtime, outermost first. Default: none. */
  readonly middleware?: ReadonlyArray<ClientMiddleware> | undefined
  /**
   * Largest frame sent or accepted (default 4 MiB, the server's default). A request larger than this fails
   * at once with `BadRequest`, without touching the network.
   */
  readonly maxFrameSize?: number | undefined
  /**
   * Outlier ejection of failing nodes (see `EjectionOptions` for the defaults); `false` turns it off. Default: on.
   */
  readonly ejection?: EjectionOptions | false | undefined
  /** Hung-node detection (see `HungNodeOptions` for the defaults); `false` turns it off. Default: on. */
  readonly hungNodes?: HungNodeOptions | false | undefined
  /** The retry budget (see `RetryBudgetOptions` for the defaults); `false` allows every retry. Default: on. */
  readonly retryBudget?: RetryBudgetOptions | false | undefined
}

/**
 * Publishes a typed event (validated and encoded by its topic's Schema) through the `Broker` in context:
 * `yield* Client.publish(OrderCreated, order)`. Delivery failures come back as typed errors.
 * @since 0.1.0
 * @category messaging
 */
export const publish: typeof Topic.publish = Topic.publish
