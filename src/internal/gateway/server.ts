/**
 * The gateway on its own Node HTTP server: the router served by @effect/platform-node, with Node's limits
 * (headers and request timeouts, keep-alive timeout, connection cap) set on the `http.Server`.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Scope from "effect/Scope"
import * as Http from "node:http"
import type { Client } from "../../Client.js"
import type { Gateway, GatewayOptions } from "../../Gateway.js"
import type { Registry } from "../../Registry.js"
import { ServerClosing } from "../common/serverClosing.js"
import * as fastPath from "./fastPath.js"
import * as router from "./router.js"

/** Defaults of `GatewayOptions`' server fields (documented there). */
export const defaults = {
  port: 8080,
  host: "0.0.0.0",
  headersTimeout: Duration.seconds(10),
  requestTimeout: Duration.seconds(30),
  keepAliveTimeout: Duration.seconds(5),
  maxConnections: 10_000
} as const

const millis = (duration: Duration.DurationInput) => Duration.toMillis(Duration.decode(duration))

export const make = (
  options: GatewayOptions
): Effect.Effect<Gateway.Service, ServeError, Client | Registry | Scope.Scope> =>
  Effect.gen(function*() {
    const { app, core } = yield* router.makeWithCore(options)
    const runtime = yield* Effect.runtime<never>()
    let nodeServer: Http.Server | undefined
    const headersTimeout = millis(options.headersTimeout ?? defaults.headersTimeout)
    const requestTimeout = millis(options.requestTimeout ?? defaults.requestTimeout)
    const closing = yield* Deferred.make<void>()
    // The server and everything the platform attaches to it live in a child scope, closed after `closing`
    // completes (the finalizer below, added to the layer's scope after the child). Within one scope that
    // order is not ours to choose: the platform adds the WebSocket server's release (`wss.close`, which waits
    // for every open socket) when the first upgrade happens, after anything added here.
    const serverScope = yield* Scope.fork(yield* Effect.scope, ExecutionStrategy.sequential)
    const server = yield* NodeHttpServer.make(() => {
      const server = Http.createServer({
        headersTimeout,
        // Node checks the two timeouts on this interval (default 30 s, which would let a slow client hold a
        // connection for up to 30 s past them): half the shorter timeout, between 100 ms and 1 s.
        connectionsCheckingInterval: Math.min(
          1000,
          Math.max(100, Math.floor(Math.min(headersTimeout, requestTimeout || headersTimeout) / 2))
        ),
        // Node wants requestTimeout ≥ headersTimeout (0 turns it off).
        requestTimeout: requestTimeout === 0 ? 0 : Math.max(requestTimeout, headersTimeout),
        keepAliveTimeout: millis(options.keepAliveTimeout ?? defaults.keepAliveTimeout)
      })
      server.maxConnections = options.maxConnections ?? defaults.maxConnections
      nodeServer = server
      return server
    }, { port: options.port ?? defaults.port, host: options.host ?? defaults.host }).pipe(Scope.extend(serverScope))
    // Provided around `serve`, not per request: the request fibers start from the runtime `serve` captures.
    const serve = Effect.provideService(server.serve(app), ServerClosing, Deferred.await(closing))
    // @effect/platform opens a span per request unless told not to (+µs per request); opt-in here.
    yield* (options.tracing === true ? serve : HttpMiddleware.withTracerDisabledWhenEffect(serve, () => true)).pipe(
      Scope.extend(serverScope)
    )
    // Runs before the child scope closes: the server's close waits for every open response, `serve`'s
    // finalizer for the WebSocket fibers (the platform runs handlers uninterruptibly), `wss.close` for every
    // socket. This ends the streams and sockets (calls, the dashboard's events) that would otherwise hold all
    // three until their clients leave.
    yield* Effect.addFinalizer(() => Deferred.succeed(closing, undefined))
    // The fast path (fastPath.ts) answers what it can and hands the rest to the platform's handler: it takes
    // the handler's place as the server's one "request" listener (the platform's finalizer removing its own
    // listener then finds nothing; the server closes with the scope anyway). Off when tracing is on, so every
    // request gets its span.
    if (nodeServer !== undefined && options.tracing !== true) {
      const server = nodeServer
      const platformHandlers = server.listeners("request") as Array<
        (request: Http.IncomingMessage, response: Http.ServerResponse) => void
      >
      const fast = fastPath.make(core, runtime)
      server.removeAllListeners("request")
      server.on("request", (request: Http.IncomingMessage, response: Http.ServerResponse) => {
        if (fast(request, response)) return
        for (const handler of platformHandlers) handler(request, response)
      })
    }
    const address = server.address
    return address._tag === "TcpAddress"
      ? { host: address.hostname, port: address.port }
      : { host: address.path, port: 0 }
  })
