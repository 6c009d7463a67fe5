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
import * as Mailbox from "effect/Mailbox"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ClientOptions, OutgoingCall } from "../../Client.js"
import { Client } from "../../Client.js"
import type { CallShape } from "../../Contract.js"
import { schemasOf } from "../../Contract.js"
import type { CallError, MicroError } from "../../Errors.js"
import { BadRequest, ServiceUnavailable, StreamClosed, Timeout, TransportError } from "../../Errors.js"
import type { Metadata } from "../../Metadata.js"
import { empty as emptyMetadata, merge as mergeMetadata, outgoingRef } from "../../Metadata.js"
import type { Node } from "../../Registry.js"
import type { CallHandlers, ClientConnection } from "./clientConnection.js"
import type { ClientService } from "./clientService.js"
import { runtimeOf } from "./clientService.js"
import type { CompiledEndpoint } from "./endpoint.js"
import { decodeError, EndpointCodecs } from "./endpoint.js"
import { budgetExhausted, isNodeFailure, isRetryable, neverReachedAServer } from "./retryRules.js"
import { Sender } from "./streamSender.js"
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
  Effect.map(Client, (runtime) => {
    const client = runtimeOf(runtime)
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
      const caller = new Caller(client, service, endpoint, clientOptions)
      out[rpc._tag] = caller.method()
    }
    return out
  })

class Caller {
  private plainResolved: Resolved | undefined = undefined

  constructor(
    private readonly client: ClientService,
    private readonly service: string,
    private readonly endpoint: Endpoint,
    private readonly options: ClientOptions
  ) {}

  method(): (input: unknown, options?: ClientOptions) => unknown {
    switch (this.endpoint.shape) {
      case "unary":
        return (input, options) => this.withResolved(options, (resolved) => this.unary(resolved, input))
      case "client-stream":
        return (input, options) =>
          this.withResolved(options, (resolved) => this.clientStream(resolved, input as Stream.Stream<unknown>))
      case "server-stream":
        return (input, options) =>
          Stream.unwrapScoped(this.withResolved(options, (resolved) => this.openStream(resolved, input, undefined)))
      case "bidi":
        return (input, options) =>
          Stream.unwrapScoped(
            this.withResolved(options, (resolved) => this.openStream(resolved, undefined, input as Stream.Stream<unknown>))
          )
    }
  }

