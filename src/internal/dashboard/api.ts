/**
 * The dashboard's data API (`api/*` under wherever the router is mounted): what the page reads, as JSON, and
 * its two live views as server-sent events. Everything is read through the public Tags (Registry, Client,
 * Broker) of the process that mounts the router, so it sees the system as that process' clients do.
 *
 * Limits: per-node probes (health, stats) run at most `probeConcurrency` at a time, each bounded by
 * `probeTimeout`. A slow browser never grows memory: a registry stream buffers at most `tailBuffer` changes
 * (the oldest are dropped; the periodic full list repairs them), a topic tail (one broker subscription) at
 * most `tailBuffer` messages (the oldest are dropped: `seq` shows the gap), bodies cut to `tailBodyLimit`
 * bytes; at most `maxTails` tails are open at once per router (503 beyond). `node=` query parameters must
 * name a node the registry lists for that service, so the API never dials an address a browser made up. The
 * Broker is optional: without one in the serving process, tails answer 503.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Broker, type BrokerError, type Message } from "../../Broker.js"
import * as Client from "../../Client.js"
import type { EndpointDescription } from "../../Debug.js"
import { isMicroError, ServiceNotFound } from "../../Errors.js"
import { type Event, type Node, Registry, type RegistryError, type Service } from "../../Registry.js"
import { errorMessage, randomId } from "../common/text.js"
import * as sse from "./sse.js"

/** The dashboard's options with their defaults applied (see `DashboardOptions` for each). */
export interface Settings {
  readonly callPrefix: string
  readonly title: string
  readonly probeTimeout: Duration.Duration
  readonly probeConcurrency: number
  readonly refreshInterval: Duration.Duration
  readonly heartbeat: Duration.Duration
  readonly maxTails: number
  readonly tailBuffer: number
  readonly tailBodyLimit: number
}

/** The error body of every failed API request: go-micro's fields, as the gateway's error replies have. */
export interface ErrorBody {
  readonly _tag: string
  readonly id: string
  readonly code: number
  readonly detail: string
  readonly status: string
}

const errorId = "effect-micro.dashboard"

const failure = (status: number, body: ErrorBody) => HttpServerResponse.unsafeJson(body, { status })

const problem = (code: number, status: string, detail: string, tag = "DashboardError") =>
  failure(code, { _tag: tag, id: errorId, code, detail, status })

/** A framework error keeps its own code (as HTTP status when it is one), fields and tag. */
const errorBodyOf = (error: unknown): { readonly status: number; readonly body: ErrorBody } => {
  if (isMicroError(error)) {
    const { _tag, code, detail, id, status } = error
    return { status: code >= 400 && code <= 599 ? code : 502, body: { _tag, id, code, detail, status } }
  }
  const tagged = error as { readonly _tag?: unknown }
  if (tagged?._tag === "RegistryError" || tagged?._tag === "BrokerError") {
    const reason = (error as RegistryError | BrokerError).reason
    return {
      status: 503,
      body: { _tag: tagged._tag, id: errorId, code: 503, detail: errorMessage(error), status: reason }
    }
  }
  return {
    status: 500,
    body: { _tag: "InternalServerError", id: errorId, code: 500, detail: errorMessage(error), status: "Internal" }
  }
}

const errorResponse = (error: unknown) => {
  const { body, status } = errorBodyOf(error)
  return failure(status, body)
}

/**
 * The HTTP broker advertises each subscription as a registry entry whose nodes carry `broker` metadata; those
 * nodes take POSTed messages, not RPC (no Debug endpoints to ask). Same test as the CLI's `services`.
 */
const isSubscription = (node: Node): boolean => node.metadata.broker !== undefined

/** A registry entry as the page shows it. */
export const serviceJson = (service: Service) => ({
  name: service.name,
  version: service.version,
  kind: service.nodes.some(isSubscription) ? "subscription" as const : "service" as const,
  metadata: service.metadata,
  endpoints: service.endpoints,
  nodes: service.nodes.map((node) => ({ id: node.id, address: node.address, metadata: node.metadata }))
})

const byNameAndVersion = (a: Service, b: Service) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version)

const listJson = (services: ReadonlyArray<Service>) => [...services].sort(byNameAndVersion).map(serviceJson)

/** The JSON Schemas of a description, parsed (`Debug.Describe` carries them as JSON text). */
const endpointJson = (endpoint: EndpointDescription) => ({
  name: endpoint.name,
  shape: endpoint.shape,
  idempotent: endpoint.idempotent,
  request: parseSchema(endpoint.request),
  response: parseSchema(endpoint.response),
  error: parseSchema(endpoint.error)
})

