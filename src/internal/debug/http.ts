/**
 * The HTTP side of `Debug`: `/health`, `/ready`, `/stats`, `/metrics` of one server (its `http` option).
 * node:http is loaded when it starts, so services without it never load it.
 */
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type * as http from "node:http"
import type * as net from "node:net"
import type { Health, HttpOptions, Stats } from "../../Debug.js"
import type { TransportError } from "../../Errors.js"
import { listen as listenHttp } from "../common/httpListen.js"
import { formatAddress, listenError } from "../transport/tcp.js"
import { render } from "./prometheus.js"

const send = (response: http.ServerResponse, status: number, contentType: string, body: string) => {
  response.writeHead(status, { "content-type": contentType, "cache-control": "no-store" })
  response.end(body)
}

const json = (response: http.ServerResponse, status: number, value: unknown) =>
  send(response, status, "application/json", JSON.stringify(value))

/** What the probe reads; `undefined` while the server is still starting (then /ready is 503). */
export interface Probed {
  readonly health: Effect.Effect<Health>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Listens for the probes until the scope closes. The server opens it before its own listener and closes
 * it after draining, so `/ready` answers 503 for the whole drain and `/health` until the end.
 */
export const listen = (
  options: HttpOptions,
  probed: () => Probed | undefined
): Effect.Effect<{ readonly address: string }, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    const run = Runtime.runPromise(yield* Effect.runtime<never>())
    const { createServer } = yield* Effect.promise(() => import("node:http"))
    const handle = async (request: http.IncomingMessage, response: http.ServerResponse) => {
      const path = (request.url ?? "/").split("?")[0]
      if (request.method !== "GET" && request.method !== "HEAD") {
        return send(response, 405, "text/plain", "method not allowed\n")
      }
      const server = probed()
      switch (path) {
        case "/health":
          // Liveness: the process answers. A draining server is alive (it is finishing its calls).
          return server === undefined
            ? json(response, 200, { status: "not-ready" })
            : json(response, 200, await run(server.health))
        case "/ready": {
          if (server === undefined) return json(response, 503, { status: "not-ready" })
          const health = await run(server.health)
          return json(response, health.status === "serving" ? 200 : 503, health)
        }
        case "/stats":
          return server === undefined
            ? json(response, 503, { status: "not-ready" })
            : json(response, 200, await run(server.stats))
        case "/metrics":
          return server === undefined
            ? send(response, 503, "text/plain", "starting\n")
            : send(response, 200, "text/plain; version=0.0.4; charset=utf-8", render(await run(server.stats)))
        default:
          return send(response, 404, "text/plain", "not found: try /health, /ready, /stats or /metrics\n")
      }
    }
    const probe = createServer((request, response) => {
      handle(request, response).catch(() => send(response, 500, "text/plain", "internal error\n"))
    })
    const host = options.host ?? "0.0.0.0"
    const port = options.port ?? 0
    const requested = formatAddress(host, port)
    yield* Effect.acquireRelease(
      Effect.mapError(listenHttp(probe, port, host), (error) => listenError(requested, error)),
      () =>
        Effect.async<void>((resume) => {
          probe.close(() => resume(Effect.void))
          probe.closeAllConnections()
        })
    )
    const bound = probe.address() as net.AddressInfo
    return { address: formatAddress(bound.address, bound.port) }
  })
