/**
 * The HTTP broker's subscriber side: the first `subscribe` starts one HTTP server per broker (in the layer's
 * scope); each subscription is registered as a node of the service `<servicePrefix><topic>` (metadata:
 * broker, topic, path, queue) with a TTL and renewed on an interval; closing the subscription deregisters it,
 * then removes it locally. Each request's body and turn are `Inbound`s (`httpInbound`); the handler runs
 * under the handler deadline. Assembled by `http.ts`.
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Runtime from "effect/Runtime"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import type * as Net from "node:net"
import type { Broker, Handler, SubscribeOptions, Subscription } from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { Node, Registry, Service as RegisteredService } from "../../Registry.js"
import { listen } from "../common/httpListen.js"
import { randomId } from "../common/text.js"
import type { DeadlineEntry, DeadlineWheel } from "../rpc/deadlines.js"
import { advertisedAddress, formatAddress } from "../transport/address.js"
import { deliverLocal, OCTET_STREAM } from "./core.js"
import type { InboundOwner, Inbounds, LocalSubscription, Reply } from "./httpInbound.js"
import { errorReply, gone, Inbound, jsonReply } from "./httpInbound.js"
import type { BrokerState, Settings } from "./httpSettings.js"
import type { WireMessage } from "./httpWire.js"
import {
  allDelivered,
  BATCH_CONTENT_TYPE,
  BATCH_RESULTS_COMPACT,
  BATCH_RESULTS_HEADER,
  decodeBatch,
  encodeResults,
  HEADER_PREFIX,
  PATH_PREFIX,
  statusOf
} from "./httpWire.js"

const usePost: Reply = (() => {
  const reply = errorReply(405, "Rejected", "use POST")
  return { ...reply, headers: { ...reply.headers, allow: "POST" } }
})()

/** Stops accepting, closes idle keep-alive connections, and waits for the requests being answered. */
const close = (server: http.Server) =>
  Effect.async<void>((resume) => {
    if (!server.listening) return resume(Effect.void)
    server.close(() => resume(Effect.void))
  })

const deliverOne = (subscription: LocalSubscription, message: WireMessage) =>
  deliverLocal(
    subscription.handler,
    subscription.autoAck,
    subscription.topic,
    message.body,
    message.contentType,
    message.headers
  )

/** The reply to a batch or message every handler took. */
const NO_CONTENT: Reply = { status: 204 }

/**
 * One POST on the subscriber endpoint, on Node's request and response directly: the body and the
 * subscription's turn (`Inbound`), then the handling as one fiber of the subscribing fiber's runtime under
 * the handler deadline (`handlerTimeout`, on the timing wheel: past it the handler is interrupted and the
 * request gets 504 `Timeout` — a batch: all its messages, some of which may have been handled), then the
 * reply. The client going away interrupts the handler; the subscription's next request runs only once the
 * handler has stopped, finalizers included. Served through @effect/platform's HTTP server, each request
 * also cost a fiber, a request wrapper and the response conversion (subscriber CPU per event, one
 * publisher waiting for results, same-run bench: 452 µs then, 106 µs this way).
 */
class Delivery implements InboundOwner {
  fiber: Fiber.RuntimeFiber<Reply> | undefined = undefined
  deadline: DeadlineEntry | undefined = undefined
  timedOut = false
  constructor(
    readonly endpoint: EndpointContext,
    readonly inbound: Inbound,
    readonly response: http.ServerResponse,
    readonly contentType: string,
    readonly compact: boolean
  ) {}
  granted(body: Uint8Array): void {
    const subscription = this.inbound.subscription
    let handling: Effect.Effect<Reply>
    if (this.contentType.startsWith(BATCH_CONTENT_TYPE)) {
      let messages: Array<WireMessage>
      try {
        messages = decodeBatch(body)
      } catch (cause) {
        return this.reply(errorReply(400, "Rejected", `malformed batch: ${(cause as Error).message}`))
      }
      const compact = this.compact
      // Sequential: messages of one batch are handled in order.
      handling = Effect.map(
        Effect.forEach(messages, (message) => deliverOne(subscription, message)),
        (results) => compact && allDelivered(results) ? NO_CONTENT : jsonReply(200, encodeResults(results))
      )
    } else {
      const headers: Record<string, string> = {}
      const incoming = this.inbound.incoming.headers
      for (const key in incoming) {
        if (key.startsWith(HEADER_PREFIX)) headers[key.slice(HEADER_PREFIX.length)] = String(incoming[key])
      }
      handling = Effect.map(
        deliverOne(subscription, { contentType: this.contentType, headers, body }),
        (failure) => failure === undefined ? NO_CONTENT : errorReply(statusOf(failure), failure.reason, failure.detail)
      )
    }
    const fiber = subscription.runFork(handling)
    this.fiber = fiber
    const millis = this.endpoint.handlerTimeoutMillis
    if (millis !== Infinity) this.deadline = this.endpoint.deadlines.add(millis, this.onDeadline)
    fiber.addObserver(this.onExit)
  }
  refused(reply: Reply): void {
    this.reply(reply)
  }
  readonly onDeadline = (): void => {
    this.deadline = undefined
    this.timedOut = true
    this.fiber!.unsafeInterruptAsFork(FiberId.none)
  }
  readonly onExit = (exit: Exit.Exit<Reply>): void => {
    this.endpoint.deadlines.remove(this.deadline)
    this.deadline = undefined
    this.reply(
      this.timedOut
        ? this.endpoint.handlerTimedOut
        : Exit.isSuccess(exit)
        ? exit.value
        // Interrupted because the client went away (nobody reads it), or a defect of the framework's own.
        : Exit.isInterrupted(exit)
        ? gone
        : errorReply(500, "Unreachable", `subscriber failed: ${Cause.pretty(exit.cause)}`)
    )
  }
  /** The response closed: if before the reply was written, its client went away. */
  readonly onClose = (): void => {
    if (!this.response.writableEnded) this.fiber?.unsafeInterruptAsFork(FiberId.none)
  }
  reply(reply: Reply): void {
    // Releases the subscription's turn (or the place in its queue) first: the next request may start.
    this.inbound.finish()
    writeReply(this.response, reply)
  }
}

