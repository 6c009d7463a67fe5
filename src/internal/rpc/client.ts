/**
 * Typed clients: `Client.make(group, options)` builds one method per endpoint; `Caller` runs each call
 * (resolve → select → pooled connection → exchange, retried per the call's rules) for the four call shapes.
 * The runtime they share is clientService.ts; one unary call on the wire is unaryExchange.ts.
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ClientOptions, OutgoingCall, PromiseCallOptions } from "../../Client.js"
import { Client } from "../../Client.js"
import type { CallShape } from "../../Contract.js"
import { schemasOf } from "../../Contract.js"
import type { CallError, MicroError, TransportError } from "../../Errors.js"
import { BadRequest, ServiceUnavailable, StreamClosed, Timeout } from "../../Errors.js"
import type { Metadata } from "../../Metadata.js"
import { empty as emptyMetadata, merge as mergeMetadata, outgoingRef } from "../../Metadata.js"
import type { Node, Registry, Service } from "../../Registry.js"
import { CallMetrics } from "../debug/metrics.js"
import type { Peekable } from "../registry/cached.js"
import { peekKey } from "../registry/cached.js"
import { recordRetry } from "../telemetry/retry.js"
import type { CallAttempts } from "./callTarget.js"
import { frameworkCode, withTarget } from "./callTarget.js"
import type { CallConnection, CallHandlers } from "./clientConnection.js"
import type { ClientService } from "./clientService.js"
import { runtimeOf } from "./clientService.js"
import type { CompiledEndpoint } from "./endpoint.js"
import { decodeError, EndpointCodecs } from "./endpoint.js"
import { Inbox } from "./inbox.js"
import { inputStream, PromiseRunner } from "./promiseCalls.js"
import { budgetExhausted, isRetryable, neverReachedAServer } from "./retryRules.js"
import { Outcome } from "./serverStats.js"
import { Sender } from "./streamSender.js"
import type { ExchangeContext } from "./unaryExchange.js"
import type { WaitingCall } from "./unaryExchange.js"
import { LatencyObserver, protocolError, UnaryExchange, waitingOf } from "./unaryExchange.js"
import { DEFAULT_WINDOW, FRAME_HEADER, tryEncodeCallHeader } from "./wire.js"

export const defaults = {
  timeout: Duration.seconds(5),
  retries: 3,
  /** 20 ms, 40 ms, 80 ms (jittered): enough to ride over a node dying, short enough not to pile up. */
  retrySchedule: Schedule.exponential("20 millis").pipe(Schedule.jittered, Schedule.intersect(Schedule.recurs(3)))
} as const

// ---------------------------------------------------------------------------------------------
// Typed clients

interface Endpoint {
  readonly name: string
  readonly shape: CallShape
  readonly idempotent: boolean
  readonly codecs: EndpointCodecs
  readonly construct: (input: unknown) => unknown
  /** Encoded call headers without per-call metadata, by content-type. */
  readonly headers: Map<string, Buffer>
}

interface Resolved {
  readonly compiled: CompiledEndpoint
  readonly header: Buffer
  readonly metadata: Metadata
  readonly timeoutMillis: number
  readonly retry: Schedule.Schedule<unknown, CallError> | undefined
  readonly call: OutgoingCall
  /** The call's affinity key for the selector. */
  readonly key: string | undefined
  /** Hedge after this many ms (idempotent unary endpoints only); 0 for no hedging. */
  readonly hedgeMillis: number
}

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  clientOptions: ClientOptions & { readonly service: string }
): Effect.Effect<any, never, Client> =>
  Effect.map(Client, (runtime) => methods(group, runtimeOf(runtime), clientOptions, (caller) => caller.method()))

/** The same client for Promise code: unary calls settle Promises, streams are async iterables. */
export const makePromise = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  clientOptions: ClientOptions & { readonly service: string }
): Effect.Effect<any, never, Client> =>
  Effect.flatMap(Client, (service) =>
    Effect.map(Effect.runtime<never>(), (runtime) => {
      const runner = new PromiseRunner(runtime)
      return methods(group, runtimeOf(service), clientOptions, (caller) => caller.promiseMethod(runner))
    }))

/** One method per endpoint of `group`, made by `method` from the endpoint's `Caller`. */
const methods = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  client: ClientService,
  clientOptions: ClientOptions & { readonly service: string },
  method: (caller: Caller) => unknown
): Record<string, unknown> => {
  const service = clientOptions.service
  const out: Record<string, unknown> = {}
  for (const rpc of group.requests.values() as Iterable<Rpc.AnyWithProps>) {
    const schemas = schemasOf(rpc)
    const payloadSchema: any = rpc.payloadSchema
    const endpoint: Endpoint = {
      name: rpc._tag,
      shape: schemas.shape,
      idempotent: schemas.idempotent,
      codecs: new EndpointCodecs(schemas),
      // Class payloads (Rpc.make with primaryKey) must be instances to encode.
      construct: payloadSchema.ast._tag === "Transformation" && typeof payloadSchema === "function"
        ? (input) => input instanceof payloadSchema ? input : new payloadSchema(input)
        : (input) => input,
      headers: new Map()
    }
    out[rpc._tag] = method(new Caller(client, service, endpoint, clientOptions))
  }
  return out
}

