/**
 * The gateway's routes. The call route is the hot path: written with plain functions and `flatMap`/`match`
 * (no `Effect.gen`), the endpoint found in the client cache with a Map lookup, the body read straight from
 * Node's request, JSON encoded with `JSON.stringify`.
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type { RouteNotFound } from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Client } from "../../Client.js"
import * as Dashboard from "../../Dashboard.js"
import type { Description } from "../../Debug.js"
import { ServiceNotFound } from "../../Errors.js"
import type { RouterOptions } from "../../Gateway.js"
import { Registry } from "../../Registry.js"
import { ServerClosing } from "../common/serverClosing.js"
import type { ClientCache, GatewayEndpoint } from "./clients.js"
import * as clients from "./clients.js"
import type { StatusRules } from "./errors.js"
import { badRequest, Failure, failureOf, gatewayId, httpError, notFound } from "./errors.js"
import * as openapi from "./openapi.js"
import * as rateLimit from "./rateLimit.js"
import type { CallSettings } from "./request.js"
import { callOptions, firstQueryValue, invalidJson, parseJson, readBody } from "./request.js"
import { ndjson, runWebSocket, sse, wantsNdjson } from "./streaming.js"

/** Defaults of `RouterOptions` (documented there). */
export const defaults = {
  metadataHeaders: ["x-request-id", "traceparent", "tracestate"],
  maxTimeout: Duration.seconds(60),
  maxBodySize: 1024 * 1024,
  endpointErrorStatus: 422,
  maxServices: 256,
  maxPendingMessages: 256,
  sseHeartbeat: Duration.seconds(15),
  rateLimitMaxClients: 10_000,
  title: "effect-micro gateway"
} as const

const jsonType = "application/json"

const respond = (status: number, body: unknown): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.text(JSON.stringify(body) ?? "null", { status, contentType: jsonType })

const respondFailure = (failure: Failure): HttpServerResponse.HttpServerResponse =>
  respond(failure.status, failure.body)

/** A refusal as the route's answer. */
const refuse = (failure: Failure) => Effect.succeed(respondFailure(failure))

/** How a request reaches an endpoint: by `/{service}/{endpoint}`, or by an alias with extra payload fields. */
interface Target {
  readonly service: string
  readonly endpoint: string
}

/** `"users.Get"` or `"GET /users/:id"` pieces of an alias. */
const parseAlias = (route: string, target: string): { method: string; path: string; target: Target } => {
  const match = /^\s*([A-Za-z]+)\s+(\/\S*)\s*$/.exec(route)
  if (match === null) throw new Error(`gateway alias "${route}": expected "METHOD /path"`)
  const dot = target.lastIndexOf(".")
  if (dot <= 0 || dot === target.length - 1) {
    throw new Error(`gateway alias "${route}": target "${target}" is not "service.Endpoint"`)
  }
  return {
    method: match[1]!.toUpperCase(),
    path: match[2]!,
    target: { service: target.slice(0, dot), endpoint: target.slice(dot + 1) }
  }
}

/** The top-level property types of a request JSON Schema, to read alias params (text) as numbers/booleans. */
const propertyTypes = new WeakMap<GatewayEndpoint, ReadonlyMap<string, string>>()
const typesOf = (endpoint: GatewayEndpoint): ReadonlyMap<string, string> => {
  let types = propertyTypes.get(endpoint)
  if (types === undefined) {
    const map = new Map<string, string>()
    try {
      const schema = JSON.parse(endpoint.description.request) as { properties?: Record<string, { type?: unknown }> }
      for (const [name, property] of Object.entries(schema.properties ?? {})) {
        if (typeof property.type === "string") map.set(name, property.type)
      }
    } catch {
      // No types: params stay text.
    }
    types = map
    propertyTypes.set(endpoint, types)
  }
  return types
}

const coerce = (value: string, type: string | undefined): unknown => {
  if (type === "number" || type === "integer") {
    const number = Number(value)
    return value.trim() === "" || Number.isNaN(number) ? value : number
  }
  if (type === "boolean") return value === "true" ? true : value === "false" ? false : value
  return value
}

/** What the routes share with the layer's fast path (fastPath.ts): the same cache, rules and limiter. */
export interface Core {
  readonly cache: ClientCache
  readonly settings: CallSettings
  readonly allowed: ReadonlySet<string> | undefined
  readonly maxBodySize: number
  readonly limiter: rateLimit.RateLimiter | undefined
  readonly trustProxy: boolean
  readonly nowMillis: () => number
  readonly failureFor: (endpoint: GatewayEndpoint) => (error: unknown) => Failure
  /**
   * Whether a `POST /{a}/{b}` may be an alias rather than a call: the first path segments of POST aliases, or
   * `true` when one starts with a parameter (then every such path goes through the router).
   */
  readonly postAliasPrefixes: ReadonlySet<string> | true
  readonly cors: boolean
}