const writeReply = (response: http.ServerResponse, reply: Reply): void => {
  if (response.destroyed || response.headersSent) return
  if (reply.headers === undefined) response.writeHead(reply.status)
  else response.writeHead(reply.status, reply.headers)
  response.end(reply.body)
}

/** What every request of one endpoint shares besides `Inbounds`. */
interface EndpointContext {
  readonly deadlines: DeadlineWheel
  readonly handlerTimeoutMillis: number
  readonly handlerTimedOut: Reply
}

/** The broker's `subscribe`; its server, once started, lives in `layerScope`. */
export const makeSubscriber = (
  settings: Settings,
  registry: Registry.Service,
  layerScope: Scope.Scope,
  deadlines: DeadlineWheel,
  state: BrokerState
): Effect.Effect<Broker.Service["subscribe"]> =>
  Effect.gen(function*() {
    const {
      bodyTimeoutMillis,
      headersTimeout,
      keepAliveTimeout,
      maxBodySize,
      maxConnections,
      registerInterval,
      registerTtl,
      servicePrefix
    } = settings
    const subscriptions = new Map<string, LocalSubscription>()
    const inbounds: Inbounds = { settings, deadlines, subscriptions, bySocket: new WeakMap<Net.Socket, Set<Inbound>>() }

    const endpointContext: EndpointContext = {
      deadlines,
      handlerTimeoutMillis: Duration.toMillis(settings.handlerTimeout),
      handlerTimedOut: errorReply(
        504,
        "Timeout",
        `handler did not finish within ${Duration.format(settings.handlerTimeout)}`
      )
    }

    /** A request's checks before its body is read; a refusal is answered at once. */
    const onRequest = (request: http.IncomingMessage, response: http.ServerResponse): void => {
      const url = request.url ?? "/"
      const query = url.indexOf("?")
      const path = query === -1 ? url : url.slice(0, query)
      if (!path.startsWith(PATH_PREFIX)) {
        return writeReply(response, errorReply(404, "Unreachable", `no broker endpoint at ${path}`))
      }
      if (request.method !== "POST") return writeReply(response, usePost)
      let id: string
      try {
        id = decodeURIComponent(path.slice(PATH_PREFIX.length))
      } catch {
        return writeReply(response, errorReply(400, "Rejected", `malformed path ${path}: bad %-escape`))
      }
      const subscription = subscriptions.get(id)
      if (subscription === undefined) {
        return writeReply(response, errorReply(404, "Unreachable", `no subscription at ${path}`))
      }
      if (state.draining) return writeReply(response, errorReply(503, "Unreachable", "subscriber is shutting down"))
      const length = Number(request.headers["content-length"] ?? "0")
      if (length > maxBodySize) {
        return writeReply(
          response,
          errorReply(413, "Rejected", `body of ${length} bytes exceeds the limit of ${maxBodySize}`, true)
        )
      }
      const topicHeader = request.headers["micro-topic"]
      if (topicHeader !== undefined && topicHeader !== subscription.topic) {
        return writeReply(
          response,
          errorReply(400, "Rejected", `micro-topic ${topicHeader} does not match ${subscription.topic}`)
        )
      }
      // The body is read first (bounded in size and time, see `Inbound`); the subscription's turn is taken
      // when it is complete, so a slow or stalled body never holds the subscription.
      const delivery = new Delivery(
        endpointContext,
        new Inbound(inbounds, subscription, request),
        response,
        request.headers["content-type"] ?? OCTET_STREAM,
        request.headers[BATCH_RESULTS_HEADER] === BATCH_RESULTS_COMPACT
      )
      response.once("close", delivery.onClose)
      delivery.inbound.start(delivery)
    }

    // One server per broker, started by the first subscription and closed with the layer: Node's own
    // server, no @effect/platform around it (see `Delivery`).
    const endpoint = yield* Effect.cached(
      Effect.gen(function*() {
        // Node's own guards against slow or idle peers (slowloris): the headers, and the whole request
        // (headers + body; our body deadline is `bodyTimeout`, measured from the headers, on the wheel),
        // checked every second; idle keep-alive connections closed; connections beyond the cap dropped.
        // Node takes 0 for "no limit" (an infinite Duration here).
        const finite = (millis: number) => Number.isFinite(millis) ? Math.round(millis) : 0
        const headersMillis = finite(Duration.toMillis(headersTimeout))
        const requestMillis = finite(Duration.toMillis(headersTimeout) + bodyTimeoutMillis + 1000)
        const server = http.createServer({
          headersTimeout: requestMillis === 0 ? headersMillis : Math.min(headersMillis, requestMillis),
          requestTimeout: requestMillis,
          keepAliveTimeout: finite(Duration.toMillis(keepAliveTimeout)),
          connectionsCheckingInterval: 1000
        }, onRequest)
        server.maxConnections = maxConnections
        yield* Effect.acquireRelease(listen(server, settings.port, settings.host), () => close(server))
        const address = server.address() as Net.AddressInfo
        const host = address.address === "::" ? "0.0.0.0" : address.address
        return advertisedAddress(formatAddress(host, address.port), settings.advertise)
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
          runFork: Runtime.runFork(yield* Effect.runtime<never>()),
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

    return subscribe
  })
