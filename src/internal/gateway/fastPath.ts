/**
 * The gateway layer's fast path for its busiest request: `POST /{service}/{endpoint}` to a unary endpoint
 * already in the client cache. It is answered straight from Node's request and response objects, with one
 * fiber per request (the call), instead of going through @effect/platform's server (a fiber with the request's
 * context, the router, the response conversion).
 *
 * Why: measured on the 2-core box (64 keep-alive clients, loaded machine, same-moment A/B), a bare
 * @effect/platform-node server with one route echoing its body cost ≈ 300 µs of CPU per request where
 * moleculer-web's whole path (HTTP in, a call to another process, HTTP out) cost ≈ 100 µs and a plain
 * `node:http` echo ≈ 40 µs; see docs/gateway.md, "Performance".
 *
 * Everything else (other shapes, WebSocket, aliases, OpenAPI, errors found before the call, a service not
 * cached yet) falls through to the router, which answers the same way: the fast path only handles requests
 * whose answer it can give identically (the same cache, call options, failure mapping and rate limiter).
 * With CORS on it stands aside (the platform's middleware owns those headers).
 */
import * as Cause from "effect/Cause"
import type * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Http from "node:http"
import type { ClientOptions } from "../../Client.js"
import { InternalServerError } from "../../Errors.js"
import { badRequest, Failure, frameworkBody } from "./errors.js"
import { callOptions, collectBody, invalidJson, parseJson, tooLarge } from "./request.js"
import type { Core } from "./router.js"
import { clientKeyOf, rateLimited } from "./router.js"

const jsonHeaders = (length: number, extra?: Record<string, string>) => ({
  "content-type": "application/json",
  "content-length": String(length),
  ...extra
})

const send = (response: Http.ServerResponse, status: number, body: unknown, extra?: Record<string, string>) => {
  if (response.headersSent || response.destroyed) return
  const text = JSON.stringify(body) ?? "null"
  response.writeHead(status, jsonHeaders(Buffer.byteLength(text), extra))
  response.end(text)
}

const sendFailure = (response: Http.ServerResponse, failure: Failure) => send(response, failure.status, failure.body)

/** `service` and `endpoint` of `/{service}/{endpoint}` (raw, still URL-encoded), or undefined. */
const targetOf = (url: string): { service: string; endpoint: string; query: string | undefined } | undefined => {
  const queryAt = url.indexOf("?")
  const path = queryAt === -1 ? url : url.slice(0, queryAt)
  if (path.charCodeAt(0) !== 47 /* / */) return undefined
  const slash = path.indexOf("/", 1)
  if (slash <= 1 || slash === path.length - 1 || path.indexOf("/", slash + 1) !== -1) return undefined
  return {
    service: path.slice(1, slash),
    endpoint: path.slice(slash + 1),
    query: queryAt === -1 ? undefined : url.slice(queryAt + 1)
  }
}

const decode = (segment: string): string | undefined => {
  if (segment.indexOf("%") === -1) return segment
  try {
    return decodeURIComponent(segment)
  } catch {
    return undefined
  }
}

/**
 * A request handler that answers the requests it can and returns false for the others (left to the router).
 * `runtime`: the layer's, in which calls run.
 */
export const make = (
  core: Core,
  runtime: Runtime.Runtime<never>
): (request: Http.IncomingMessage, response: Http.ServerResponse) => boolean => {
  if (core.cors) return () => false
  const runFork = Runtime.runFork(runtime)

  // Calls whose requests completed in this turn of the event loop start together, in one `setImmediate`
  // after the poll phase: each fiber runs synchronously up to queueing its frame, so the client connection
  // flushes all of them in one write instead of one write (a syscall) per request. Measured at 64 clients:
  // that write was the largest cost on the path (≈ 25 % of the gateway's CPU). The immediate is one-shot;
  // calls started after the runtime closed fail at once (and the server is closed by then).
  let pending: Array<() => void> = []
  let scheduled = false
  const startPending = () => {
    scheduled = false
    const batch = pending
    pending = []
    for (const start of batch) start()
  }
  const startSoon = (start: () => void) => {
    pending.push(start)
    if (!scheduled) {
      scheduled = true
      setImmediate(startPending)
    }
  }

  return (request, response) => {
    if (request.method !== "POST" || request.url === undefined) return false
    const target = targetOf(request.url)
    if (target === undefined) return false
    const service = decode(target.service)
    const name = decode(target.endpoint)
    if (service === undefined || name === undefined) return false
    if (core.postAliasPrefixes === true || core.postAliasPrefixes.has(target.service)) return false
    if (core.allowed !== undefined && !core.allowed.has(service)) return false
    const endpoint = core.cache.peek(service)?.endpoints.get(name)
    if (endpoint === undefined || endpoint.description.shape !== "unary") return false

    // From here on the request is ours.
    if (core.limiter !== undefined) {
      const forwarded = core.trustProxy ? request.headers["x-forwarded-for"] : undefined
      const wait = core.limiter.take(
        clientKeyOf(typeof forwarded === "string" ? forwarded : undefined, request.socket.remoteAddress),
        core.nowMillis()
      )
      if (wait > 0) {
        const failure = rateLimited(wait)
        send(response, failure.status, failure.body, { "retry-after": String(wait) })
        return true
      }
    }
    const declared = request.headers["content-length"]
    if (declared !== undefined && Number(declared) > core.maxBodySize) {
      // Answered without reading the body; closing the connection spares reading (and discarding) the rest.
      const failure = tooLarge(core.maxBodySize)
      send(response, failure.status, failure.body, { connection: "close" })
      return true
    }
    const timeoutText = target.query === undefined
      ? undefined
      : new URLSearchParams(target.query).get("timeout") ?? undefined
    collectBody(request, core.maxBodySize, (failure, text) => {
      if (failure !== undefined) return sendFailure(response, failure)
      const payload = parseJson(text)
      if (payload === invalidJson) return sendFailure(response, badRequest("request body is not JSON"))
      const options = callOptions(
        core.settings,
        request.headers,
        timeoutText
      )
      if (options instanceof Failure) return sendFailure(response, options)
      startSoon(() => {
        if (response.destroyed) return // the client left before the call started
        const onFailure = core.failureFor(endpoint)
        const call = endpoint.method(payload, options as ClientOptions | undefined) as Effect.Effect<unknown, unknown>
        const fiber = runFork(call)
        fiber.addObserver((exit) => {
          if (exit._tag === "Success") return send(response, 200, exit.value)
          const error = Cause.failureOption(exit.cause)
          if (error._tag === "Some") return sendFailure(response, onFailure(error.value))
          // Interrupted (the client went away: nobody to answer) or a defect in the gateway.
          send(response, 500, frameworkBody(InternalServerError.of("the call died", "effect-micro.gateway")))
        })
        // A client that goes away cancels its call.
        response.once("close", () => {
          if (!response.writableFinished) fiber.unsafeInterruptAsFork(fiber.id())
        })
      })
    })
    return true
  }
}