const parseSchema = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return { description: `unreadable JSON Schema: ${text.slice(0, 200)}` }
  }
}

const routeParam = (name: string) => Effect.map(HttpRouter.params, (params) => params[name] ?? "")

const queryParam = (name: string) =>
  Effect.map(HttpServerRequest.ParsedSearchParams, (params) => {
    const value = params[name]
    return Array.isArray(value) ? value[0] : value
  })

/** Every node of `name` that answers RPC (all versions), or ServiceNotFound. */
const rpcNodes = (name: string) =>
  Effect.flatMap(Registry, (registry) => registry.getService(name)).pipe(
    Effect.map((versions) =>
      versions.flatMap((service) =>
        service.nodes.filter((node) => !isSubscription(node)).map((node) => ({ version: service.version, node }))
      )
    )
  )

/** The `node` query parameter, checked against the registry: undefined when absent. */
const chosenNode = (name: string) =>
  Effect.flatMap(
    queryParam("node"),
    (node) =>
      node === undefined || node === "" ?
        Effect.succeed(undefined) :
        Effect.flatMap(rpcNodes(name), (nodes) =>
          nodes.some((entry) => entry.node.address === node)
            ? Effect.succeed(node)
            : Effect.fail(ServiceNotFound.of(`service ${name} has no node at ${node}`, errorId)))
  )

/** Asks every RPC node of the service, `probeConcurrency` at a time; each answer or error is reported. */
const perNode = <A>(
  settings: Settings,
  ask: (name: string, options: Client.ClientOptions) => Effect.Effect<A, unknown, Client.Client>
) =>
  Effect.gen(function*() {
    const name = yield* routeParam("name")
    const nodes = yield* rpcNodes(name)
    const results = yield* Effect.forEach(
      nodes,
      ({ node, version }) =>
        Effect.map(Effect.either(ask(name, { node: node.address, timeout: settings.probeTimeout })), (result) =>
          Either.match(result, {
            onLeft: (error) => ({
              id: node.id,
              address: node.address,
              version,
              ok: false as const,
              error: errorBodyOf(error).body
            }),
            onRight: (value) => ({ id: node.id, address: node.address, version, ok: true as const, value })
          })),
      { concurrency: settings.probeConcurrency }
    )
    return HttpServerResponse.unsafeJson(results)
  }).pipe(Effect.catchAll(errorResponse))

/**
 * Registry changes as SSE: `services` (the whole list) first, again after every `refreshInterval` (which heals
 * a change missed between the first list and the start of the watch), and `change` ({type, service}) for
 * each watch event. A broken watch sends `error` and ends the stream; EventSource then reconnects.
 */
const registryEvents = (settings: Settings) =>
  Effect.flatMap(Registry, (registry) => {
    const list = Effect.map(registry.listServices, (services) => sse.event("services", listJson(services)))
    // Watches are unbounded PubSubs: a sliding buffer keeps a stalled browser from growing one (the next
    // `services` list repairs what it dropped).
    const changes = registry.watch().pipe(
      Stream.buffer({ capacity: settings.tailBuffer, strategy: "sliding" }),
      Stream.map((event: Event) => sse.event("change", { type: event.type, service: serviceJson(event.service) }))
    )
    const refreshes = Stream.fromSchedule(Schedule.spaced(settings.refreshInterval)).pipe(Stream.mapEffect(() => list))
    const events = Stream.concat(Stream.fromEffect(list), Stream.merge(changes, refreshes)).pipe(
      Stream.catchAll((error) => Stream.make(sse.event("error", errorBodyOf(error).body)))
    )
    return sse.response(events, settings.heartbeat)
  })

/** Topic names as the brokers take them: no spaces or control characters, bounded. */
const topicPattern = /^[\x21-\x7e]{1,200}$/

/** One tailed message as the page shows it. */
interface TailedMessage {
  readonly seq: number
  readonly receivedAt: number
  readonly topic: string
  readonly contentType: string
  readonly headers: Readonly<Record<string, string>>
  readonly size: number
  readonly encoding: "utf8" | "base64"
  readonly body: string
  readonly truncated: boolean
}

/** The body as text when it is UTF-8 (its first `limit` bytes), else base64 of them. */
const bodyOf = (body: Uint8Array, limit: number): Pick<TailedMessage, "encoding" | "body" | "truncated"> => {
  const shown = body.length > limit ? body.subarray(0, limit) : body
  const truncated = shown.length < body.length
  try {
    // `stream: true` keeps a multi-byte character cut by the limit from counting as invalid UTF-8.
    const text = new TextDecoder("utf-8", { fatal: true }).decode(shown, { stream: truncated })
    return { encoding: "utf8", body: text, truncated }
  } catch {
    return { encoding: "base64", body: Buffer.from(shown).toString("base64"), truncated }
  }
}