  /** Merges options, picks the codec, builds the header, and runs client middleware around `run`. */
  private withResolved<A, E, R>(
    callOptions: ClientOptions | undefined,
    run: (resolved: Resolved) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | MicroError, R> {
    // One primitive op to read the outgoing metadata (instead of FiberRef.get + flatMap).
    return Effect.withFiberRuntime((fiber) => {
      const outgoing = fiber.getFiberRef(outgoingRef)
      const client = this.client
      // The common call (no per-call options, no outgoing metadata, no middleware) reuses one Resolved.
      const plain = callOptions === undefined && outgoing === emptyMetadata && client.middleware.length === 0
      if (plain && this.plainResolved !== undefined) return run(this.plainResolved)
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
        return run(resolved)
      }
      let next = (c: OutgoingCall): Effect.Effect<unknown, unknown, any> => {
        // Metadata a middleware added (e.g. a token) can make the header too large: a typed error, not a throw.
        const header = this.header(c)
        return typeof header === "string" ? Effect.fail(BadRequest.of(header, "effect-micro.client")) : run(resolve(c, header))
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

  /** Resolve → select (avoiding nodes this call tried) → pooled connection. */
  /**
   * `trial`: a unary call claims a half-open node's single trial as soon as it is selected (identified by
   * its `tried` set), so that calls selected while the connection is being dialled do not pile onto it.
   */
  private connect(
    tried: Set<string>,
    key: string | undefined,
    trial = false
  ): Effect.Effect<{ node: Node; connection: ClientConnection }, MicroError> {
    const client = this.client
    const direct = this.options.node
    if (direct !== undefined) {
      const node: Node = { id: direct, address: direct, metadata: {} }
      return this.dial(node, undefined)
    }
    return Effect.matchEffect(client.registry.getService(this.service), {
      onFailure: (error) =>
        Effect.fail(
          error._tag === "RegistryError"
            ? ServiceUnavailable.of(`registry failed: ${error.message}`, "effect-micro.client")
            : error
        ),
      onSuccess: (versions) =>
        Effect.flatMap(
          client.selector.select({
            service: this.service,
            endpoint: this.endpoint.name,
            versions,
            filter: this.options.filter,
            tried,
            key,
            health: client.health
          }),
          (node) => {
            tried.add(node.id)
            const health = client.health
            return this.dial(node, trial && health.unhealthy > 0 && health.claimTrial(health.state(node.address), tried) ? tried : undefined)
          }
        )
    })
  }

  /**
   * Runs `attempt`; on a retryable failure, retries following the schedule. The first attempt runs
   * without any retry machinery (the common, successful case pays nothing for it).
   */
  /** A request the server would refuse for its size fails here, before anything is sent. */
  private tooLarge(resolved: Resolved, body: Uint8Array): BadRequest | undefined {
    const size = FRAME_HEADER + 11 + resolved.header.byteLength + body.byteLength
    return size - 4 > this.client.maxFrameSize
      ? BadRequest.of(`request of ${size} bytes exceeds the frame limit of ${this.client.maxFrameSize}`, "effect-micro.client")
      : undefined
  }

  /**
   * The pooled connection to a node; synchronous when it is already open (the common case). `trialOwner`:
   * the call holds the node's half-open trial, given back if the dial fails or is interrupted.
   */
  private dial(
    node: Node,
    trialOwner: object | undefined
  ): Effect.Effect<{ node: Node; connection: ClientConnection }, TransportError> {
    const pool = this.client.pool
    const open = pool.peek(node.address)
    if (open !== undefined) return Effect.succeed({ node, connection: open })
    const health = this.client.health
    const dialled = Effect.mapBoth(pool.get(node.address), {
      onFailure: (error) => {
        // Unreachable (refused, failed or timed-out dial): eject the node at once.
        if (error.reason === "refused" || error.reason === "dial") health.fail(health.state(node.address), undefined, "refused")
        return error
      },
      onSuccess: (connection) => ({ node, connection })
    })
    return trialOwner === undefined ? dialled : Effect.onExit(dialled, (exit) =>
      Exit.isSuccess(exit) ? Effect.void : Effect.sync(() => health.release(health.state(node.address), trialOwner)))
  }

  private withRetries<A, E>(
    resolved: Resolved,
    attempt: (tried: Set<string>) => Effect.Effect<A, E>
  ): Effect.Effect<A, E> {
    const tried = new Set<string>()
    const schedule = resolved.retry
    const budget = this.client.budget
    if (schedule === undefined) return Effect.suspend(() => attempt(tried))
    const idempotent = this.endpoint.idempotent
    // A retryable failure is one of the framework's call errors (isRetryable checks its tag). The schedule
    // decides whether to retry; the budget whether this client may afford it.
    const retryFrom = (driver: Schedule.ScheduleDriver<unknown, CallError, never>) => (error: E): Effect.Effect<A, E> =>
      isRetryable(error, idempotent)
        ? Effect.matchEffect(driver.next(error as CallError), {
          onFailure: () => Effect.fail(error),
          onSuccess: () =>
            budget === undefined || neverReachedAServer(error) || budget.tryWithdraw()
              ? Effect.catchAll(attempt(tried), retryFrom(driver))
              : Effect.fail(budgetExhausted(error) as E)
        })
        : Effect.fail(error)
    return Effect.suspend(() => {
      budget?.deposit()
      return Effect.catchAll(attempt(tried), (error) =>
        isRetryable(error, idempotent)
          ? Effect.flatMap(Schedule.driver(schedule), (driver) => retryFrom(driver)(error))
          : Effect.fail(error))
    })
  }

  // ----- unary -----

  private unary(resolved: Resolved, input: unknown): Effect.Effect<unknown, unknown> {
    const encoded = resolved.compiled.request.encode(this.endpoint.construct(input))
    if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
    const body = encoded.right
    const tooLarge = this.tooLarge(resolved, body)
    if (tooLarge !== undefined) return Effect.fail(tooLarge)
    const once = (tried: Set<string>) =>
      Effect.flatMap(this.connect(tried, resolved.key, true), ({ connection, node }) =>
        // Only failures that say something about the node (unreachable, too slow, unavailable) count
        // against it; an endpoint's business errors do not.
        Effect.catchAll(this.exchange(resolved, body, connection, node, tried), (error) =>
          isNodeFailure(error)
            ? Effect.zipRight(this.client.selector.mark(this.service, node, "failure"), Effect.fail(error))
            : Effect.fail(error)))
    const hedgeMillis = resolved.hedgeMillis
    return this.withRetries(resolved, hedgeMillis > 0 ? (tried) => this.hedged(once, tried, hedgeMillis) : once)
  }

  /**
   * A hedged attempt: `once` now and, if it has not finished after `delayMillis`, `once` again on another
   * node (the shared `tried` set steers it away), paid from the retry budget. The first success wins and
   * the other attempt is interrupted, which sends CANCEL for its call. A failure waits for the other
   * attempt if it is running; a failure before the hedge started stops the hedge (the retry schedule
   * takes over).
   */
  private hedged<A>(
    once: (tried: Set<string>) => Effect.Effect<A, unknown>,
    tried: Set<string>,
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
        return once(tried)
      })
    )
    return Effect.raceWith(once(tried), hedge, {
      onSelfDone: (exit, other) =>
        Exit.isSuccess(exit) || !hedging
          ? Effect.zipRight(Fiber.interrupt(other), exit)
          : Effect.flatMap(Fiber.await(other), (otherExit) => (Exit.isSuccess(otherExit) ? otherExit : exit)),
      onOtherDone: (exit, self) =>
        Exit.isSuccess(exit) ? Effect.zipRight(Fiber.interrupt(self), exit) : Fiber.join(self)
    })
  }

  /** Sends one unary request on `connection` and waits for its outcome. */
  private exchange(
    resolved: Resolved,
    body: Uint8Array,
    connection: ClientConnection,
    node: Node,
    /** The logical call (its `tried` set): its identity as a half-open trial. */
    owner: object
  ): Effect.Effect<unknown, unknown> {
    const client = this.client
    const deadlines = client.deadlines
    const observe = client.selector.observe
    return Effect.withFiberRuntime((fiber) =>
      Effect.async<unknown, unknown>((resume) => {
        const call = new UnaryExchange(
          resolved.compiled,
          connection,
          deadlines,
          waitingOf(fiber),
          resume,
          client.health,
          client.health.state(node.address),
          owner,
          client.hungWatch
        )
        // Only latency-aware selectors pay for the measurement.
        if (observe !== undefined) call.observe = new LatencyObserver(observe, this.service, node, deadlines.clock)
        call.id = connection.open(resolved.header, resolved.timeoutMillis, DEFAULT_WINDOW, body, call)
        if (resolved.timeoutMillis > 0 && !call.settled) {
          const timeout = resolved.timeoutMillis
          call.deadline = deadlines.add(timeout, () => {
            connection.cancel(call.id)
            connection.probe()
            call.settle(Effect.fail(Timeout.of(`no reply from ${node.address} within ${timeout} ms`, "effect-micro.client")), true)
          })
        }
      })
    )
  }

  // ----- client streaming -----

  private clientStream(resolved: Resolved, input: Stream.Stream<unknown>): Effect.Effect<unknown, unknown> {
    // The request stream can be consumed once: only connecting is retried, never the call itself.
    const connect = this.withRetries(resolved, (tried) => this.connect(tried, resolved.key))
    return Effect.scoped(Effect.flatMap(connect, ({ connection }) =>
      Effect.flatMap(Deferred.make<unknown, unknown>(), (reply) => {
        const fail = (cause: Cause.Cause<unknown>) => Deferred.unsafeDone(reply, Exit.failCause(cause))
        const sender = new Sender(connection, this.client.maxFrameSize, fail)
        const id = connection.open(resolved.header, resolved.timeoutMillis, DEFAULT_WINDOW, undefined, {
          onReply: (body) => {
            const decoded = resolved.compiled.response.decode(body)
            Deferred.unsafeDone(reply, Either.isRight(decoded) ? Exit.succeed(decoded.right) : Exit.fail(decoded.left))
          },
          onError: (kind, body) => Deferred.unsafeDone(reply, Exit.fail(decodeError(resolved.compiled, kind, body))),
          onClosed: (error) => Deferred.unsafeDone(reply, Exit.fail(error)),
          onData: () => {},
          onEnd: () => Deferred.unsafeDone(reply, Exit.fail(StreamClosed.of("stream ended without a reply"))),
          onCredit: (credit) => sender.grant(credit)
        })
        sender.id = id
        const deadlines = this.client.deadlines
        const deadline = resolved.timeoutMillis > 0
          ? deadlines.add(resolved.timeoutMillis, () => {
            connection.cancel(id)
            Deferred.unsafeDone(reply, Exit.fail(Timeout.of(
              `no reply within ${resolved.timeoutMillis} ms`,
              "effect-micro.client"
            )))
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
      })))
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
    const connect = this.withRetries(resolved, (tried) => this.connect(tried, resolved.key))
    return Effect.gen(this, function*() {
      const { connection } = yield* connect
      const inbox = yield* Mailbox.make<unknown, unknown>()
      let finished = false
      const finish = (exit: Exit.Exit<void, unknown>) => {
        finished = true
        inbox.unsafeDone(exit)
      }
      const sender = input === undefined ? undefined : new Sender(connection, this.client.maxFrameSize, (cause) => finish(Exit.failCause(cause)))
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
          if (Either.isRight(decoded)) inbox.unsafeOffer(decoded.right)
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
      const id = connection.open(resolved.header, resolved.timeoutMillis, DEFAULT_WINDOW, body, handlers)
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
          finish(Exit.fail(Timeout.of(`stream exceeded its ${resolved.timeoutMillis} ms deadline`, "effect-micro.client")))
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => deadlines.remove(deadline)))
      }
      let consumed = 0
      return Mailbox.toStream(inbox).pipe(
        Stream.mapChunks((chunk) => {
          consumed += chunk.length
          if (consumed >= DEFAULT_WINDOW / 2 && !finished) {
            allowed += consumed
            connection.credit(id, consumed)
            consumed = 0
          }
          return chunk
        })
      )
    })
  }
}

