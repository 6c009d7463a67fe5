/**
 * The HTTP API gateway: any HTTP client reaches any service with plain JSON (go-micro's `micro api`,
 * moleculer-web). See docs/gateway.md.
 *
 * - `POST /{service}/{endpoint}` with a JSON body: a call through the normal client (resolve, balance, retry),
 *   JSON reply. Server-streaming endpoints answer as Server-Sent Events (or NDJSON with
 *   `Accept: application/x-ndjson`); client-streaming and bidi endpoints take a JSON array of messages.
 * - `GET /{service}/{endpoint}` upgraded to a WebSocket: any call shape, one JSON message per text frame
 *   both ways; an empty text frame ends the client's side (half-close).
 * - `GET /openapi.json` (OpenAPI 3.1 from the services' `Debug.Describe` answers) and `GET /docs`.
 * - Route aliases (`{ "GET /users/:id": "users.Get" }`), CORS, a body limit, per-client rate limiting.
 *
 * ```ts
 * const Main = Gateway.layer({ port: 8080 }).pipe(Layer.provide(Client.layer()), Layer.provide(Defaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type { ServeError } from "@effect/platform/HttpServerError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Client, ClientOptions } from "./Client.js"
import type { DashboardOptions } from "./Dashboard.js"
import type { Registry } from "./Registry.js"

// The HTTP machinery (@effect/platform's router, platform-node's server, ws) is loaded when a gateway is
// built, not when the package is imported: importing it eagerly cost every user of the barrel ≈ 20 MB RSS
// and ≈ 150 ms of start-up (measured).
const loadRouter = Effect.promise(() => import("./internal/gateway/router.js"))
const loadServer = Effect.promise(() => import("./internal/gateway/server.js"))

/**
 * CORS, through the platform's `HttpMiddleware.cors`: preflight `OPTIONS` answered, headers added to replies.
 * @since 0.1.0
 * @category models
 */
export interface CorsOptions {
  /** Origins allowed. Default: any (`*`). */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
  /** Methods allowed. Default: GET, POST, OPTIONS. */
  readonly allowedMethods?: ReadonlyArray<string> | undefined
  /** Request headers allowed. Default: any the preflight asks for. */
  readonly allowedHeaders?: ReadonlyArray<string> | undefined
  /** Response headers exposed to scripts. Default: `retry-after`. */
  readonly exposedHeaders?: ReadonlyArray<string> | undefined
  /** Seconds a preflight may be cached. Default: not sent. */
  readonly maxAge?: number | undefined
  /** Allow credentials (cookies, `Authorization`). Default false. */
  readonly credentials?: boolean | undefined
}

/**
 * Per-client token buckets, keyed by the client's IP address (the socket's, or the first
 * `X-Forwarded-For` entry with `trustProxy`). A refused request gets 429 with `Retry-After` (seconds).
 * @since 0.1.0
 * @category models
 */
export interface RateLimitOptions {
  /** Tokens added per second (the sustained rate). Required. */
  readonly ratePerSecond: number
  /** Bucket size: requests a client may make at once. Default: `ratePerSecond` (one second's worth). */
  readonly burst?: number | undefined
  /** Clients tracked at most (memory bound; idle buckets are dropped first). Default 10 000. */
  readonly maxClients?: number | undefined
}

/**
 * Options of `router` (the routes and their behaviour).
 * @since 0.1.0
 * @category models
 */