/**
 * A live tail of one topic as SSE: `subscribed` ({topic, queue}) once the subscription is up, then one
 * `message` per message. The subscription uses a queue group of its own, so the tail gets a copy of every
 * message without taking any from the topic's real subscribers (who are in their own groups, or none). It is
 * made in the request's scope: it ends when the browser goes away.
 */
const tail = (settings: Settings, open: { count: number }) =>
  Effect.gen(function*() {
    const topic = yield* routeParam("topic")
    if (!topicPattern.test(topic)) {
      return problem(400, "Bad Request", "a topic is 1 to 200 printable characters without spaces", "BadRequest")
    }
    if (open.count >= settings.maxTails) {
      return problem(503, "Too Many Tails", `at most ${settings.maxTails} topic tails may be open at once`)
    }
    const found = yield* Effect.serviceOption(Broker)
    if (Option.isNone(found)) {
      return problem(503, "No Broker", "this process has no Broker: provide one to tail topics", "BrokerError")
    }
    const broker = found.value
    yield* Effect.acquireRelease(Effect.sync(() => open.count++), () => Effect.sync(() => open.count--))
    const messages = yield* Effect.acquireRelease(Queue.sliding<TailedMessage>(settings.tailBuffer), Queue.shutdown)
    let seq = 0
    const queue = `micro-dashboard-${randomId()}`
    yield* broker.subscribe(topic, (message: Message) =>
      Effect.flatMap(Clock.currentTimeMillis, (receivedAt) =>
        Queue.offer(messages, {
          seq: ++seq,
          receivedAt,
          topic: message.topic,
          contentType: message.contentType,
          headers: message.headers,
          size: message.body.length,
          ...bodyOf(message.body, settings.tailBodyLimit)
        })), { queue })
    const events = Stream.concat(
      Stream.make(sse.event("subscribed", { topic, queue })),
      Stream.map(Stream.fromQueue(messages), (message) =>
        sse.event("message", message))
    )
    return yield* sse.response(events, settings.heartbeat)
  }).pipe(Effect.catchAll(errorResponse))

const notFound = Effect.map(
  HttpServerRequest.HttpServerRequest,
  (request) => problem(404, "Not Found", `no dashboard API at ${request.url}`, "NotFound")
)

/** The API routes, relative to the router's mount point. */
export const routes = (settings: Settings) => {
  const open = { count: 0 }
  return HttpRouter.empty.pipe(
    HttpRouter.get(
      "/api/services",
      Effect.flatMap(Registry, (registry) => registry.listServices).pipe(
        Effect.map((services) => HttpServerResponse.unsafeJson(listJson(services))),
        Effect.catchAll(errorResponse)
      )
    ),
    HttpRouter.get(
      "/api/services/:name",
      Effect.flatMap(routeParam("name"), (name) => Effect.flatMap(Registry, (registry) => registry.getService(name)))
        .pipe(
          Effect.map((services) => HttpServerResponse.unsafeJson(listJson(services))),
          Effect.catchAll(errorResponse)
        )
    ),
    HttpRouter.get(
      "/api/services/:name/describe",
      Effect.gen(function*() {
        const name = yield* routeParam("name")
        const node = yield* chosenNode(name)
        const description = yield* Client.describe(name, {
          timeout: settings.probeTimeout,
          ...(node === undefined ? {} : { node })
        })
        return HttpServerResponse.unsafeJson({
          service: description.service,
          version: description.version,
          digest: description.digest,
          endpoints: description.endpoints.map(endpointJson)
        })
      }).pipe(Effect.catchAll(errorResponse))
    ),
    HttpRouter.get("/api/services/:name/health", perNode(settings, Client.health)),
    HttpRouter.get("/api/services/:name/stats", perNode(settings, Client.stats)),
    HttpRouter.get("/api/registry", registryEvents(settings)),
    HttpRouter.get("/api/topics/:topic", tail(settings, open)),
    HttpRouter.all("/api/*", notFound)
  )
}

/** Default settings (documented on `DashboardOptions`). */
export const defaults: Settings = {
  callPrefix: "",
  title: "effect-micro",
  probeTimeout: Duration.seconds(2),
  probeConcurrency: 8,
  refreshInterval: Duration.seconds(10),
  heartbeat: Duration.seconds(15),
  maxTails: 16,
  tailBuffer: 256,
  tailBodyLimit: 4096
}
