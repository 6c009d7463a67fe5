/**
 * The HTTP broker.
 *
 * Subscriber side: the first `subscribe` starts one HTTP server per broker (in the layer's scope); each
 * subscription is registered as a node of the service `<servicePrefix><topic>` (metadata: broker, topic,
 * path, queue) with a TTL and renewed on an interval; closing the subscription deregisters it, then removes
 * it locally (later POSTs get 404 and the publisher tries another member).
 *
 * Publisher side: looks the topic's service up in the Registry in context (use the cached one), sends to
 * every broadcast subscriber and to one member of each queue group (the less loaded of two, skipping ejected
 * endpoints: see the breaker below). Sends go through one outbox per subscription endpoint with at most
 * `maxInFlight` batch requests pipelined on one connection: while they are out, later messages queue and
 * leave together as the next batch, so batches grow with load while order per publisher is kept (TCP order +
 * the endpoint's FIFO per subscription) and every message gets its own result.
 */
import type * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import type * as Undici from "@effect/platform-node/Undici"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import type * as Net from "node:net"
import type {
  Broker,
  DeliveryFailure,
  FailureReason,
  Handler,
  PublishOptions,
  SubscribeOptions,
  Subscription
} from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { HttpBrokerOptions } from "../../HttpBroker.js"
import type { Metadata } from "../../Metadata.js"
import type { Node, Service as RegisteredService } from "../../Registry.js"
import { Registry } from "../../Registry.js"
import { randomId } from "../common/text.js"
import type { Peekable } from "../registry/cached.js"
import { peekKey } from "../registry/cached.js"
import type { DeadlineEntry } from "../rpc/deadlines.js"
import { DeadlineWheel } from "../rpc/deadlines.js"
import type { NodeState } from "../rpc/nodeHealth.js"
import { NodeHealth, resolveEjection, Status } from "../rpc/nodeHealth.js"
import { advertisedAddress, formatAddress } from "../transport/address.js"
import { deliverLocal, deliveryFailed, normalizeHeaders, OCTET_STREAM, withContext } from "./core.js"
import type { WireMessage } from "./httpWire.js"
import {
  allDelivered,
  BATCH_CONTENT_TYPE,
  BATCH_RESULTS_COMPACT,
  BATCH_RESULTS_HEADER,
  decodeBatch,
  encodeBatch,
  encodeResults,
  HEADER_PREFIX,
  PATH_PREFIX,
  statusOf
} from "./httpWire.js"

export const defaults = {
  host: "127.0.0.1",
  port: 0,
  servicePrefix: "micro.broker.",
  registerTtl: Duration.seconds(90),
  registerInterval: Duration.seconds(30),
  timeout: Duration.seconds(10),
  maxBodySize: 16 * 1024 * 1024,
  maxBatchMessages: 1000,
  maxBatchBytes: 1024 * 1024,
  maxInFlight: 4,
  maxPending: 50_000,
  headersTimeout: Duration.seconds(10),
  bodyTimeout: Duration.seconds(10),
  handlerTimeout: Duration.seconds(30),
  keepAliveTimeout: Duration.seconds(5),
  maxConnections: 10_000,
  connectTimeout: Duration.seconds(5)
} as const

interface LocalSubscription {
  readonly id: string
  readonly topic: string
  readonly queue: string | undefined
  readonly handler: Handler
  readonly autoAck: boolean
  /** The subscribing fiber's context: handlers run with it (set once per request, not per message). */
  readonly context: Context.Context<never>
  /** A request for this subscription is being handled; the next ones wait in `waiting` (FIFO, see `Inbound`). */
  busy: boolean
  readonly waiting: Array<{ grant(): void }>
}

/** Result of one send: undefined = delivered; `retry` = provably not delivered (refused, gone, draining). */
interface Outcome {
  readonly reason: FailureReason
  readonly detail: string
  readonly retry: boolean
  /** The endpoint answered that the subscription is gone or leaving (404/503): it no longer exists. */
  readonly left?: true | undefined
  /**
   * What the outcome says against the endpoint's process, for its breaker: `refused` (no HTTP exchange:
   * refused, reset, unreachable; ejects at once), `failure` (publish timeout, 5xx, a malformed reply:
   * counted), `unsent` (the batch never left: says nothing). Absent: the endpoint answered.
   */
  readonly fault?: "refused" | "failure" | "unsent" | undefined
}

/** A message as queued for the outboxes: prepared once per publish, shared by every target. */
interface Prepared extends WireMessage {
  readonly size: number
}

/** One message queued for one endpoint; `resolve` gets its outcome (a method, not a closure per target). */
interface Item {
  readonly message: Prepared
  resolve(outcome: Outcome | undefined): void
}

const errorJson = (status: number, reason: string, detail: string, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson({ reason, detail }, headers === undefined ? { status } : { status, headers })
/** On a refusal before the body was read (too large, too slow): the rest of it is not worth reading. */
const closeConnection = { connection: "close" }
/** The answer for a client that went away (nobody reads it). */
const gone = HttpServerResponse.empty({ status: 499 })

const codeOf = (error: unknown): string | undefined => {
  let current: unknown = error
  for (let depth = 0; depth < 6 && typeof current === "object" && current !== null; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === "string") return code
    current = (current as { cause?: unknown }).cause
  }
  return undefined
}