/** How a finished call counts in metrics. */
const outcomeOf = (exit: Exit.Exit<unknown, unknown>): Outcome =>
  Exit.isSuccess(exit) ? Outcome.Succeeded : Cause.isInterruptedOnly(exit.cause) ? Outcome.Cancelled : Outcome.Failed

/** A failed call's code for metrics: the framework error's, or `error`. */
const codeOf = (exit: Exit.Exit<unknown, unknown>): string | undefined =>
  Exit.isFailure(exit) ?
    Option.match(Cause.failureOption(exit.cause), {
      onNone: () => "500",
      onSome: frameworkCode
    }) :
    undefined

/** `effect` reported to `metrics` (only when `Debug.layerMetrics` is on: this allocates per call). */
const measured = <A, E, R>(metrics: CallMetrics, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    metrics.start()
    const startedAt = performance.now()
    return Effect.onExit(
      effect,
      (exit) => Effect.sync(() => metrics.end(outcomeOf(exit), performance.now() - startedAt, codeOf(exit)))
    )
  })

/** `stream` reported to `metrics`: from when it is run until it ends (a stream stopped early is cancelled). */
const measuredStream = <A, E, R>(metrics: CallMetrics, stream: Stream.Stream<A, E, R>): Stream.Stream<A, E, R> =>
  Stream.suspend(() => {
    metrics.start()
    const startedAt = performance.now()
    return Stream.ensuringWith(
      stream,
      (exit) => Effect.sync(() => metrics.end(outcomeOf(exit), performance.now() - startedAt, codeOf(exit)))
    )
  })

/** A selected node and the pooled connection to it. */
class Connected {
  constructor(readonly node: Node, readonly connection: CallConnection) {}
}

/** `effect` itself when it is already an Exit (what `Effect.succeed` and `Effect.fail` return): read at once. */
const exitOf = <A, E>(effect: Effect.Effect<A, E>): Exit.Exit<A, E> | undefined =>
  Exit.isExit(effect) ? (effect as Exit.Exit<A, E>) : undefined

const toEffect = <E>(connected: Connected | Effect.Effect<Connected, E>): Effect.Effect<Connected, E> =>
  connected instanceof Connected ? Effect.succeed(connected) : connected

/**
 * The nodes one logical call has tried, for the selector to avoid them on a retry or a hedge; also the call's
 * identity as a half-open trial, and what a failed call reports (`withTarget`). The Set is made only when a
 * second attempt needs it: most calls make one.
 */
class Attempts implements CallAttempts {
  private first: string | undefined = undefined
  private set: Set<string> | undefined = undefined
  count = 0
  lastAddress: string | undefined = undefined

  add(node: Node): void {
    this.count++
    this.lastAddress = node.address
    const id = node.id
    if (this.set !== undefined) this.set.add(id)
    else if (this.first === undefined) this.first = id
    else if (id !== this.first) this.set = new Set([this.first, id])
  }

  nodes(): number {
    return this.set !== undefined ? this.set.size : this.first === undefined ? 0 : 1
  }

  /** The nodes tried so far, undefined if none. */
  tried(): ReadonlySet<string> | undefined {
    if (this.set === undefined && this.first !== undefined) this.set = new Set([this.first])
    return this.set
  }
}

class Caller {
  private plainResolved: Resolved | undefined = undefined
  /** `options.node`, as the Node every call uses. */
  private readonly directNode: Node | undefined
  /** What each unary exchange of this endpoint shares. */
  private readonly context: ExchangeContext
  /** The endpoint's client metrics, when `Debug.layerMetrics` is on. */
  private readonly metrics: CallMetrics | undefined

  constructor(
    private readonly client: ClientService,
    private readonly service: string,
    private readonly endpoint: Endpoint,
    private readonly options: ClientOptions
  ) {
    this.metrics = client.metrics ? new CallMetrics("client", service, endpoint.name) : undefined
    const direct = options.node
    this.directNode = direct === undefined ? undefined : { id: direct, address: direct, metadata: {} }
    this.context = {
      service,
      deadlines: client.deadlines,
      health: client.health,
      selector: client.selector,
      hungWatch: client.hungWatch
    }
  }