export const make = (
  options: RouterOptions = {}
): Effect.Effect<HttpApp.Default<never, never>, never, Client | Registry | Scope.Scope> =>
  Effect.map(makeWithCore(options), ({ app }) => app)

export const makeWithCore = (
  options: RouterOptions = {}
): Effect.Effect<{ app: HttpApp.Default<never, never>; core: Core }, never, Client | Registry | Scope.Scope> =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const cache: ClientCache = yield* clients.make({ maxServices: options.maxServices ?? defaults.maxServices })
    const clock = yield* Effect.clock
    const maxBodySize = options.maxBodySize ?? defaults.maxBodySize
    const maxPending = options.maxPendingMessages ?? defaults.maxPendingMessages
    const heartbeatMillis = options.sseHeartbeat === false
      ? 0
      : Duration.toMillis(Duration.decode(options.sseHeartbeat ?? defaults.sseHeartbeat))
    const allowed = options.services === undefined ? undefined : new Set(options.services)
    const settings: CallSettings = {
      metadataHeaders: (options.metadataHeaders ?? defaults.metadataHeaders).map((name) => name.toLowerCase()),
      forwardAuthorization: options.forwardAuthorization ?? true,
      client: options.client,
      maxTimeoutMillis: Duration.toMillis(Duration.decode(options.maxTimeout ?? defaults.maxTimeout))
    }
    const rules: StatusRules = {
      overrides: new Map(Object.entries(options.errorStatus ?? {})),
      fallback: options.endpointErrorStatus ?? defaults.endpointErrorStatus
    }
    /** A streamed reply as SSE or NDJSON, ended early if the server serving it starts to close. */
    const streamed = (
      replies: Stream.Stream<unknown, unknown>,
      onFailure: (error: unknown) => Failure,
      accept: string | undefined
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
      Effect.map(
        ServerClosing,
        (closing) =>
          wantsNdjson(accept) ? ndjson(replies, onFailure, closing) : sse(replies, onFailure, heartbeatMillis, closing)
      )

    // ----- finding the endpoint -----

    /** The endpoint, from the cache; a missing one makes the service be described again once. */
    const withEndpoint = (
      target: Target,
      use: (endpoint: GatewayEndpoint) => Effect.Effect<HttpServerResponse.HttpServerResponse>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
      if (allowed !== undefined && !allowed.has(target.service)) return refuse(serviceNotFound(target.service))
      const cached = cache.peek(target.service)
      if (cached !== undefined) {
        const endpoint = cached.endpoints.get(target.endpoint)
        if (endpoint !== undefined) return use(endpoint)
        cache.invalidate(target.service, cached)
      }
      return Effect.matchEffect(cache.get(target.service), {
        onFailure: (error) => refuse(failureOf(error, noStatuses, rules)),
        onSuccess: (entry) => {
          const endpoint = entry.endpoints.get(target.endpoint)
          if (endpoint !== undefined) return use(endpoint)
          const known = [...entry.endpoints.keys()].join(", ")
          return refuse(notFound(`service ${target.service} has no endpoint ${target.endpoint} (it has: ${known})`))
        }
      })
    }

    /** The failure of a call; a server that no longer knows the endpoint drops the cached description. */
    const failureFor = (endpoint: GatewayEndpoint) => (error: unknown): Failure => {
      const failure = failureOf(error, endpoint.errorStatus, rules)
      if (failure.status === 404 && (error as { _tag?: unknown })._tag === "NotFound") {
        const cached = cache.peek(endpoint.service)
        if (cached?.endpoints.get(endpoint.description.name) === endpoint) cache.invalidate(endpoint.service, cached)
      }
      return failure
    }

    // ----- calls over HTTP -----

    /** Runs the call of a request whose payload is known; the reply's form follows the endpoint's shape. */
    const callWith = (
      request: HttpServerRequest.HttpServerRequest,
      endpoint: GatewayEndpoint,
      payload: unknown,
      query: Readonly<Record<string, string | ReadonlyArray<string>>>
    ): Effect.Effect<HttpServerResponse.HttpServerResponse> => {
      const headers = request.headers
      const callOpts = callOptions(settings, headers, firstQueryValue(query.timeout))
      if (callOpts instanceof Failure) return refuse(callOpts)
      const { method } = endpoint
      const onFailure = failureFor(endpoint)
      switch (endpoint.description.shape) {
        case "unary":
          return Effect.match(method(payload, callOpts) as Effect.Effect<unknown, unknown>, {
            onFailure: (error) => respondFailure(onFailure(error)),
            onSuccess: (value) => respond(200, value)
          })
        case "server-stream": {
          const replies = method(payload, callOpts) as Stream.Stream<unknown, unknown>
          return streamed(replies, onFailure, headers["accept"])
        }
        case "client-stream":
        case "bidi": {
          if (!Array.isArray(payload)) {
            return refuse(badRequest(
              `${endpoint.service}.${endpoint.description.name} takes a stream: POST a JSON array of its messages, or use a WebSocket`
            ))
          }
          const input = Stream.fromIterable(payload as ReadonlyArray<unknown>)
          if (endpoint.description.shape === "client-stream") {
            return Effect.match(method(input, callOpts) as Effect.Effect<unknown, unknown>, {
              onFailure: (error) => respondFailure(onFailure(error)),
              onSuccess: (value) => respond(200, value)
            })
          }
          const replies = method(input, callOpts) as Stream.Stream<unknown, unknown>
          return streamed(replies, onFailure, headers["accept"])
        }
      }
    }

    const callRoute = (
      request: HttpServerRequest.HttpServerRequest,
      target: Target,
      query: Readonly<Record<string, string | ReadonlyArray<string>>>
    ) =>
      withEndpoint(target, (endpoint) =>
        Effect.matchEffect(readBody(request, maxBodySize), {
          onFailure: refuse,
          onSuccess: (text) => {
            const payload = parseJson(text)
            if (payload === invalidJson) return refuse(badRequest("request body is not JSON"))
            return callWith(request, endpoint, payload, query)
          }
        }))

    /** `POST /:service/:endpoint`. */
    const postRoute = Effect.contextWithEffect((
      context: Context.Context<
        HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext | HttpServerRequest.ParsedSearchParams
      >
    ) => {
      const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
      const params = Context.unsafeGet(context, HttpRouter.RouteContext).params
      return callRoute(
        request,
        { service: params.service!, endpoint: params.endpoint! },
        Context.unsafeGet(context, HttpServerRequest.ParsedSearchParams)
      )
    })

    /** An alias: the payload is the body's object merged with the query and the path params. */
    const aliasRoute = (target: Target, hasBody: boolean) =>
      Effect.contextWithEffect((
        context: Context.Context<
          HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext | HttpServerRequest.ParsedSearchParams
        >
      ) => {
        const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
        const params = Context.unsafeGet(context, HttpRouter.RouteContext).params
        const query = Context.unsafeGet(context, HttpServerRequest.ParsedSearchParams)
        return withEndpoint(target, (endpoint) =>
          Effect.matchEffect(hasBody ? readBody(request, maxBodySize) : Effect.succeed(""), {
            onFailure: refuse,
            onSuccess: (text) => {
              const body = parseJson(text)
              if (body === invalidJson) {
                return refuse(badRequest("request body is not JSON"))
              }
              if (typeof body !== "object" || body === null || Array.isArray(body)) {
                return refuse(badRequest("an alias takes a JSON object body (merged with the query and path params)"))
              }
              const types = typesOf(endpoint)
              const payload: Record<string, unknown> = { ...body }
              for (const [name, value] of Object.entries(query)) {
                if (name === "timeout") {
                  continue
                }
                payload[name] = typeof value === "string"
                  ? coerce(value, types.get(name))
                  : value.map((item) =>
                    coerce(item, undefined)
                  )
              }
              for (const [name, value] of Object.entries(params)) {
                if (value !== undefined) payload[name] = coerce(value, types.get(name))
              }
              return callWith(request, endpoint, payload, query)
            }
          }))
      })

    // ----- calls over WebSocket -----

    /** `GET /:service/:endpoint`: a WebSocket call (any shape). */
    const webSocketRoute = Effect.contextWithEffect((
      context: Context.Context<
        HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext | HttpServerRequest.ParsedSearchParams
      >
    ) => {
      const request = Context.unsafeGet(context, HttpServerRequest.HttpServerRequest)
      const params = Context.unsafeGet(context, HttpRouter.RouteContext).params
      const query = Context.unsafeGet(context, HttpServerRequest.ParsedSearchParams)
      const headers = request.headers
      if (headers["upgrade"]?.toLowerCase() !== "websocket") {
        return Effect.succeed(
          HttpServerResponse.setHeader(
            respondFailure(httpError(405, "Method Not Allowed", "call with POST, or GET with a WebSocket upgrade")),
            "allow",
            "POST"
          )
        )
      }
      const target = { service: params.service!, endpoint: params.endpoint! }
      return withEndpoint(target, (endpoint) => {
        // Browsers cannot set headers on a WebSocket: `?access_token=` is the bearer token (RFC 6750 §2.3).
        const callOpts = callOptions(
          settings,
          headers,
          firstQueryValue(query.timeout),
          firstQueryValue(query.access_token)
        )
        if (callOpts instanceof Failure) return refuse(callOpts)
        const { method } = endpoint
        const shape = endpoint.description.shape
        const replies = (input: unknown): Stream.Stream<unknown, unknown> =>
          shape === "unary" || shape === "client-stream"
            ? Stream.fromEffect(method(input, callOpts) as Effect.Effect<unknown, unknown>)
            : method(input, callOpts) as Stream.Stream<unknown, unknown>
        return Effect.zip(request.upgrade, ServerClosing).pipe(
          Effect.flatMap(([socket, closing]) =>
            runWebSocket(
              socket,
              shape === "unary" || shape === "server-stream"
                ? { input: "single", run: replies }
                : { input: "stream", run: replies },
              failureFor(endpoint),
              maxPending,
              closing
            )
          ),
          Effect.as(HttpServerResponse.empty()),
          Effect.catchAll(() => refuse(badRequest("WebSocket upgrade failed")))
        )
      })
    })

    // ----- OpenAPI and docs -----

    const descriptions: Effect.Effect<{ found: Array<Description>; unavailable: Array<string> }> = Effect.gen(
      function*() {
        const names = allowed !== undefined
          ? [...allowed]
          : [
            ...new Set(
              (yield* Effect.orElseSucceed(registry.listServices, () => []))
                // Servers advertise their describe digest; other entries (broker subscriptions) are not services.
                .filter((service) => service.nodes.some((node) => node.metadata["describe"] !== undefined))
                .map((service) => service.name)
            )
          ]
        const found: Array<Description> = []
        const unavailable: Array<string> = []
        yield* Effect.forEach(names, (name) =>
          Effect.match(cache.get(name), {
            onFailure: () => unavailable.push(name),
            onSuccess: (entry) => found.push(entry.description)
          }), { concurrency: 8, discard: true })
        return { found, unavailable }
      }
    )
    const openApiOptions = options.openApi === false ? undefined : options.openApi
    const title = openApiOptions?.title ?? defaults.title
    const documentOptions: openapi.DocumentOptions = {
      title,
      version: openApiOptions?.version ?? "1.0.0",
      endpointErrorStatus: rules.fallback,
      errorStatus: rules.overrides
    }

    let router: HttpRouter.HttpRouter<never, HttpServerRequest.ParsedSearchParams> = HttpRouter.empty
    let postAliasPrefixes: Set<string> | true = new Set()
    for (const [route, targetText] of Object.entries(options.aliases ?? {})) {
      const alias = parseAlias(route, targetText)
      if (alias.method === "POST" && postAliasPrefixes !== true) {
        const first = alias.path.split("/")[1] ?? ""
        if (first.startsWith(":") || first.startsWith("*")) postAliasPrefixes = true
        else postAliasPrefixes.add(first)
      }
      const hasBody = alias.method !== "GET" && alias.method !== "HEAD" && alias.method !== "DELETE"
      router = HttpRouter.route(alias.method as "GET")(
        router,
        alias.path as HttpRouter.PathInput,
        aliasRoute(alias.target, hasBody)
      )
    }
    for (const [prefix, mounted] of Object.entries(options.mounts ?? {})) {
      const answered: HttpApp.Default<never, never> = Effect.catchAll(mounted, (error) =>
        refuse(
          (error as { _tag?: unknown } | null)?._tag === "RouteNotFound"
            ? notFound(`no route under ${prefix}`)
            : httpError(500, "Internal Server Error", `${prefix}: the mounted app failed`)
        ))
      router = HttpRouter.mountApp(router, prefix as `/${string}`, answered)
      // A POST under a mount is the mounted app's, never a call (the fast path stands aside).
      const first = prefix.split("/")[1] ?? ""
      if (postAliasPrefixes !== true) postAliasPrefixes.add(first)
    }
    if (options.openApi !== false) {
      router = HttpRouter.get(
        router,
        "/openapi.json",
        Effect.map(descriptions, ({ found }) => respond(200, openapi.document(found, documentOptions)))
      )
    }
    if (options.docs !== false) {
      router = HttpRouter.get(
        router,
        "/docs",
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) =>
            Effect.map(descriptions, ({ found, unavailable }) =>
              HttpServerResponse.html(
                openapi.docsPage(found, title, unavailable, request.headers["host"] ?? "localhost")
              ))
        )
      )
    }
    router = HttpRouter.post(router, "/:service/:endpoint", postRoute)
    router = HttpRouter.get(router, "/:service/:endpoint", webSocketRoute)
    if (options.dashboard !== undefined && options.dashboard !== false) {
      // Its routes under /ui are static or longer, so they win over /:service/:endpoint. It needs the Registry
      // and Client this router already requires (the cast below drops them from the type, as for ours).
      router = HttpRouter.mount(
        router,
        "/ui",
        Dashboard.make(options.dashboard === true ? {} : options.dashboard) as unknown as HttpRouter.HttpRouter<
          never,
          HttpServerRequest.ParsedSearchParams
        >
      )
    }

    // The router provides ParsedSearchParams to its routes (its types do not say so).
    let app: HttpApp.Default<never, never> = Effect.catchTag(
      router as unknown as HttpApp.Default<RouteNotFound>,
      "RouteNotFound",
      (error) => Effect.succeed(respondFailure(notFound(`no route ${error.request.method} ${error.request.url}`)))
    )

    const limiter = options.rateLimit === undefined || options.rateLimit === false
      ? undefined
      : rateLimit.make({
        ratePerSecond: options.rateLimit.ratePerSecond,
        burst: options.rateLimit.burst ?? Math.max(1, options.rateLimit.ratePerSecond),
        maxClients: options.rateLimit.maxClients ?? defaults.rateLimitMaxClients
      })
    const trustProxy = options.trustProxy ?? false
    if (limiter !== undefined) {
      const inner = app
      app = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
        const wait = limiter.take(clientKey(request, trustProxy), clock.unsafeCurrentTimeMillis())
        if (wait === 0) {
          return inner
        }
        return Effect.succeed(
          HttpServerResponse.setHeader(
            respondFailure(rateLimited(wait)),
            "retry-after",
            String(wait)
          )
        )
      })
    }

    if (options.cors !== undefined && options.cors !== false) {
      const cors = options.cors === true ? {} : options.cors
      app = HttpMiddleware.cors({
        allowedOrigins: cors.allowedOrigins ?? ["*"],
        allowedMethods: cors.allowedMethods ?? ["GET", "POST", "OPTIONS"],
        ...(cors.allowedHeaders === undefined ? {} : { allowedHeaders: cors.allowedHeaders }),
        exposedHeaders: cors.exposedHeaders ?? ["retry-after"],
        ...(cors.maxAge === undefined ? {} : { maxAge: cors.maxAge }),
        ...(cors.credentials === undefined ? {} : { credentials: cors.credentials })
      })(app)
    }
    const core: Core = {
      cache,
      settings,
      allowed,
      maxBodySize,
      limiter,
      trustProxy,
      nowMillis: () => clock.unsafeCurrentTimeMillis(),
      failureFor,
      postAliasPrefixes,
      cors: options.cors !== undefined && options.cors !== false
    }
    return { app, core }
  })