export const make = (
  options?: HttpBrokerOptions
): Effect.Effect<Broker.Service, never, Scope.Scope | Registry> =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const layerScope = yield* Effect.scope
    const servicePrefix = options?.servicePrefix ?? defaults.servicePrefix
    const registerTtl = options?.registerTtl ?? defaults.registerTtl
    const registerInterval = options?.registerInterval ?? defaults.registerInterval
    const publishTimeout = Duration.decode(options?.timeout ?? defaults.timeout)
    const maxBodySize = options?.maxBodySize ?? defaults.maxBodySize
    const maxBatchMessages = options?.maxBatchMessages ?? defaults.maxBatchMessages
    const maxBatchBytes = options?.maxBatchBytes ?? defaults.maxBatchBytes
    const maxPending = options?.maxPending ?? defaults.maxPending
    const headersTimeout = Duration.decode(options?.headersTimeout ?? defaults.headersTimeout)
    const bodyTimeout = Duration.decode(options?.bodyTimeout ?? defaults.bodyTimeout)
    const bodyTimeoutMillis = Duration.toMillis(bodyTimeout)
    const handlerTimeout = Duration.decode(options?.handlerTimeout ?? defaults.handlerTimeout)
    const handlerTimeoutMillis = Duration.toMillis(handlerTimeout)
    const keepAliveTimeout = Duration.decode(options?.keepAliveTimeout ?? defaults.keepAliveTimeout)
    const maxConnections = options?.maxConnections ?? defaults.maxConnections
    const connectTimeout = Duration.decode(options?.connectTimeout ?? defaults.connectTimeout)
    // Publish timeouts and subscriber body deadlines on one timing wheel driven by the layer's Clock
    // (TestClock in tests), not a timer each.
    const deadlines = new DeadlineWheel(yield* Effect.clock)
    yield* Effect.forkScoped(deadlines.run)

    // ---------------------------------------------------------------- subscriber side
    const subscriptions = new Map<string, LocalSubscription>()
    let draining = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        draining = true
      })
    )

    const deliverOne = (subscription: LocalSubscription, message: WireMessage) =>
      deliverLocal(
        subscription.handler,
        subscription.autoAck,
        subscription.topic,
        message.body,
        message.contentType,
        message.headers
      )

    const handle = (
      request: HttpServerRequest.HttpServerRequest
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
      const query = request.url.indexOf("?")
      const path = query === -1 ? request.url : request.url.slice(0, query)
      if (!path.startsWith(PATH_PREFIX)) {
        return Effect.succeed(errorJson(404, "Unreachable", `no broker endpoint at ${path}`))
      }
      if (request.method !== "POST") {
        return Effect.succeed(HttpServerResponse.unsafeJson({ reason: "Rejected", detail: "use POST" }, {
          status: 405,
          headers: { allow: "POST" }
        }))
      }
      let id: string
      try {
        id = decodeURIComponent(path.slice(PATH_PREFIX.length))
      } catch {
        return Effect.succeed(errorJson(400, "Rejected", `malformed path ${path}: bad %-escape`))
      }
      const subscription = subscriptions.get(id)
      if (subscription === undefined) return Effect.succeed(errorJson(404, "Unreachable", `no subscription at ${path}`))
      if (draining) return Effect.succeed(errorJson(503, "Unreachable", "subscriber is shutting down"))
      const length = Number(request.headers["content-length"] ?? "0")
      if (length > maxBodySize) {
        return Effect.succeed(
          errorJson(413, "Rejected", `body of ${length} bytes exceeds the limit of ${maxBodySize}`, closeConnection)
        )
      }
      const topicHeader = request.headers["micro-topic"]
      if (topicHeader !== undefined && topicHeader !== subscription.topic) {
        return Effect.succeed(
          errorJson(400, "Rejected", `micro-topic ${topicHeader} does not match ${subscription.topic}`)
        )
      }
      const contentType = request.headers["content-type"] ?? OCTET_STREAM
      const compact = request.headers[BATCH_RESULTS_HEADER] === BATCH_RESULTS_COMPACT
      // The body is read first (bounded in size and time, see `Inbound`); the subscription's turn is taken
      // when it is complete, so a slow or stalled body never holds the subscription.
      const inbound = new Inbound(subscription, toIncomingMessage!(request))
      return Effect.async<Uint8Array, HttpServerResponse.HttpServerResponse>((resume) => inbound.start(resume)).pipe(
        Effect.matchEffect({
          onFailure: Effect.succeed,
          onSuccess: (body) => {
            if (contentType.startsWith(BATCH_CONTENT_TYPE)) {
              let messages: Array<WireMessage>
              try {
                messages = decodeBatch(body)
              } catch (cause) {
                return Effect.succeed(errorJson(400, "Rejected", `malformed batch: ${(cause as Error).message}`))
              }
              // Sequential: messages of one batch are handled in order.
              return Effect.map(
                withContext(
                  Effect.forEach(messages, (message) => deliverOne(subscription, message)),
                  subscription.context
                ),
                (results) =>
                  compact && allDelivered(results)
                    ? HttpServerResponse.empty({ status: 204 })
                    : HttpServerResponse.text(encodeResults(results), { contentType: "application/json" })
              ).pipe(withHandlerDeadline)
            }
            const headers: Record<string, string> = {}
            for (const key in request.headers) {
              if (key.startsWith(HEADER_PREFIX)) headers[key.slice(HEADER_PREFIX.length)] = String(request.headers[key])
            }
            return Effect.map(
              withContext(deliverOne(subscription, { contentType, headers, body }), subscription.context),
              (failure) =>
                failure === undefined
                  ? HttpServerResponse.empty({ status: 204 })
                  : errorJson(statusOf(failure), failure.reason, failure.detail)
            ).pipe(withHandlerDeadline)
          }
        }),
        Effect.ensuring(Effect.sync(() => inbound.finish())),
        // The platform runs the app uninterruptibly; here the wait, the read and the handler may be
        // interrupted (the client went away, or the handler deadline).
        Effect.interruptible
      )
    }

    /**
     * The handler deadline: past it the handler is interrupted, the request gets 504 `Timeout` (a batch: all
     * its messages, some of which may have been handled) and the subscription's next request runs once the
     * handler has stopped. On the timing wheel with one child fiber per request, not `Effect.timeoutTo`
     * (which forks a sleeper fiber and a timer per request besides; see internal/rpc/deadlines.ts).
     */
    const withHandlerDeadline = (
      effect: Effect.Effect<HttpServerResponse.HttpServerResponse>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      Effect.flatMap(Effect.forkDaemon(effect), (fiber) =>
        Effect.async<HttpServerResponse.HttpServerResponse>((resume) => {
          let timedOut = false
          let entry: DeadlineEntry | undefined = handlerTimeoutMillis === Infinity ?
            undefined :
            deadlines.add(handlerTimeoutMillis, () => {
              entry = undefined
              timedOut = true
              fiber.unsafeInterruptAsFork(FiberId.none)
            })
          fiber.addObserver((exit) => {
            deadlines.remove(entry)
            entry = undefined
            if (timedOut) {
              resume(Effect.succeed(handlerTimedOut))
            } else resume(exit)
          })
          // The request itself was interrupted (its client went away): so is the handler, and the request
          // ends (releasing the subscription's turn) only once the handler has stopped, finalizers included:
          // the subscription's next request never runs beside it.
          return Effect.suspend(() => {
            deadlines.remove(entry)
            entry = undefined
            return Effect.asVoid(Fiber.interrupt(fiber))
          })
        }))
    const handlerTimedOut = errorJson(
      504,
      "Timeout",
      `handler did not finish within ${Duration.format(handlerTimeout)}`
    )

    /**
     * One request's body and its turn on the subscription. Plain listeners on the Node request (no stream
     * or fiber per request): chunks are kept up to `maxBodySize`, the body must arrive within `bodyTimeout`
     * of the headers (on the layer's timing wheel), and a client that disconnects while its body is read or
     * while it waits for its turn gives up its place (nothing is handled for it). On `end` the turn is taken
     * synchronously: requests pipelined on one connection complete their bodies in arrival order, so each
     * publisher's order is kept; requests for one subscription are then handled one at a time (FIFO).
     */
    const inboundsOf = new WeakMap<Net.Socket, Set<Inbound>>()
    class Inbound {
      chunks: Array<Buffer> = []
      bytes = 0
      /** 0 reading, 1 waiting for the turn, 2 has the turn, 3 finished. */
      state = 0
      body: Uint8Array | undefined = undefined
      deadline: DeadlineEntry | undefined = undefined
      resume: ((effect: Effect.Effect<Uint8Array, HttpServerResponse.HttpServerResponse>) => void) | undefined =
        undefined
      readonly socket: Net.Socket | null
      constructor(readonly subscription: LocalSubscription, readonly incoming: http.IncomingMessage) {
        this.socket = incoming.socket
      }
      start(resume: (effect: Effect.Effect<Uint8Array, HttpServerResponse.HttpServerResponse>) => void): void {
        this.resume = resume
        const socket = this.socket
        if (socket === null || socket.destroyed) {
          return this.fail(gone)
        }
        // One close listener per connection (not one per request: pipelined requests would pile listeners up).
        let onSocket = inboundsOf.get(socket)
        if (onSocket === undefined) {
          const inbounds = new Set<Inbound>()
          onSocket = inbounds
          inboundsOf.set(socket, inbounds)
          socket.once("close", () => {
            for (const inbound of inbounds) {
              inbound.onClose()
            }
          })
        }
        onSocket.add(this)
        if (this.incoming.readableEnded) {
          return this.onEnd()
        }
        if (bodyTimeoutMillis !== Infinity) {
          this.deadline = deadlines.add(bodyTimeoutMillis, this.onTimeout)
        }
        this.incoming.on("data", this.onData)
        this.incoming.once("end", this.onEnd)
        this.incoming.once("error", this.onClose)
      }
      readonly onData = (chunk: Buffer): void => {
        this.bytes += chunk.length
        if (this.bytes > maxBodySize) {
          return this.fail(
            errorJson(413, "Rejected", `body exceeds the limit of ${maxBodySize} bytes`, closeConnection)
          )
        }
        this.chunks.push(chunk)
      }
      readonly onEnd = (): void => {
        if (this.state !== 0) {
          return
        }
        deadlines.remove(this.deadline)
        this.deadline = undefined
        this.detachBody()
        const chunks = this.chunks
        // One chunk (the common case for small bodies): no copy.
        this.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.bytes)
        const subscription = this.subscription
        if (subscription.busy) {
          this.state = 1
          subscription.waiting.push(this)
        } else {
          subscription.busy = true
          this.grant()
        }
      }
      readonly onTimeout = (): void => {
        this.deadline = undefined
        this.fail(
          errorJson(408, "Rejected", `body not received within ${Duration.format(bodyTimeout)}`, closeConnection)
        )
      }
      /** The client went away: nothing is handled for it (the platform answers nobody). */
      readonly onClose = (): void => {
        if (this.state < 2) {
          this.fail(gone)
        }
      }
      grant(): void {
        this.state = 2
        const resume = this.resume!
        this.resume = undefined
        if (this.socket!.destroyed) {
          resume(Effect.fail(gone))
        } else if (!subscriptions.has(this.subscription.id)) {
          // Unsubscribed while waiting: not handled, the publisher may try another member.
          resume(Effect.fail(errorJson(404, "Unreachable", `no subscription ${this.subscription.id}`)))
        } else resume(Effect.succeed(this.body!))
      }
      fail(response: HttpServerResponse.HttpServerResponse): void {
        const resume = this.resume
        this.finish()
        if (resume !== undefined) {
          resume(Effect.fail(response))
        }
      }
      detachBody(): void {
        this.incoming.off("data", this.onData)
        this.incoming.off("end", this.onEnd)
        this.incoming.off("error", this.onClose)
      }
      /** Idempotent: releases the turn (to the next waiting request) or the place in the queue, and the listeners. */
      finish(): void {
        const state = this.state
        if (state === 3) {
          return
        }
        this.state = 3
        this.resume = undefined
        this.body = undefined
        if (state === 0) {
          deadlines.remove(this.deadline)
          this.detachBody()
        }
        if (this.socket !== null) {
          inboundsOf.get(this.socket)?.delete(this)
        }
        const subscription = this.subscription
        if (state === 1) {
          const index = subscription.waiting.indexOf(this)
          if (index !== -1) {
            subscription.waiting.splice(index, 1)
          }
        } else if (state === 2) {
          const next = subscription.waiting.shift()
          if (next === undefined) {
            subscription.busy = false
          } else next.grant()
        }
      }
    }

    const app = Effect.flatMap(HttpServerRequest.HttpServerRequest, handle)
    /** Set when the endpoint starts (the module is loaded then; see `endpoint`). */
    let toIncomingMessage: typeof NodeHttpServerRequest.toIncomingMessage | undefined

    // One server per broker, started by the first subscription and closed with the layer.
    const endpoint = yield* Effect.cached(
      Effect.gen(function*() {
        // Loaded here, by the first subscribe: ≈200 ms of module loading (measured) that publish-only
        // processes, and every process's start-up, would otherwise pay.
        const [NodeHttpServer, NodeHttpServerRequestModule] = yield* Effect.tryPromise(() =>
          Promise.all([
            import("@effect/platform-node/NodeHttpServer"),
            import("@effect/platform-node/NodeHttpServerRequest")
          ])
        )
        toIncomingMessage = NodeHttpServerRequestModule.toIncomingMessage
        const server = yield* NodeHttpServer.make(() => {
          // Node's own guards against slow or idle peers (slowloris): the headers, and the whole request
          // (headers + body; our body deadline is `bodyTimeout`, measured from the headers, on the wheel),
          // checked every second; idle keep-alive connections closed; connections beyond the cap dropped.
          // Node takes 0 for "no limit" (an infinite Duration here).
          const finite = (millis: number) =>
            Number.isFinite(millis) ? Math.round(millis) : 0
          const headersMillis = finite(Duration.toMillis(headersTimeout))
          const requestMillis = finite(Duration.toMillis(headersTimeout) + bodyTimeoutMillis + 1000)
          const created = http.createServer({
            headersTimeout: requestMillis === 0 ? headersMillis : Math.min(headersMillis, requestMillis),
            requestTimeout: requestMillis,
            keepAliveTimeout: finite(Duration.toMillis(keepAliveTimeout)),
            connectionsCheckingInterval: 1000
          })
          created.maxConnections = maxConnections
          return created
        }, {
          host: options?.host ?? defaults.host,
          port: options?.port ?? defaults.port
        })
        yield* server.serve(app)
        const address = server.address
        if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("HTTP broker: expected a TCP address")
        return advertisedAddress(formatAddress(address.hostname, address.port), options?.advertise)
      }).pipe(
        Effect.mapError((cause) =>
          new BrokerError({
            reason: "Unavailable",
            topic: "",
            detail: `could not start the subscriber endpoint: ${String(cause)}`,
            failures: [],
            cause
          })
        ),
        // Lives in the layer's scope, not the first subscriber's.
        Scope.extend(layerScope)
      )
    )

    const subscribe = (topic: string, handler: Handler, subscribeOptions?: SubscribeOptions) =>
      Effect.gen(function*() {
        const address = yield* endpoint
        const subscription: LocalSubscription = {
          id: `${topic}-${randomId()}`.replace(/[^A-Za-z0-9._-]/g, "-"),
          topic,
          queue: subscribeOptions?.queue,
          handler,
          autoAck: subscribeOptions?.autoAck ?? true,
          context: yield* Effect.context<never>(),
          busy: false,
          waiting: []
        }
        const node: Node = {
          id: subscription.id,
          address,
          metadata: {
            broker: "http",
            topic,
            path: `${PATH_PREFIX}${encodeURIComponent(subscription.id)}`,
            ...(subscription.queue !== undefined ? { queue: subscription.queue } : {})
          }
        }
        const service: RegisteredService = {
          name: `${servicePrefix}${topic}`,
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [node]
        }
        yield* Effect.acquireRelease(
          Effect.sync(() => subscriptions.set(subscription.id, subscription)),
          () => Effect.sync(() => subscriptions.delete(subscription.id))
        )
        const register = registry.register(service, { ttl: registerTtl })
        // Released first: publishers stop picking this subscription before it is removed locally.
        yield* Effect.acquireRelease(
          register.pipe(Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2))))),
          () => Effect.ignoreLogged(registry.deregister(service))
        ).pipe(
          Effect.mapError((cause) =>
            new BrokerError({
              reason: "Unavailable",
              topic,
              detail: `could not register the subscription: ${cause.message}`,
              failures: [],
              cause
            })
          )
        )
        yield* Effect.sleep(registerInterval).pipe(
          Effect.zipRight(register),
          Effect.tapError((error) =>
            Effect.logWarning(`re-registration of subscription ${subscription.id} failed`, error)
          ),
          Effect.ignore,
          Effect.forever,
          Effect.forkScoped
        )
        return {
          id: subscription.id,
          topic,
          queue: subscription.queue,
          endpoint: `http://${address}${node.metadata.path}`
        } satisfies Subscription
      })

    // ---------------------------------------------------------------- publisher side
    // One connection per subscriber endpoint with up to `maxInFlight` batches pipelined on it: TCP keeps
    // them in order and the endpoint handles them in arrival order, so order per publisher is kept while the
    // publisher prepares the next batch as the subscriber handles the previous one. POSTs are marked
    // idempotent only so that undici pipelines them (undici never retries by itself).
    const maxInFlight = Math.max(1, options?.maxInFlight ?? defaults.maxInFlight)
    // Created by the first publish, with undici loaded then: ≈100–150 ms of module loading (measured) that
    // subscribe-only processes, and every process's start-up, would otherwise pay.
    let dispatcher: Undici.Agent | undefined
    const startDispatcher = yield* Effect.cached(
      Effect.acquireRelease(
        Effect.promise(() => import("@effect/platform-node/Undici")).pipe(
          Effect.map((Undici) =>
            new Undici.Agent({
              connections: 1,
              pipelining: maxInFlight,
              // A subscriber host that vanished (no answer to SYN) fails here, and is ejected, before the publish timeout.
              connect: { timeout: Math.max(1, Math.round(Math.min(Duration.toMillis(connectTimeout), 2_147_483_647))) }
            })
          )
        ),
        (agent) => Effect.promise(() => agent.destroy().catch(() => undefined))
      ).pipe(
        Effect.map((agent) => {
          dispatcher = agent
        }),
        // Lives in the layer's scope, not the first publisher's.
        Scope.extend(layerScope)
      )
    )
    const timeoutMillis = Duration.toMillis(publishTimeout)

    /**
     * One batch POST, dispatched on undici directly: no HttpClient request/response objects, fiber, response
     * body stream or timeout fiber per batch (measured with 1000 publishes waiting for results: publisher CPU
     * 7.7–9.0 → 4.9–5.4 µs per event). Same outcomes as through the HttpClient: 204 = every message
     * delivered, 200 = one result per message, an error status or a network error = one result for the whole
     * batch. `publishTimeout` bounds the whole exchange (then the request is aborted), on the timing wheel.
     * A reply is read up to `maxBodySize` bytes.
     */
    class BatchRequest implements Undici.Dispatcher.DispatchHandler {
      status = 0
      chunks: Array<Buffer> | undefined = undefined
      bytes = 0
      finished = false
      controller: Undici.Dispatcher.DispatchController | undefined = undefined
      readonly deadline: DeadlineEntry
      constructor(readonly url: string, readonly count: number, readonly done: (result: BatchResult) => void) {
        this.deadline = deadlines.add(timeoutMillis, this.onTimeout)
      }
      readonly onTimeout = (): void => {
        if (this.finished) return
        this.finish({
          reason: "Timeout",
          detail: `no reply from ${this.url} within ${Duration.format(publishTimeout)}`,
          retry: false,
          fault: "failure"
        })
        this.controller?.abort(new Error("publish timeout"))
      }
      finish(result: BatchResult): void {
        if (this.finished) return
        this.finished = true
        deadlines.remove(this.deadline)
        this.done(result)
      }
      onRequestStart(controller: Undici.Dispatcher.DispatchController): void {
        this.controller = controller
        // Timed out while queued behind other requests: never sent.
        if (this.finished) controller.abort(new Error("publish timeout"))
      }
      onResponseStart(_controller: Undici.Dispatcher.DispatchController, statusCode: number): void {
        this.status = statusCode
      }
      onResponseData(controller: Undici.Dispatcher.DispatchController, chunk: Buffer): void {
        this.bytes += chunk.length
        if (this.bytes > maxBodySize) {
          this.finish({
            reason: "Unreachable",
            detail: `reply from ${this.url} exceeds ${maxBodySize} bytes`,
            retry: false,
            fault: "failure"
          })
          return controller.abort(new Error("reply too large"))
        }
        ;(this.chunks ??= []).push(chunk)
      }
      onResponseEnd(): void {
        if (this.finished) return
        const status = this.status
        // 204: every message delivered (the compact reply we asked for).
        if (status === 204) return this.finish(undefined)
        const text = this.chunks === undefined ? "" : Buffer.concat(this.chunks).toString("utf8")
        this.finish(resultOfReply(this.url, this.count, status, text))
      }
      onResponseError(_controller: Undici.Dispatcher.DispatchController, error: Error): void {
        const code = codeOf(error)
        this.finish({
          reason: "Unreachable",
          detail: `${this.url}: ${code ?? String(error)}`,
          // Refused or never connected: the message provably was not delivered.
          retry: code === "ECONNREFUSED" || code === "UND_ERR_CONNECT_TIMEOUT",
          fault: "refused"
        })
      }
    }

    const post = (
      origin: string,
      path: string,
      url: string,
      items: ReadonlyArray<Item>,
      done: (result: BatchResult) => void
    ) => {
      let body: Buffer
      try {
        body = encodeBatch(items)
      } catch (cause) {
        // Only a content-type over 65535 bytes: the batch is refused as a whole rather than left unresolved.
        return done({
          reason: "Rejected",
          detail: `cannot encode the batch: ${(cause as Error).message}`,
          retry: false,
          fault: "unsent"
        })
      }
      // `idempotent` only so that undici pipelines the POSTs (it never retries by itself).
      // Set: every publish waits for `startDispatcher` first.
      dispatcher!.dispatch(
        { origin, path, method: "POST", headers: batchHeaders, body, idempotent: true },
        new BatchRequest(url, items.length, done)
      )
    }

    /**
     * The publisher's breaker: the RPC client's per-node health (internal/rpc/nodeHealth.ts), with its semantics
     * and defaults (`ejection`), keyed by endpoint address (`host:port`: one subscriber process, whose
     * subscriptions share its connection). A connection-level failure (refused, reset, no connection within
     * `connectTimeout`) ejects the endpoint at once; publish timeouts, 503, 504 and other 5xx count towards
     * `consecutiveFailures`. While it is ejected, what is queued for it and what is published to it fails at
     * once with `Unreachable` (`retry`, so a queue group tries another member; a broadcast subscriber is
     * reported). Half-open, the next batch is the single trial: its success closes the breaker, its failure
     * ejects for twice as long. Batches in flight are counted per endpoint for queue-group selection.
     * Entries live as long as the broker, as the outboxes do (no sweep).
     */
    const clock = deadlines.clock
    const endpoints = new Map<string, Endpoint>()
    const health = new NodeHealth(
      clock,
      resolveEjection(options?.ejection),
      (state) => endpoints.get(state.address)?.ejected(state)
    )

    /** One subscriber endpoint (process): its breaker state and the outboxes of its subscriptions. */
    class Endpoint {
      readonly outboxes: Array<Outbox> = []
      /** HTTP answers received (NodeHealth counts batches sent since the endpoint last answered). */
      answers = 0
      /** Detail of the failure being reported, for the ejection's detail. */
      lastFailure = ""
      /** The outcome of what is sent here while ejected. */
      ejection: Outcome
      constructor(readonly state: NodeState) {
        this.ejection = { reason: "Unreachable", detail: `${state.address} (endpoint ejected)`, retry: true }
      }
      ejected(state: NodeState): void {
        const millis = state.ejectedUntil - clock.unsafeCurrentTimeMillis()
        this.ejection = {
          reason: "Unreachable",
          detail: `${this.lastFailure} (endpoint ejected for ${millis} ms)`,
          retry: true
        }
        for (const outbox of this.outboxes) outbox.drain(this.ejection)
      }
    }
    const endpointOf = (address: string): Endpoint => {
      let endpoint = endpoints.get(address)
      if (endpoint === undefined) {
        endpoint = new Endpoint(health.state(address))
        endpoints.set(address, endpoint)
      }
      return endpoint
    }

    class Outbox {
      pending: Array<Item> = []
      inFlight = 0
      scheduled = false
      /** Half-open: the trial this outbox claimed for its next batch (see `admit`). */
      trial: object | undefined = undefined
      readonly node: NodeState
      readonly origin: string
      readonly path: string
      constructor(readonly url: string, readonly endpoint: Endpoint) {
        const parsed = new URL(url)
        this.origin = parsed.origin
        this.path = parsed.pathname + parsed.search
        this.node = endpoint.state
        endpoint.outboxes.push(this)
      }
      /** `force`: a queue group in panic (see `GroupItem.next`) sends to an ejected endpoint anyway. */
      push(item: Item, force = false): void {
        if (this.node.status !== Status.Closed && this.trial === undefined && !this.admit(force)) {
          return item.resolve(this.endpoint.ejection)
        }
        this.pending.push(item)
        // Idle: send at once (latency). Busy: gather what this turn of the event loop publishes into one
        // batch instead of spending a free slot on a single message (measured 16.5k → 42.8k events/s).
        if (this.inFlight === 0) this.flush()
        else if (this.inFlight < maxInFlight && !this.scheduled) {
          this.scheduled = true
          setImmediate(this.flushScheduled)
        }
      }
      /**
       * The endpoint is not closed: claims its half-open trial for this outbox's next batch (what is pushed
       * until that batch leaves joins it). Claimed at push rather than at flush so that, of several
       * subscriptions on one endpoint, only one sends while the trial is out.
       */
      admit(force: boolean): boolean {
        const trial = {}
        if (!health.claimTrial(this.node, trial)) return force
        this.trial = trial
        return true
      }
      /** The endpoint was ejected: what is queued fails with `ejection`. */
      drain(ejection: Outcome): void {
        this.trial = undefined
        if (this.pending.length === 0) return
        const pending = this.pending
        this.pending = []
        for (const item of pending) item.resolve(ejection)
      }
      readonly flushScheduled = (): void => {
        this.scheduled = false
        if (this.pending.length > 0 && this.inFlight < maxInFlight) this.flush()
      }
      flush(): void {
        // Spread a backlog over the free slots so the subscriber handles one batch while the next is encoded.
        const spread = Math.max(64, Math.ceil(this.pending.length / Math.max(1, maxInFlight - this.inFlight)))
        const limit = Math.min(maxBatchMessages, spread)
        let count = 0
        let bytes = 0
        while (count < this.pending.length && count < limit) {
          bytes += this.pending[count]!.message.size
          if (count > 0 && bytes > maxBatchBytes) break
          count++
        }
        let batch: Array<Item>
        if (count === this.pending.length) {
          batch = this.pending
          this.pending = []
        } else batch = this.pending.splice(0, count)
        // The batch's identity for the breaker (the trial's, if this outbox holds it).
        const owner: object = this.trial ?? batch
        this.trial = undefined
        const node = this.node
        this.inFlight++
        health.begin(node, owner, this.endpoint.answers)
        post(this.origin, this.path, this.url, batch, (outcomes) => {
          this.inFlight--
          health.end(node)
          const fault = outcomes === undefined || Array.isArray(outcomes) ? undefined : (outcomes as Outcome).fault
          if (fault === undefined) {
            this.endpoint.answers++
            health.succeed(node, owner)
          } else if (fault === "unsent") health.release(node, owner)
          else {
            // May eject the endpoint, which fails what is queued for it (`Endpoint.ejected`).
            this.endpoint.lastFailure = (outcomes as Outcome).detail
            health.fail(node, owner, fault)
          }
          if (Array.isArray(outcomes)) {
            for (let i = 0; i < batch.length; i++) {
              const result = outcomes[i] as { reason: FailureReason; detail: string } | null
              batch[i]!.resolve(
                result === null ? undefined : { reason: result.reason, detail: result.detail, retry: false }
              )
            }
          } else for (const item of batch) item.resolve(outcomes as Outcome | undefined)
          if (this.pending.length > 0) this.flush()
        })
      }
    }
    const outboxes = new Map<string, Outbox>()
    const byNode = new WeakMap<Node, Outbox>()
    const outboxOf = (node: Node): Outbox => {
      const known = byNode.get(node)
      if (known !== undefined) return known
      const url = `http://${node.address}${node.metadata.path ?? PATH_PREFIX + encodeURIComponent(node.id)}`
      let outbox = outboxes.get(url)
      if (outbox === undefined) {
        outbox = new Outbox(url, endpointOf(node.address))
        outboxes.set(url, outbox)
      }
      byNode.set(node, outbox)
      return outbox
    }

    interface Group {
      readonly queue: string
      readonly members: ReadonlyArray<Node>
      readonly outboxes: ReadonlyArray<Outbox>
    }
    interface Targets {
      readonly broadcast: ReadonlyArray<Node>
      readonly broadcastOutboxes: ReadonlyArray<Outbox>
      readonly groups: ReadonlyArray<Group>
      /** Delivery results a publish waits for: one per broadcast subscriber, one per queue group. */
      readonly count: number
      /** One broadcast subscriber and no group: the publication is queued as its own item. */
      readonly single: boolean
    }
    // The cached registry returns the same array until something changes: group once per array.
    const targetsCache = new WeakMap<ReadonlyArray<RegisteredService>, Targets>()
    const targetsOf = (topic: string, services: ReadonlyArray<RegisteredService>): Targets => {
      const cached = targetsCache.get(services)
      if (cached !== undefined) return cached
      const broadcast: Array<Node> = []
      const groups = new Map<string, Array<Node>>()
      for (const service of services) {
        for (const node of service.nodes) {
          if (node.metadata.broker !== "http" || node.metadata.topic !== topic) continue
          const queue = node.metadata.queue
          if (queue === undefined) broadcast.push(node)
          else {
            const members = groups.get(queue)
            if (members === undefined) groups.set(queue, [node])
            else members.push(node)
          }
        }
      }
      const targets: Targets = {
        broadcast,
        broadcastOutboxes: broadcast.map(outboxOf),
        groups: [...groups].map(([queue, members]) => ({ queue, members, outboxes: members.map(outboxOf) })),
        count: broadcast.length + groups.size,
        single: broadcast.length === 1 && groups.size === 0
      }
      targetsCache.set(services, targets)
      return targets
    }

    const backlogged = (targets: Targets): boolean => {
      for (const outbox of targets.broadcastOutboxes) if (outbox.pending.length >= maxPending) return true
      for (const group of targets.groups) {
        for (const outbox of group.outboxes) if (outbox.pending.length >= maxPending) return true
      }
      return false
    }

    /**
     * One publish: the message as the outboxes queue it (shared by every target) and the delivery results
     * still due. Hot path (one object per publish, no closures): with a single broadcast subscriber it is
     * itself the queued item. `resume` is set while a publish waits for its results.
     */
    class Publication implements Prepared, Item {
      readonly size: number
      left: number
      failures: Array<DeliveryFailure> | undefined = undefined
      resume: ((effect: Effect.Effect<void, BrokerError>) => void) | undefined = undefined
      constructor(
        readonly topic: string,
        readonly contentType: string,
        readonly headers: Metadata,
        readonly body: Uint8Array,
        readonly targets: Targets,
        /** False for fire-and-forget: delivery failures are dropped. */
        readonly reportFailures: boolean
      ) {
        this.size = body.byteLength + 64
        this.left = targets.count
      }
      get message(): Prepared {
        return this
      }
      /** As the item of its single broadcast subscriber. */
      resolve(outcome: Outcome | undefined): void {
        this.settle(broadcastResult(this.targets.broadcast[0]!, outcome))
      }
      /** Called once per broadcast subscriber and once per queue group. */
      settle(failure: DeliveryFailure | undefined): void {
        if (failure !== undefined) (this.failures ??= []).push(failure)
        if (--this.left === 0 && this.resume !== undefined) {
          const resume = this.resume
          this.resume = undefined
          resume(
            this.failures === undefined || !this.reportFailures
              ? Effect.void
              : Effect.fail(deliveryFailed(this.topic, this.failures))
          )
        }
      }
    }

    /** Queues a publication for every target. */
    const send = (publication: Publication): void => {
      const targets = publication.targets
      if (targets.single) return targets.broadcastOutboxes[0]!.push(publication)
      for (let i = 0; i < targets.broadcast.length; i++) {
        targets.broadcastOutboxes[i]!.push(new BroadcastItem(publication, targets.broadcast[i]!))
      }
      for (const group of targets.groups) {
        new GroupItem(publication, group).next()
      }
    }

    class BroadcastItem implements Item {
      constructor(readonly message: Publication, readonly node: Node) {}
      resolve(outcome: Outcome | undefined): void {
        this.message.settle(broadcastResult(this.node, outcome))
      }
    }

    /** One message for one queue group: sent to one member; on a refusal, to another not yet tried. */
    class GroupItem implements Item {
      /** Members tried so far (indices), from the first retry on. */
      tried: Array<number> | undefined = undefined
      /** The member it was last sent to. */
      index = 0
      constructor(readonly message: Publication, readonly group: Group) {}
      /**
       * Sends to a member not tried yet: of two drawn at random, the one whose endpoint has fewer batches in
       * flight (power of two choices on `NodeHealth.load`, as the RPC client's default selector), so a hung
       * endpoint stops getting messages long before its timeouts fire; endpoints that are not ejected first.
       * Panic, as the client's: when fewer than `panicThreshold` of the group's members (or none) are usable,
       * ejection is ignored and the message goes to an ejected member rather than failing.
       */
      next(): void {
        const members = this.group.members
        const n = members.length
        const tried = this.tried
        if (tried === undefined && health.unhealthy === 0) {
          this.index = n === 1 ? 0 : this.pickOfTwo(n, undefined)
          return this.group.outboxes[this.index]!.push(this)
        }
        const now = clock.unsafeCurrentTimeMillis()
        let usable = 0
        const fresh: Array<number> = []
        let freshUsable: Array<number> | undefined
        for (let i = 0; i < n; i++) {
          const ok = health.available(this.group.outboxes[i]!.node, now)
          if (ok) usable++
          if (tried !== undefined && tried.includes(i)) continue
          fresh.push(i)
          if (ok) (freshUsable ??= []).push(i)
        }
        const candidates = freshUsable ?? fresh
        this.index = candidates.length === 1 ? candidates[0]! : this.pickOfTwo(candidates.length, candidates)
        const panic = usable === 0 || usable < health.options.panicThreshold * n
        this.group.outboxes[this.index]!.push(this, panic)
      }
      /** Two distinct candidates at random (indices into `candidates`, or members), the less loaded wins. */
      pickOfTwo(count: number, candidates: ReadonlyArray<number> | undefined): number {
        const first = Math.floor(Math.random() * count)
        let second = Math.floor(Math.random() * (count - 1))
        if (second >= first) second++
        const a = candidates === undefined ? first : candidates[first]!
        const b = candidates === undefined ? second : candidates[second]!
        const members = this.group.members
        return health.load(members[b]!) < health.load(members[a]!) ? b : a
      }
      resolve(outcome: Outcome | undefined): void {
        if (outcome === undefined) return this.message.settle(undefined)
        if (outcome.retry && (this.tried?.length ?? 0) + 1 < this.group.members.length) {
          ;(this.tried ??= []).push(this.index)
          return this.next()
        }
        this.message.settle({
          subscriber: this.group.members[this.index]!.id,
          queue: this.group.queue,
          reason: outcome.reason,
          detail: outcome.detail
        })
      }
    }

    const publishTo = (
      topic: string,
      services: ReadonlyArray<RegisteredService>,
      body: Uint8Array,
      publishOptions: PublishOptions | undefined
    ): Effect.Effect<void, BrokerError> => {
      if (draining) {
        return Effect.fail(
          new BrokerError({ reason: "Closed", topic, detail: "broker closed", failures: [], cause: undefined })
        )
      }
      const targets = targetsOf(topic, services)
      if (targets.count === 0) return Effect.void
      const fireAndForget = publishOptions?.fireAndForget === true
      const publication = new Publication(
        topic,
        publishOptions?.contentType ?? OCTET_STREAM,
        normalizeHeaders(publishOptions?.headers),
        body,
        targets,
        !fireAndForget
      )
      if (fireAndForget && !backlogged(targets)) {
        // No Effect.async on this path: queue and return (results are dropped).
        send(publication)
        return Effect.void
      }
      // Waits for the results; fire-and-forget waits too while an outbox is over `maxPending` (backpressure).
      return Effect.async<void, BrokerError>((resume) => {
        publication.resume = resume
        send(publication)
      })
    }

    // The registry lookup and its error mapping in one step (no catchAll wrapper on the success path).
    const lookup = (
      topic: string,
      body: Uint8Array,
      publishOptions?: PublishOptions
    ): Effect.Effect<void, BrokerError> =>
      Effect.matchEffect(registry.getService(serviceName(topic)), {
        onFailure: (cause) =>
          cause._tag === "ServiceNotFound"
            ? publishTo(topic, noServices, body, publishOptions)
            : Effect.fail(
              new BrokerError({
                reason: "Unavailable",
                topic,
                detail: `registry: ${cause.message}`,
                failures: [],
                cause
              })
            ),
        onSuccess: (services) => publishTo(topic, services, body, publishOptions)
      })

    // `<servicePrefix><topic>` per topic, built once (no string concatenation and hashing per publish).
    const serviceNames = new Map<string, string>()
    const serviceName = (topic: string): string => {
      let name = serviceNames.get(topic)
      if (name === undefined) {
        if (serviceNames.size >= 10_000) serviceNames.clear()
        name = servicePrefix + topic
        serviceNames.set(topic, name)
      }
      return name
    }

    // With the cached registry (what publishers use), a fresh entry is read synchronously: a publish is then
    // one Effect step plus its Effect.async, instead of a registry Effect and a matchEffect around it.
    const peek = (registry as Peekable)[peekKey]
    const publish = peek === undefined ?
      lookup :
      (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
        Effect.suspend(() => {
          const services = peek(serviceName(topic))
          return services !== undefined
            ? publishTo(topic, services, body, publishOptions)
            : lookup(topic, body, publishOptions)
        })

    const ready = (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
      dispatcher !== undefined
        ? publish(topic, body, publishOptions)
        : Effect.zipRight(startDispatcher, publish(topic, body, publishOptions))

    const publishWithTimeout = (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
      publishOptions?.timeout === undefined
        ? ready(topic, body, publishOptions)
        : Effect.timeoutFail(ready(topic, body, publishOptions), {
          duration: publishOptions.timeout,
          onTimeout: () =>
            new BrokerError({
              reason: "Timeout",
              topic,
              detail: "no delivery result within the publish timeout",
              failures: []
            })
        })

    return { name: "http", publish: publishWithTimeout, subscribe } satisfies Broker.Service
  })

const noServices: ReadonlyArray<RegisteredService> = []
/**
 * A broadcast subscriber's result: one whose endpoint answers that the subscription is gone or leaving
 * (404/503) no longer exists, so it is skipped; one that cannot be reached (refused, reset, ejected, timed out)
 * is reported, as for a queue group none of whose members could be reached.
 */
const broadcastResult = (node: Node, outcome: Outcome | undefined): DeliveryFailure | undefined =>
  outcome === undefined || outcome.left === true
    ? undefined
    : { subscriber: node.id, queue: undefined, reason: outcome.reason, detail: outcome.detail }
/** A batch POST's headers; asks the subscriber for the compact reply (204 when every message was delivered). */
const batchHeaders = { "content-type": BATCH_CONTENT_TYPE, [BATCH_RESULTS_HEADER]: BATCH_RESULTS_COMPACT }

/** What a batch POST produced: undefined = all delivered, one result per message, or one outcome for all. */
type BatchResult = ReadonlyArray<{ reason: FailureReason; detail: string } | null> | Outcome | undefined

/** The result of a batch reply other than 204. */
const resultOfReply = (url: string, count: number, status: number, text: string): BatchResult => {
  if (status === 200) {
    try {
      const results = JSON.parse(text) as Array<{ reason: FailureReason; detail: string } | null>
      if (Array.isArray(results) && results.length === count) return results
    } catch {
      // fall through
    }
    return { reason: "Unreachable", detail: `malformed batch reply from ${url}`, retry: false, fault: "failure" }
  }
  let detail = text
  try {
    detail = (JSON.parse(text) as { detail?: string }).detail ?? text
  } catch {
    // keep the text
  }
  // 404: this subscription is gone, but its process answered (not held against it); 503: it is shutting down.
  if (status === 404) return { reason: "Unreachable", detail: `${status}: ${detail}`, retry: true, left: true }
  if (status === 503) {
    return { reason: "Unreachable", detail: `${status}: ${detail}`, retry: true, left: true, fault: "failure" }
  }
  // The subscriber's handler deadline (see `handlerTimeout`).
  if (status === 504) return { reason: "Timeout", detail: `${status}: ${detail}`, retry: false, fault: "failure" }
  if (status >= 400 && status < 500) return { reason: "Rejected", detail: `${status}: ${detail}`, retry: false }
  return {
    reason: "Unreachable",
    detail: `${status}: ${detail}`,
    retry: false,
    fault: status >= 500 ? "failure" : undefined
  }
}