export interface RouterOptions {
  /**
   * The services exposed (calls to others answer 404 ServiceNotFound; OpenAPI lists these). Default: every
   * service in the registry.
   */
  readonly services?: ReadonlyArray<string> | undefined
  /**
   * Request headers copied into the call's metadata (lower-case names). Default:
   * `["x-request-id", "traceparent", "tracestate"]`.
   */
  readonly metadataHeaders?: ReadonlyArray<string> | undefined
  /**
   * Pass `Authorization: Bearer …` on as the call's `authorization` metadata, so the services' auth rules
   * (AuthMiddleware) apply to the HTTP caller's token. Default true.
   */
  readonly forwardAuthorization?: boolean | undefined
  /** Call options of every call (retry, filter …; the client runtime's defaults otherwise). Default: none. */
  readonly client?: ClientOptions | undefined
  /**
   * Longest deadline a request may ask for with `X-Micro-Timeout` or `?timeout=` (`500ms`, `2s`, `1m` or
   * milliseconds); longer asks are capped. Default 60 s. Without either, the client's timeout applies (5 s
   * for unary calls).
   */
  readonly maxTimeout?: Duration.DurationInput | undefined
  /** Largest request body in bytes; larger ones answer 413. Default 1 MiB. */
  readonly maxBodySize?: number | undefined
  /** CORS; `true` for the defaults of `CorsOptions`. Default: off (no CORS headers). */
  readonly cors?: CorsOptions | boolean | undefined
  /** Per-client rate limiting. Default: off. */
  readonly rateLimit?: RateLimitOptions | false | undefined
  /** Take the client's IP from `X-Forwarded-For` (behind a trusted proxy). Default false. */
  readonly trustProxy?: boolean | undefined
  /**
   * Route aliases, moleculer-web style: `{ "GET /users/:id": "users.Get" }` (method, path with `:params`, and
   * `service.Endpoint`). The payload is the JSON body (an object) merged with the query string and the path
   * params (path params win). Unary and server-streaming endpoints. Default: none.
   */
  readonly aliases?: Readonly<Record<string, string>> | undefined
  /**
   * HTTP status of endpoint errors by `_tag`, over what the contract declares
   * (`HttpApiSchema.annotations({ status })` on the error class). Default: none.
   */
  readonly errorStatus?: Readonly<Record<string, number>> | undefined
  /** HTTP status of an endpoint error that declares none. Default 422. */
  readonly endpointErrorStatus?: number | undefined
  /** Dynamic clients (one per service) kept at most. Default 256. */
  readonly maxServices?: number | undefined
  /** Serve `/openapi.json`; `info` fields of the document. Default: on, title "effect-micro gateway". */
  readonly openApi?: { readonly title?: string | undefined; readonly version?: string | undefined } | false | undefined
  /**
   * Apps served by the gateway under a path prefix, before its own routes: `{ "/ui": dashboard }` (an
   * `HttpApp`, e.g. an `HttpRouter`; it sees the path without the prefix; its failures answer 404 for a
   * `RouteNotFound`, else 500). Default: none.
   */
  readonly mounts?: Readonly<Record<`/${string}`, HttpApp.Default<unknown, never>>> | undefined
  /** Serve the `/docs` page. Default true. */
  readonly docs?: boolean | undefined
  /**
   * Serve the web dashboard (`Dashboard.make`) at `/ui`, its call form posting to this gateway's call route;
   * `true` for the dashboard's defaults. It shows the whole registry and has no auth of its own (see
   * docs/dashboard.md). Topic tails use the `Broker` of the gateway's context when there is one. Default: off.
   */
  readonly dashboard?: DashboardOptions | boolean | undefined
  /**
   * An SSE comment (`: ping`) sent on a streamed reply this often, so proxies that close quiet connections
   * keep slow streams open; `false` for none. Default 15 s.
   */
  readonly sseHeartbeat?: Duration.DurationInput | false | undefined
  /**
   * WebSocket calls: client messages buffered before the call takes them; a client sending faster than the
   * service consumes beyond this is closed with 1008. Default 256.
   */
  readonly maxPendingMessages?: number | undefined
}

/**
 * Options of `layer`: the routes plus the Node HTTP server's.
 * @since 0.1.0
 * @category models
 */
export interface GatewayOptions extends RouterOptions {
  /** Port; 0 picks a free one (read it from the `Gateway` service). Default 8080. */
  readonly port?: number | undefined
  /** Address to listen on. Default "0.0.0.0". */
  readonly host?: string | undefined
  /**
   * Time to receive a request's headers (Node `headersTimeout`); then 408 and the connection closes. Default
   * 10 s. Node checks both timeouts every half of the shorter one (at least every second).
   */
  readonly headersTimeout?: Duration.DurationInput | undefined
  /** Time to receive a whole request (Node `requestTimeout`); then 408. Default 30 s. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Idle keep-alive connections are closed after this (Node `keepAliveTimeout`). Default 5 s. */
  readonly keepAliveTimeout?: Duration.DurationInput | undefined
  /** Connections at most (Node `maxConnections`; more are refused). Default 10 000. */
  readonly maxConnections?: number | undefined
  /** An Effect span per HTTP request (@effect/platform's tracer). Default false (cost on every request). */
  readonly tracing?: boolean | undefined
}

/**
 * @since 0.1.0
 */
export declare namespace Gateway {
  /**
   * A running gateway.
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Where it listens. */
    readonly host: string
    readonly port: number
  }
}

/**
 * The running gateway of `layer` (its address).
 * @since 0.1.0
 * @category tags
 */
export class Gateway extends Context.Tag("effect-micro/Gateway")<Gateway, Gateway.Service>() {}

/**
 * The gateway's routes as an `HttpApp`, for a server of your own (serve it, or mount it with
 * `HttpRouter.mountApp`). Its dynamic clients live in the scope.
 * @since 0.1.0
 * @category constructors
 */
export const router = (
  options?: RouterOptions
): Effect.Effect<HttpApp.Default<never, never>, never, Client | Registry | Scope.Scope> =>
  Effect.flatMap(loadRouter, (internal) => internal.make(options))

/**
 * The gateway on a Node HTTP server at `{ host, port }`, closed with the layer's scope.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: GatewayOptions): Layer.Layer<Gateway, ServeError, Client | Registry> =>
  Layer.scoped(Gateway, Effect.flatMap(loadServer, (internal) => internal.make(options ?? {})))