  method(): (input: unknown, options?: ClientOptions) => unknown {
    const metrics = this.metrics
    switch (this.endpoint.shape) {
      case "unary":
        // Unary attempts are measured by their exchange (no Effect op per call): see `wait`.
        return (input, options) => this.withResolved(options, (resolved, fiber) => this.unary(resolved, input, fiber))
      case "client-stream":
        return (input, options) => {
          const call = this.withResolved(
            options,
            (resolved) => this.clientStream(resolved, input as Stream.Stream<unknown>)
          )
          return metrics === undefined ? call : measured(metrics, call)
        }
      case "server-stream":
        return (input, options) => {
          const stream = Stream.unwrapScoped(
            this.withResolved(options, (resolved) => this.openStream(resolved, input, undefined))
          )
          return metrics === undefined ? stream : measuredStream(metrics, stream)
        }
      case "bidi":
        return (input, options) => {
          const stream = Stream.unwrapScoped(
            this.withResolved(
              options,
              (resolved) => this.openStream(resolved, undefined, input as Stream.Stream<unknown>)
            )
          )
          return metrics === undefined ? stream : measuredStream(metrics, stream)
        }
    }
  }

  /** The endpoint's method for Promise code (`Client.makePromise`). */
  promiseMethod(runner: PromiseRunner): (input: unknown, options?: PromiseCallOptions) => unknown {
    const method = this.method() as (input: unknown, options?: ClientOptions) => any
    switch (this.endpoint.shape) {
      case "unary":
        return (input, options) => this.promiseUnary(input, options, runner, method)
      case "client-stream":
        return (input, options) => runner.run(method(inputStream(input as Iterable<unknown>), options), options?.signal)
      case "server-stream":
        return (input, options) => runner.iterable(method(input, options), options?.signal)
      case "bidi":
        return (input, options) =>
          runner.iterable(method(inputStream(input as Iterable<unknown>), options), options?.signal)
    }
  }