const noStatuses: ReadonlyMap<string, number> = new Map()

/** What a gateway that does not expose a service answers: the client's error for an unknown service. */
const serviceNotFound = (service: string): Failure =>
  failureOf(ServiceNotFound.of(`service ${service} not found`, gatewayId), noStatuses, {
    overrides: noStatuses,
    fallback: 404
  })

/** The client's address: the socket's, or the first `X-Forwarded-For` entry behind a trusted proxy. */
const clientKey = (request: HttpServerRequest.HttpServerRequest, trustProxy: boolean): string => {
  const address = request.remoteAddress
  return clientKeyOf(
    trustProxy ? request.headers["x-forwarded-for"] : undefined,
    address._tag === "Some" ? address.value : undefined
  )
}

/** The rate limiter's key from `X-Forwarded-For` (when trusted) or the socket's address. */
export const clientKeyOf = (forwarded: string | undefined, remoteAddress: string | undefined): string => {
  if (forwarded !== undefined) {
    const comma = forwarded.indexOf(",")
    return (comma === -1 ? forwarded : forwarded.slice(0, comma)).trim()
  }
  return remoteAddress ?? "unknown"
}

/** The 429 body and its Retry-After. */
export const rateLimited = (wait: number): Failure =>
  httpError(429, "Too Many Requests", `rate limited; retry in ${wait} s`)
