/**
 * The HTTP broker's subscriber side: the first `subscribe` starts one HTTP server per broker (in the layer's
 * scope); each subscription is registered as a node of the service `<servicePrefix><topic>` (metadata:
 * broker, topic, path, queue) with a TTL and renewed on an interval; closing the subscription deregisters it,
 * then removes it locally. Each request's body and turn are `Inbound`s (`httpInbound`); the handler runs
 * under the handler deadline. Assembled by `http.ts`.
 */
import type * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import type * as Net from "node:net"
import type { Broker, Handler, SubscribeOptions, Subscription } from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { Node, Registry, Service as RegisteredService } from "../../Registry.js"
import { randomId } from "../common/text.js"
import type { DeadlineEntry, DeadlineWheel } from "../rpc/deadlines.js"
import { advertisedAddress, formatAddress } from "../transport/address.js"
import { deliverLocal, OCTET_STREAM, withContext } from "./core.js"
import type { Inbounds, LocalSubscription } from "./httpInbound.js"
import { closeConnection, errorJson, Inbound } from "./httpInbound.js"
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

const deliverOne = (subscription: LocalSubscription, message: WireMessage) =>
  deliverLocal(
    subscription.handler,
    subscription.autoAck,
    subscription.topic,
    message.body,
    message.contentType,
    message.headers
  )

/**
 * The handler deadline (`handlerTimeout`), as a wrapper of one request's handling: past it the handler is
 * interrupted, the request gets 504 `Timeout` (a batch: all its messages, some of which may have been
 * handled) and the subscription's next request runs once the handler has stopped. On the timing wheel with
 * one child fiber per request, not `Effect.timeoutTo` (which forks a sleeper fiber and a timer per request
 * besides; see internal/rpc/deadlines.ts).
 */
const handlerDeadline = (deadlines: DeadlineWheel, handlerTimeout: Duration.Duration) => {
  const handlerTimeoutMillis = Duration.toMillis(handlerTimeout)
  const handlerTimedOut = errorJson(
    504,
    "Timeout",
    `handler did not finish within ${Duration.format(handlerTimeout)}`
  )
  return (
    effect: Effect.Effect<HttpServerResponse.HttpServerResponse>
  ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
    Effect.flatMap(
      Effect.forkDaemon(effect),
      (fiber) =>
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
        })
    )
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
    const withHandlerDeadline = handlerDeadline(deadlines, settings.handlerTimeout)

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
      if (state.draining) return Effect.succeed(errorJson(503, "Unreachable", "subscriber is shutting down"))
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
      const inbound = new Inbound(inbounds, subscription, toIncomingMessage!(request))
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
          const finite = (millis: number) => Number.isFinite(millis) ? Math.round(millis) : 0
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
          host: settings.host,
          port: settings.port
        })
        yield* server.serve(app)
        const address = server.address
        if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("HTTP broker: expected a TCP address")
        return advertisedAddress(formatAddress(address.hostname, address.port), settings.advertise)
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

    return subscribe
  })