  /**
   * A unary call from Promise code. The common case (no per-call options but `signal`, no middleware, no
   * hedging, the node's connection open) settles the Promise from the exchange's callback: no fiber, whose
   * cost (≈ 10 µs of CPU and garbage V8 promotes, per call) was most of a Promise caller's. Retries, dials
   * and the rest run on the runtime, as `method` does.
   */
  private promiseUnary(
    input: unknown,
    options: PromiseCallOptions | undefined,
    runner: PromiseRunner,
    method: (input: unknown, options?: ClientOptions) => Effect.Effect<unknown, unknown>
  ): Promise<unknown> {
    const signal = options?.signal
    const resolved = this.plainResolved
    if (
      resolved === undefined || resolved.hedgeMillis > 0 || !runner.plain || this.client.middleware.length > 0 ||
      !onlySignal(options)
    ) return runner.run(method(input, signal === undefined ? options : withoutSignal(options!)), signal)
    if (signal?.aborted) return Promise.reject(signal.reason)
    const encoded = resolved.compiled.request.encode(this.endpoint.construct(input))
    if (Either.isLeft(encoded)) return Promise.reject(encoded.left)
    const body = encoded.right
    const tooLarge = this.tooLarge(resolved, body)
    if (tooLarge !== undefined) return Promise.reject(tooLarge)
    const attempts = new Attempts()
    if (resolved.retry !== undefined) this.client.budget?.deposit()
    const recover = this.recover(resolved, attempts, (attempts) => this.once(resolved, body, attempts, undefined))
    const connected = this.connectNow(attempts, resolved.key, true)
    if (!(connected instanceof Connected)) {
      return runner.run(
        Effect.catchAll(
          Effect.flatMap(connected, (c) => this.exchange(resolved, body, c.connection, c.node, attempts, undefined)),
          recover
        ),
        signal
      )
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        call.abandon()
        reject(signal!.reason)
      }
      const call = this.start(resolved, body, connected.connection, connected.node, attempts, undefined, (result) => {
        signal?.removeEventListener("abort", onAbort)
        // An outcome the exchange gives as an Exit settles here: success, or a failure not retried.
        const exit = exitOf(result)
        if (exit !== undefined && Exit.isSuccess(exit)) return resolve(exit.value)
        const error = exit === undefined ? Option.none() : Cause.failureOption(exit.cause)
        if (Option.isSome(error) && !this.retries(resolved, error.value)) {
          return reject(withTarget(error.value, this.service, this.endpoint.name, attempts))
        }
        // Retries, and failures that tell the selector about the node, run on the runtime.
        runner.run(Effect.catchAll(result, recover), signal).then(resolve, reject)
      })
      signal?.addEventListener("abort", onAbort, { once: true })
    })
  }

  /** Merges options, picks the codec, builds the header, and runs client middleware around `run`. */
  private withResolved<A, E, R>(
    callOptions: ClientOptions | undefined,
    /** `fiber`: the fiber the call runs on, when known (no middleware: it could run `run` elsewhere). */
    run: (resolved: Resolved, fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | MicroError, R> {
    // One primitive op to read the outgoing metadata (instead of FiberRef.get + flatMap).
    return Effect.withFiberRuntime((fiber) => {
      const outgoing = fiber.getFiberRef(outgoingRef)
      const client = this.client
      // The common call (no per-call options, no outgoing metadata, no middleware) reuses one Resolved.
      const plain = callOptions === undefined && outgoing === emptyMetadata && client.middleware.length === 0
      if (plain && this.plainResolved !== undefined) return run(this.plainResolved, fiber)
      const contentType = callOptions?.contentType ?? this.options.contentType ?? client.defaults.contentType
      const codec = contentType === undefined ? Either.right(client.codecs.default) : client.codecs.get(contentType)
      if (Either.isLeft(codec)) return Effect.fail(codec.left)
      const metadata = mergeMetadata(client.defaults.metadata, this.options.metadata, outgoing, callOptions?.metadata)
      const call: OutgoingCall = {
        service: this.service,
        endpoint: this.endpoint.name,
        contentType: codec.right.contentType,
        metadata
      }
      const isStream = this.endpoint.shape !== "unary"
      const timeout = callOptions?.timeout ?? this.options.timeout ?? client.defaults.timeout ??
        (isStream ? undefined : defaults.timeout)
      const retryOption = callOptions?.retry ?? this.options.retry ?? client.defaults.retry
      const compiled = this.endpoint.codecs.get(codec.right)
      const key = callOptions?.key ?? this.options.key
      const hedge = callOptions?.hedge ?? this.options.hedge ?? client.defaults.hedge
      const hedgeMillis = hedge && this.endpoint.idempotent && !isStream
        ? Math.max(1, Duration.toMillis(Duration.decode(hedge.delay)))
        : 0
      const resolve = (call: OutgoingCall, header: Buffer): Resolved => ({
        key,
        hedgeMillis,
        compiled,
        header,
        metadata: call.metadata,
        timeoutMillis: timeout === undefined ? 0 : Duration.toMillis(Duration.decode(timeout)),
        retry: retryOption === false ? undefined : retryOption ?? defaults.retrySchedule,
        call
      })
      if (client.middleware.length === 0) {
        const header = this.header(call)
        if (typeof header === "string") return Effect.fail(BadRequest.of(header, "effect-micro.client"))
        const resolved = resolve(call, header)
        if (plain) this.plainResolved = resolved
        return run(resolved, fiber)
      }
      let next = (c: OutgoingCall): Effect.Effect<unknown, unknown, any> => {
        // Metadata a middleware added (e.g. a token) can make the header too large: a typed error, not a throw.
        const header = this.header(c)
        return typeof header === "string"
          ? Effect.fail(BadRequest.of(header, "effect-micro.client"))
          : run(resolve(c, header), undefined)
      }
      for (let i = client.middleware.length - 1; i >= 0; i--) {
        const middleware = client.middleware[i]!
        const inner = next
        next = (c) => middleware(c, inner)
      }
      return next(call) as Effect.Effect<A, E | MicroError, R>
    })
  }

  /** The encoded call header, or why it cannot be sent (too large for the format). */
  private header(call: OutgoingCall): Buffer | string {
    const metadataEmpty = Object.keys(call.metadata).length === 0
    if (metadataEmpty) {
      const cached = this.endpoint.headers.get(call.contentType)
      if (cached !== undefined) return cached
    }
    const header = tryEncodeCallHeader(call)
    if (metadataEmpty && typeof header !== "string") this.endpoint.headers.set(call.contentType, header)
    return header
  }

  /** Resolve → select (avoiding nodes this call tried) → pooled connection, as an Effect (streaming calls). */
  private connect(attempts: Attempts, key: string | undefined): Effect.Effect<Connected, MicroError> {
    const connected = this.connectNow(attempts, key, false)
    return connected instanceof Connected ? Effect.succeed(connected) : connected
  }

  /**
   * Resolve → select (avoiding nodes this call tried) → pooled connection. Synchronous (no Effect step) when
   * the registry and the selector answer at once (a fresh cache entry, `Effect.succeed`) and the pool has the
   * connection open: the common call. With the rest of this path's trimming (no `tried` Set per call, no
   * catchAll per attempt, one `withFiberRuntime`), allocation per call went from 10.3 to 6.3 KB for a fiber
   * caller and from 13.8 to 9.8 KB for a Promise caller (`CLIENT_COST_ALLOC=1 npx tsx bench/clientCost.ts`).
   *
   * `trial`: a unary call claims a half-open node's single trial as soon as it is selected (identified by
   * its `attempts`), so that calls selected while the connection is being dialled do not pile onto it.
   */
  private connectNow(
    attempts: Attempts,
    key: string | undefined,
    trial: boolean
  ): Connected | Effect.Effect<Connected, MicroError> {
    const direct = this.directNode
    if (direct !== undefined) return this.use(direct, undefined, false)
    const registry = this.client.registry as Registry["Type"] & Peekable
    const cached = registry[peekKey]?.(this.service)
    if (cached !== undefined) return this.selectNow(cached, attempts, key, trial)
    const lookup = registry.getService(this.service)
    // A registry answering with `Effect.succeed` (the static one) is read at once.
    const answered = exitOf(lookup)
    if (answered !== undefined && Exit.isSuccess(answered)) return this.selectNow(answered.value, attempts, key, trial)
    return Effect.matchEffect(lookup, {
      onFailure: (error) =>
        Effect.fail(
          error._tag === "RegistryError"
            ? ServiceUnavailable.of(`registry failed: ${error.message}`, "effect-micro.client")
            : error
        ),
      onSuccess: (versions) => toEffect(this.selectNow(versions, attempts, key, trial))
    })
  }

  private selectNow(
    versions: ReadonlyArray<Service>,
    attempts: Attempts,
    key: string | undefined,
    trial: boolean
  ): Connected | Effect.Effect<Connected, MicroError> {
    const selected = this.client.selector.select({
      service: this.service,
      endpoint: this.endpoint.name,
      versions,
      filter: this.options.filter,
      tried: attempts.tried(),
      key,
      health: this.client.health
    })
    const picked = exitOf(selected)
    if (picked !== undefined) {
      return Exit.isSuccess(picked) ? this.use(picked.value, attempts, trial) : Exit.failCause(picked.cause)
    }
    return Effect.flatMap(selected, (node) => toEffect(this.use(node, attempts, trial)))
  }

  /** The selected node, recorded as tried: its open pooled connection, or the Effect dialling it. */
  private use(
    node: Node,
    attempts: Attempts | undefined,
    trial: boolean
  ): Connected | Effect.Effect<Connected, TransportError> {
    if (attempts !== undefined) attempts.add(node)
    const health = this.client.health
    const trialOwner =
      trial && attempts !== undefined && health.unhealthy > 0 && health.claimTrial(health.state(node.address), attempts)
        ? attempts
        : undefined
    const open = this.client.pool.peek(node.address)
    return open !== undefined ? new Connected(node, open) : this.dial(node, trialOwner)
  }

  /** A request the server would refuse for its size fails here, before anything is sent. */
  private tooLarge(resolved: Resolved, body: Uint8Array): BadRequest | undefined {
    const size = FRAME_HEADER + 11 + resolved.header.byteLength + body.byteLength
    return size - 4 > this.client.maxFrameSize
      ? BadRequest.of(
        `request of ${size} bytes exceeds the frame limit of ${this.client.maxFrameSize}`,
        "effect-micro.client"
      )
      : undefined
  }

  /**
   * Dials a node the pool has no open connection to (or waits for its dial in flight). `trialOwner`:
   * the call holds the node's half-open trial, given back if the dial fails or is interrupted.
   */
  private dial(node: Node, trialOwner: object | undefined): Effect.Effect<Connected, TransportError> {
    const pool = this.client.pool
    const health = this.client.health
    const dialled = Effect.mapBoth(pool.get(node), {
      onFailure: (error) => {
        // Unreachable (refused, failed or timed-out dial): eject the node at once.
        if (error.reason === "refused" || error.reason === "dial") {
          health.fail(health.state(node.address), undefined, "refused")
        }
        return error
      },
      onSuccess: (connection) => new Connected(node, connection)
    })
    return trialOwner === undefined ?
      dialled :
      Effect.onExit(
        dialled,
        (exit) =>
          Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => health.release(health.state(node.address), trialOwner))
      )
  }

  /**
   * Runs `attempt`; on a retryable failure, retries following the schedule. The first attempt runs
   * without any retry machinery (the common, successful case pays one `catchAll` for it); the retry loop
   * is built only once an attempt has failed. The failure the call gives up with names the call
   * (`withTarget`).
   *
   * Called when the call runs (inside `withResolved`), never ahead of time: the returned Effect runs once,
   * so it needs no `Effect.suspend` of its own.
   */
  private withRetries<A, E>(
    resolved: Resolved,
    attempt: (attempts: Attempts) => Effect.Effect<A, E>
  ): Effect.Effect<A, E> {
    const attempts = new Attempts()
    if (resolved.retry !== undefined) this.client.budget?.deposit()
    return Effect.catchAll(attempt(attempts), this.recover(resolved, attempts, attempt))
  }

  /**
   * What follows a call's first failed attempt: retries when the failure is retryable and the call has a
   * schedule, else the failure, naming the call (an `Exit` in that case, readable without a fiber).
   */
  private recover<A, E>(
    resolved: Resolved,
    attempts: Attempts,
    attempt: (attempts: Attempts) => Effect.Effect<A, E>
  ): (error: E) => Effect.Effect<A, E> {
    return (error) =>
      this.retries(resolved, error)
        ? Effect.flatMap(Schedule.driver(resolved.retry!), (driver) => this.retry(driver, attempts, attempt)(error))
        : this.giveUp(error, attempts)
  }

  /** Whether a first attempt's failure is retried: the call has a schedule and the failure is retryable. */
  private retries(resolved: Resolved, error: unknown): boolean {
    return resolved.retry !== undefined && isRetryable(error, this.endpoint.idempotent)
  }

  /** The call fails with `error`, which names the call when it is a framework error. */
  private giveUp<E>(error: E, attempts: Attempts): Effect.Effect<never, E> {
    return Effect.fail(withTarget(error, this.service, this.endpoint.name, attempts))
  }

  /**
   * After a retryable failure: the schedule decides whether to retry, the budget whether this client may
   * afford it. A retryable failure is one of the framework's call errors (isRetryable checks its tag).
   */
  private retry<A, E>(
    driver: Schedule.ScheduleDriver<unknown, CallError, never>,
    attempts: Attempts,
    attempt: (attempts: Attempts) => Effect.Effect<A, E>
  ): (error: E) => Effect.Effect<A, E> {
    const budget = this.client.budget
    const idempotent = this.endpoint.idempotent
    let number = 1
    const retryFrom = (error: E): Effect.Effect<A, E> =>
      isRetryable(error, idempotent)
        ? Effect.matchEffect(driver.next(error as CallError), {
          onFailure: () => this.giveUp(error, attempts),
          onSuccess: () =>
            budget === undefined || neverReachedAServer(error) || budget.tryWithdraw()
              ? Effect.zipRight(
                recordRetry(error, ++number, attempts.lastAddress),
                Effect.catchAll(attempt(attempts), retryFrom)
              )
              : this.giveUp(budgetExhausted(error) as E, attempts)
        })
        : this.giveUp(error, attempts)
    return retryFrom
  }

  // ----- unary -----

  private unary(
    resolved: Resolved,
    input: unknown,
    fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  ): Effect.Effect<unknown, unknown> {
    const encoded = resolved.compiled.request.encode(this.endpoint.construct(input))
    if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
    const body = encoded.right
    const tooLarge = this.tooLarge(resolved, body)
    if (tooLarge !== undefined) return Effect.fail(tooLarge)
    const hedgeMillis = resolved.hedgeMillis
    // Hedged attempts run on forked fibers: each finds its own (exchange without `fiber`).
    if (hedgeMillis > 0) {
      return this.withRetries(
        resolved,
        (attempts) => this.hedged((attempts) => this.once(resolved, body, attempts, undefined), attempts, hedgeMillis)
      )
    }
    return this.withRetries(resolved, (attempts) => this.once(resolved, body, attempts, fiber))
  }

  /** One attempt of a unary call: connect, then exchange (both synchronous up to the wait in the common case). */
  private once(
    resolved: Resolved,
    body: Uint8Array,
    attempts: Attempts,
    fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  ): Effect.Effect<unknown, unknown> {
    const connected = this.connectNow(attempts, resolved.key, true)
    return connected instanceof Connected
      ? this.exchange(resolved, body, connected.connection, connected.node, attempts, fiber)
      : Effect.flatMap(
        connected,
        ({ connection, node }) => this.exchange(resolved, body, connection, node, attempts, fiber)
      )
  }

  /**
   * A hedged attempt: `once` now and, if it has not finished after `delayMillis`, `once` again on another
   * node (the shared `tried` set steers it away), paid from the retry budget. The first success wins and
   * the other attempt is interrupted, which sends CANCEL for its call. A failure waits for the other
   * attempt if it is running; a failure before the hedge started stops the hedge (the retry schedule
   * takes over).
   */
  private hedged<A>(
    once: (attempts: Attempts) => Effect.Effect<A, unknown>,
    attempts: Attempts,
    delayMillis: number
  ): Effect.Effect<A, unknown> {
    const budget = this.client.budget
    let hedging = false
    const hedge = Effect.zipRight(
      Effect.sleep(Duration.millis(delayMillis)),
      Effect.suspend(() => {
        // No budget for a hedge: just wait for the first attempt (interrupted once it is done).
        if (budget !== undefined && !budget.tryWithdraw()) return Effect.never
        hedging = true
        return once(attempts)
      })
    )
    return Effect.raceWith(once(attempts), hedge, {
      onSelfDone: (exit, other) =>
        Exit.isSuccess(exit) || !hedging
          ? Effect.zipRight(Fiber.interrupt(other), exit)
          : Effect.flatMap(Fiber.await(other), (otherExit) => (Exit.isSuccess(otherExit) ? otherExit : exit)),
      onOtherDone: (exit, self) =>
        Exit.isSuccess(exit) ? Effect.zipRight(Fiber.interrupt(self), exit) : Fiber.join(self)
    })
  }

  /**
   * Sends one unary request on `connection` and waits for its outcome. Failures that say something about
   * the node (unreachable, too slow, unavailable) are reported to the selector's `mark` (UnaryExchange);
   * an endpoint's business errors are not. `fiber`: the fiber running this Effect, when the caller knows
   * it (saves a `withFiberRuntime` step).
   */
  private exchange(
    resolved: Resolved,
    body: Uint8Array,
    connection: CallConnection,
    node: Node,
    /** The logical call: its identity as a half-open trial. */
    owner: Attempts,
    fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  ): Effect.Effect<unknown, unknown> {
    return fiber !== undefined
      ? this.wait(resolved, body, connection, node, owner, fiber)
      : Effect.withFiberRuntime((fiber) => this.wait(resolved, body, connection, node, owner, fiber))
  }

  private wait(
    resolved: Resolved,
    body: Uint8Array,
    connection: CallConnection,
    node: Node,
    owner: Attempts,
    fiber: Fiber.RuntimeFiber<unknown, unknown>
  ): Effect.Effect<unknown, unknown> {
    return Effect.async<unknown, unknown>((resume) => {
      this.start(resolved, body, connection, node, owner, waitingOf(fiber), resume)
    })
  }

  /**
   * Sends one unary request and arms its deadline; `resume` gets its outcome once. `waiting`: the slot of the
   * fiber waiting on it (cancelled when that fiber is interrupted); undefined for a Promise caller.
   */
  private start(
    resolved: Resolved,
    body: Uint8Array,
    connection: CallConnection,
    node: Node,
    owner: Attempts,
    waiting: WaitingCall | undefined,
    resume: (result: Effect.Effect<unknown, unknown>) => void
  ): UnaryExchange {
    const context = this.context
    const deadlines = context.deadlines
    const call = new UnaryExchange(
      resolved.compiled,
      connection,
      context,
      node,
      waiting,
      resume,
      context.health.state(node.address),
      owner
    )
    // Only latency-aware selectors pay for the measurement.
    const observe = context.selector.observe
    if (observe !== undefined) call.observe = new LatencyObserver(observe, context.service, node, deadlines.clock)
    const metrics = this.metrics
    if (metrics !== undefined) {
      call.metrics = metrics
      call.startedAt = performance.now()
      metrics.start()
    }
    call.id = connection.open(resolved.header, resolved.timeoutMillis, DEFAULT_WINDOW, body, call, "unary")
    if (resolved.timeoutMillis > 0 && !call.settled) {
      const timeout = resolved.timeoutMillis
      call.deadline = deadlines.add(timeout, () => {
        connection.cancel(call.id)
        connection.probe()
        call.fail(Timeout.of(`no reply from ${node.address} within ${timeout} ms`, "effect-micro.client"), true)
      })
    }
    return call
  }

  // ----- client streaming -----

  private clientStream(resolved: Resolved, input: Stream.Stream<unknown>): Effect.Effect<unknown, unknown> {
    // The request stream can be consumed once: only connecting is retried, never the call itself.
    const connect = this.withRetries(resolved, (attempts) => this.connect(attempts, resolved.key))
    return Effect.scoped(
      Effect.flatMap(connect, ({ connection }) =>
        Effect.flatMap(Deferred.make<unknown, unknown>(), (reply) => {
          const fail = (cause: Cause.Cause<unknown>) => Deferred.unsafeDone(reply, Exit.failCause(cause))
          const sender = new Sender(connection, this.client.maxFrameSize, fail)
          const id = connection.open(resolved.header, resolved.timeoutMillis, DEFAULT_WINDOW, undefined, {
            onReply: (body) => {
              const decoded = resolved.compiled.response.decode(body)
              Deferred.unsafeDone(
                reply,
                Either.isRight(decoded) ? Exit.succeed(decoded.right) : Exit.fail(decoded.left)
              )
            },
            onError: (kind, body) => Deferred.unsafeDone(reply, Exit.fail(decodeError(resolved.compiled, kind, body))),
            onClosed: (error) => Deferred.unsafeDone(reply, Exit.fail(error)),
            onData: () => {},
            onEnd: () => Deferred.unsafeDone(reply, Exit.fail(StreamClosed.of("stream ended without a reply"))),
            onCredit: (credit) => sender.grant(credit)
          }, "client-stream")
          sender.id = id
          const deadlines = this.client.deadlines
          const deadline = resolved.timeoutMillis > 0
            ? deadlines.add(resolved.timeoutMillis, () => {
              connection.cancel(id)
              Deferred.unsafeDone(
                reply,
                Exit.fail(Timeout.of(
                  `no reply within ${resolved.timeoutMillis} ms`,
                  "effect-micro.client"
                ))
              )
            })
            : undefined
          return Effect.zipRight(
            Effect.forkScoped(sender.run(input, resolved.compiled)),
            Deferred.await(reply).pipe(
              Effect.onExit((exit) =>
                Effect.sync(() => {
                  deadlines.remove(deadline)
                  if (!Exit.isSuccess(exit)) connection.cancel(id)
                })
              )
            )
          )
        }))
    )
  }

  // ----- server streaming and bidi -----

  private openStream(
    resolved: Resolved,
    request: unknown,
    input: Stream.Stream<unknown> | undefined
  ): Effect.Effect<Stream.Stream<unknown, unknown>, unknown, Scope.Scope> {
    let body: Uint8Array | undefined
    if (input === undefined) {
      const encoded = resolved.compiled.request.encode(this.endpoint.construct(request))
      if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
      body = encoded.right
      const tooLarge = this.tooLarge(resolved, body)
      if (tooLarge !== undefined) return Effect.fail(tooLarge)
    }
    // Only the connect step is retried: once the call is open, messages may already have been consumed.
    const connect = this.withRetries(resolved, (attempts) => this.connect(attempts, resolved.key))
    return Effect.gen(this, function*() {
      const { connection } = yield* connect
      const inbox = new Inbox<unknown, unknown>()
      let finished = false
      const finish = (exit: Exit.Exit<void, unknown>) => {
        finished = true
        inbox.done(exit)
      }
      const sender = input === undefined
        ? undefined
        : new Sender(connection, this.client.maxFrameSize, (cause) => finish(Exit.failCause(cause)))
      // DATA frames received, and how many our window (initial + CREDIT sent) allows so far.
      let received = 0
      let allowed = DEFAULT_WINDOW
      const handlers: CallHandlers = {
        onData: (payload) => {
          if (finished) return
          if (++received > allowed) {
            // The server ignored flow control: fail the call rather than buffer without bound.
            connection.cancel(id)
            finish(Exit.fail(protocolError(connection.address, `flow-control window of ${allowed} messages exceeded`)))
            return
          }
          const decoded = resolved.compiled.response.decode(payload)
          if (Either.isRight(decoded)) inbox.offer(decoded.right)
          else {
            connection.cancel(id)
            finish(Exit.fail(decoded.left))
          }
        },
        onEnd: () => finish(Exit.void),
        onError: (kind, payload) => finish(Exit.fail(decodeError(resolved.compiled, kind, payload))),
        onClosed: (error) => finish(Exit.fail(error)),
        onReply: () => finish(Exit.fail(protocolError(connection.address, "REPLY frame on a streaming call"))),
        onCredit: (credit) => sender?.grant(credit)
      }
      const id = connection.open(
        resolved.header,
        resolved.timeoutMillis,
        DEFAULT_WINDOW,
        body,
        handlers,
        this.endpoint.shape
      )
      // Closing the consumer early (take(n), interruption) cancels the call on the server.
      yield* Effect.addFinalizer(() => Effect.sync(() => finished ? connection.release(id) : connection.cancel(id)))
      if (sender !== undefined) {
        sender.id = id
        yield* Effect.forkScoped(sender.run(input!, resolved.compiled))
      }
      if (resolved.timeoutMillis > 0) {
        const deadlines = this.client.deadlines
        const deadline = deadlines.add(resolved.timeoutMillis, () => {
          if (finished) return
          connection.cancel(id)
          finish(
            Exit.fail(Timeout.of(`stream exceeded its ${resolved.timeoutMillis} ms deadline`, "effect-micro.client"))
          )
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => deadlines.remove(deadline)))
      }
      let consumed = 0
      return inbox.stream((size) => {
        consumed += size
        if (consumed >= DEFAULT_WINDOW / 2 && !finished) {
          allowed += consumed
          connection.credit(id, consumed)
          consumed = 0
        }
      })
    })
  }
}

/** Per-call options that leave a call plain: none, or only an abort signal. */
const onlySignal = (options: PromiseCallOptions | undefined): boolean => {
  if (options === undefined) return true
  for (const key in options) {
    if (key !== "signal" && options[key as keyof PromiseCallOptions] !== undefined) return false
  }
  return true
}

const withoutSignal = ({ signal: _, ...options }: PromiseCallOptions): ClientOptions => options
