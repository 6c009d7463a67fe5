/**
 * The HTTP gateway in one process: services on the memory transport and registry, the gateway on a real HTTP
 * port (loopback), called with fetch, a WebSocket client (`ws`) and raw sockets.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it, layer } from "@effect/vitest"
import { Validator } from "@seriousme/openapi-schema-validator"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as http from "node:http"
import * as net from "node:net"
import WebSocket from "ws"
import {
  Auth,
  AuthMiddleware,
  AuthRules,
  Client,
  Codec,
  Gateway,
  Registry,
  Selector,
  Server,
  Transport
} from "../src/index.js"
import { handlers as secureHandlers, rules, Secure } from "./process/fixtures/authContract.js"
import { handlers, Testing } from "./support/contract.js"
import { eventually } from "./support/eventually.js"

/** An endpoint error declaring its HTTP status, and one that does not. */
class UserNotFound extends Schema.TaggedError<UserNotFound>()(
  "UserNotFound",
  { id: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}
class Suspended extends Schema.TaggedError<Suspended>()("Suspended", { id: Schema.String }) {}

const User = Schema.Struct({ id: Schema.String, name: Schema.String, age: Schema.Number })
const Users = RpcGroup.make(
  Rpc.make("Get", {
    payload: { id: Schema.String, verbose: Schema.optional(Schema.Boolean) },
    success: User,
    error: Schema.Union(UserNotFound, Suspended)
  }),
  Rpc.make("Search", {
    payload: { minAge: Schema.Number, tag: Schema.optional(Schema.String) },
    success: Schema.Array(User)
  }),
  Rpc.make("Slow", { payload: { millis: Schema.Number }, success: Schema.String, stream: true })
)
const usersLayer = Users.toLayer({
  Get: ({ id, verbose }) =>
    id === "missing"
      ? Effect.fail(new UserNotFound({ id }))
      : id === "bad"
      ? Effect.fail(new Suspended({ id }))
      : Effect.succeed({ id, name: verbose === true ? `User ${id} (verbose)` : `User ${id}`, age: 42 }),
  Search: ({ minAge, tag }) => Effect.succeed([{ id: tag ?? "x", name: "found", age: minAge }]),
  Slow: ({ millis }) => Stream.fromEffect(Effect.as(Effect.sleep(millis), "done"))
})

const Infra = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Selector.layer)

/** Auth for the `secure` service: its rules, plus Debug.* public so the gateway can describe it. */
const AuthLive = Layer.mergeAll(
  Auth.layerMemory({ accounts: [{ id: "caller", secret: "caller-secret", type: "service", scopes: [] }] }),
  AuthRules.layer([
    ...rules,
    {
      id: "public-debug",
      scope: "",
      resource: { type: "service", name: "*", endpoint: "Debug.*" },
      access: "grant",
      priority: 10
    }
  ])
).pipe(Layer.orDie)

const services = Layer.mergeAll(
  Server.layer(Testing, { name: "testing", id: "t1", address: "memory:t1" }).pipe(Layer.provide(handlers("t1"))),
  Server.layer(Users, { name: "users", id: "u1", address: "memory:u1" }).pipe(Layer.provide(usersLayer))
)

const gatewayLayer = (options: Gateway.GatewayOptions = {}) =>
  Gateway.layer({ port: 0, host: "127.0.0.1", ...options }).pipe(
    Layer.provideMerge(Layer.mergeAll(Client.layer(), services)),
    Layer.provideMerge(Infra)
  )

const baseUrl = Effect.map(Gateway.Gateway, ({ host, port }) => `http://${host}:${port}`)

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
  readonly json: any
}

const request = (path: string, init?: RequestInit) =>
  Effect.flatMap(baseUrl, (base) =>
    Effect.promise(async (): Promise<Reply> => {
      const response = await fetch(`${base}${path}`, init)
      const text = await response.text()
      let json: unknown
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
      return { status: response.status, headers: response.headers, text, json }
    }))

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(path, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body)
  })

/** The events of an SSE body. */
const sseEvents = (text: string) =>
  text.split("\n\n").filter((block) => block.trim() !== "").map((block) => {
    const lines = block.split("\n")
    const event = lines.find((line) => line.startsWith("event: "))?.slice(7) ?? "message"
    const data = lines.filter((line) => line.startsWith("data: ")).map((line) => line.slice(6)).join("\n")
    return { event, data: JSON.parse(data) as unknown }
  })

/** A WebSocket session: sends `messages` (strings as given), collects frames until the server closes. */
const wsSession = (path: string, messages: ReadonlyArray<string>, closeAfterOpen = false) =>
  Effect.flatMap(
    baseUrl,
    (base) =>
      Effect.async<{ frames: Array<unknown>; code: number; reason: string }, Error>((resume) => {
        const socket = new WebSocket(`${base.replace("http", "ws")}${path}`)
        const frames: Array<unknown> = []
        const timer = setTimeout(() => {
          socket.terminate()
          resume(Effect.fail(new Error(`WebSocket session timed out; frames so far ${JSON.stringify(frames)}`)))
        }, 10_000)
        socket.on("open", () => {
          for (const message of messages) socket.send(message)
          if (closeAfterOpen) socket.close(1000)
        })
        socket.on("message", (data) => frames.push(JSON.parse(String(data))))
        socket.on("close", (code, reason) => {
          clearTimeout(timer)
          resume(Effect.succeed({ frames, code, reason: String(reason) }))
        })
        socket.on("error", (error) => {
          clearTimeout(timer)
          resume(Effect.fail(error))
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          socket.terminate()
        })
      })
  )

describe("Gateway", () => {
  layer(gatewayLayer(), { excludeTestServices: true })((it) => {
    it.effect("POST /{service}/{endpoint}: JSON in, JSON out", () =>
      Effect.gen(function*() {
        const reply = yield* post("/testing/Hello", { name: "Ada" })
        expect(reply.status).toBe(200)
        expect(reply.headers.get("content-type")).toContain("application/json")
        expect(reply.json).toBe("Hello, Ada!")
        const echo = yield* post("/testing/Echo", { text: "x" })
        expect(echo.json).toEqual({ text: "x", node: "t1" })
        // An endpoint without payload fields takes an empty body.
        const who = yield* request("/testing/WhoAmI", { method: "POST" })
        expect(who.status).toBe(200)
        expect(who.json.endpoint).toBe("WhoAmI")
      }))

    it.effect("endpoint errors: the typed body with the declared status, else 422", () =>
      Effect.gen(function*() {
        const declared = yield* post("/users/Get", { id: "missing" })
        expect(declared.status).toBe(404)
        expect(declared.json).toEqual({ _tag: "UserNotFound", id: "missing" })
        const undeclared = yield* post("/users/Get", { id: "bad" })
        expect(undeclared.status).toBe(422)
        expect(undeclared.json).toEqual({ _tag: "Suspended", id: "bad" })
        const unknownName = yield* post("/testing/Hello", { name: "nobody" })
        expect(unknownName.status).toBe(422)
        expect(unknownName.json).toEqual({ _tag: "UnknownName", name: "nobody" })
      }))

    it.effect("framework errors: their status and {id, code, detail, status}", () =>
      Effect.gen(function*() {
        const invalid = yield* post("/testing/Hello", { nom: 1 })
        expect(invalid.status).toBe(400)
        expect(invalid.json).toMatchObject({ _tag: "BadRequest", code: 400, status: "Bad Request" })
        expect(typeof invalid.json.id).toBe("string")
        expect(typeof invalid.json.detail).toBe("string")
        const boom = yield* post("/testing/Boom", { message: "kaboom" })
        expect(boom.status).toBe(500)
        expect(boom.json).toMatchObject({ _tag: "InternalServerError", code: 500 })
        const noService = yield* post("/nope/Hello", {})
        expect(noService.status).toBe(404)
        expect(noService.json).toMatchObject({ _tag: "ServiceNotFound", code: 404 })
        const noEndpoint = yield* post("/testing/Nope", {})
        expect(noEndpoint.status).toBe(404)
        expect(noEndpoint.json).toMatchObject({ _tag: "NotFound", code: 404 })
        expect(noEndpoint.json.detail).toContain("Hello")
        const badJson = yield* post("/testing/Hello", "{not json")
        expect(badJson.status).toBe(400)
        expect(badJson.json).toMatchObject({ _tag: "BadRequest", id: "effect-micro.gateway" })
        const noRoute = yield* request("/a/b/c")
        expect(noRoute.status).toBe(404)
      }))

    it.effect("deadline from X-Micro-Timeout or ?timeout=: 504 with the Timeout body", () =>
      Effect.gen(function*() {
        const header = yield* post("/testing/Sleep", { millis: 2000 }, { "x-micro-timeout": "100ms" })
        expect(header.status).toBe(504)
        expect(header.json).toMatchObject({ _tag: "Timeout", code: 408 })
        const query = yield* post("/testing/Sleep?timeout=100", { millis: 2000 })
        expect(query.status).toBe(504)
        const fast = yield* post("/testing/Sleep", { millis: 1 }, { "x-micro-timeout": "2s" })
        expect(fast.json).toBe("slept 1")
        const bad = yield* post("/testing/Sleep", { millis: 1 }, { "x-micro-timeout": "soon" })
        expect(bad.status).toBe(400)
      }))

    it.effect("metadata: allow-listed headers and the bearer token reach the handler; others do not", () =>
      Effect.gen(function*() {
        const reply = yield* request("/testing/WhoAmI", {
          method: "POST",
          headers: {
            "x-request-id": "req-1",
            authorization: "Bearer abc",
            "x-secret": "no",
            traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
          }
        })
        expect(reply.json["x-request-id"]).toBe("req-1")
        expect(reply.json.authorization).toBe("Bearer abc")
        expect(reply.json["x-secret"]).toBeUndefined()
      }))

    it.effect("server streaming: SSE by default, NDJSON on Accept: application/x-ndjson", () =>
      Effect.gen(function*() {
        const sse = yield* post("/testing/Countdown", { from: 3 })
        expect(sse.status).toBe(200)
        expect(sse.headers.get("content-type")).toContain("text/event-stream")
        expect(sseEvents(sse.text)).toEqual([3, 2, 1, 0].map((n) => ({ event: "message", data: n })))
        const nd = yield* post("/testing/Countdown", { from: 2 }, { accept: "application/x-ndjson" })
        expect(nd.headers.get("content-type")).toContain("application/x-ndjson")
        expect(nd.text.trim().split("\n").map((line) => JSON.parse(line))).toEqual([2, 1, 0])
        // A failing stream ends with `event: error` (SSE) or a `$error` line (NDJSON).
        const failed = yield* post("/testing/Countdown", { from: "x" })
        const events = sseEvents(failed.text)
        expect(events.at(-1)).toMatchObject({ event: "error", data: { _tag: "BadRequest", code: 400 } })
        const failedNd = yield* post("/testing/Countdown", { from: "x" }, { accept: "application/x-ndjson" })
        expect(JSON.parse(failedNd.text.trim().split("\n").at(-1)!)).toMatchObject({ $error: { _tag: "BadRequest" } })
      }))

    it.effect("streaming input over POST: a JSON array of messages", () =>
      Effect.gen(function*() {
        const sum = yield* post("/testing/Sum", [1, 2, 3, 4])
        expect(sum.json).toBe(10)
        const chat = yield* post("/testing/Chat", ["a", "b"], { accept: "application/x-ndjson" })
        expect(chat.text.trim().split("\n").map((line) => JSON.parse(line))).toEqual(["echo: a", "echo: b", "goodbye"])
        const notArray = yield* post("/testing/Sum", { n: 1 })
        expect(notArray.status).toBe(400)
      }))

    it.effect("WebSocket: client streaming with half-close, bidi, server streaming, unary", () =>
      Effect.gen(function*() {
        const sum = yield* wsSession("/testing/Sum", ["1", "2", "3", ""])
        expect(sum).toEqual({ frames: [6], code: 1000, reason: "" })
        const chat = yield* wsSession("/testing/Chat", [`"a"`, `"b"`, ""])
        expect(chat.frames).toEqual(["echo: a", "echo: b", "goodbye"])
        expect(chat.code).toBe(1000)
        const countdown = yield* wsSession("/testing/Countdown", [`{"from":2}`])
        expect(countdown.frames).toEqual([2, 1, 0])
        const hello = yield* wsSession("/testing/Hello", [`{"name":"Ada"}`])
        expect(hello.frames).toEqual(["Hello, Ada!"])
      }))

    it.effect("WebSocket errors: a last error frame and a close 4000 + status with the tag", () =>
      Effect.gen(function*() {
        const endpointError = yield* wsSession("/testing/Chat", [`"a"`, `"nobody"`])
        expect(endpointError.frames).toEqual(["echo: a", { _tag: "UnknownName", name: "nobody" }])
        expect(endpointError.code).toBe(4422)
        expect(endpointError.reason).toBe("UnknownName")
        const badJson = yield* wsSession("/testing/Sum", ["1", "{oops"])
        expect(badJson.frames.at(-1)).toMatchObject({ _tag: "BadRequest" })
        expect(badJson.code).toBe(4400)
        const invalid = yield* wsSession("/testing/Sum", [`"x"`, ""])
        expect(invalid.frames.at(-1)).toMatchObject({ _tag: "BadRequest" })
        expect(invalid.code).toBe(4400)
        // No upgrade: 405.
        const plainGet = yield* request("/testing/Sum")
        expect(plainGet.status).toBe(405)
        expect(plainGet.headers.get("allow")).toBe("POST")
      }))

    it.effect("a client closing its WebSocket cancels the call", () =>
      Effect.gen(function*() {
        const before = yield* Client.stats("testing")
        const cancelledBefore = before.endpoints.find((e) => e.endpoint === "Chat")?.cancelled ?? 0
        yield* wsSession("/testing/Chat", [`"a"`], true)
        const after = yield* eventually(
          Client.stats("testing"),
          (stats) => (stats.endpoints.find((e) => e.endpoint === "Chat")?.cancelled ?? 0) > cancelledBefore
        )
        expect(after.endpoints.find((e) => e.endpoint === "Chat")!.inFlight).toBe(0)
      }))

    it.effect("an HTTP client that goes away cancels its call", () =>
      Effect.gen(function*() {
        expect((yield* post("/testing/Sleep", { millis: 1 })).json).toBe("slept 1") // cached: the fast path
        const cancelled = (stats: { endpoints: ReadonlyArray<{ endpoint: string; cancelled: number }> }) =>
          stats.endpoints.find((e) => e.endpoint === "Sleep")?.cancelled ?? 0
        const before = cancelled(yield* Client.stats("testing"))
        const base = yield* baseUrl
        const controller = new AbortController()
        const pending = fetch(`${base}/testing/Sleep`, {
          method: "POST",
          body: `{"millis":5000}`,
          signal: controller.signal
        }).catch(() => "aborted")
        yield* eventually(
          Client.stats("testing"),
          (stats) => (stats.endpoints.find((e) => e.endpoint === "Sleep")?.inFlight ?? 0) === 1
        )
        controller.abort()
        expect(yield* Effect.promise(() => pending)).toBe("aborted")
        yield* eventually(Client.stats("testing"), (stats) => cancelled(stats) === before + 1)
      }))

    it.effect("body limit: 413 from Content-Length, and from a chunked body that passes it", () =>
      Effect.gen(function*() {
        const big = JSON.stringify({ name: "x".repeat(1024 * 1024) })
        const declared = yield* post("/testing/Hello", big)
        expect(declared.status).toBe(413)
        expect(declared.json).toMatchObject({ code: 413 })
        const { host, port } = yield* Gateway.Gateway
        const chunked = yield* Effect.promise(() => rawChunked(host, port, "/testing/Hello", big))
        expect(chunked).toMatch(/^HTTP\/1\.1 413/)
      }))

    it.effect("GET /openapi.json validates as OpenAPI 3.1; /docs renders the services", () =>
      Effect.gen(function*() {
        const reply = yield* request("/openapi.json")
        expect(reply.status).toBe(200)
        const document = reply.json
        expect(document.openapi).toBe("3.1.0")
        const validator = new Validator()
        const result = yield* Effect.promise(() => validator.validate(document))
        expect(result.errors ?? []).toEqual([])
        expect(result.valid).toBe(true)
        const get = document.paths["/users/Get"].post
        expect(get.responses["200"].content["application/json"].schema).toMatchObject({ type: "object" })
        expect(get.responses["404"]).toBeDefined()
        expect(get.responses["422"]).toBeDefined()
        expect(document.paths["/testing/Countdown"].post.responses["200"].content["text/event-stream"]).toBeDefined()
        // Every $ref resolves inside the document.
        const refs = [...JSON.stringify(document).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) =>
          m[1]!
        )
        for (const ref of refs) expect(document.components.schemas[ref], ref).toBeDefined()
        const docs = yield* request("/docs")
        expect(docs.headers.get("content-type")).toContain("text/html")
        expect(docs.text).toContain("Countdown")
        expect(docs.text).toContain("users")
        // No external assets (works offline); the examples name the gateway's own address.
        expect(docs.text).not.toMatch(/<script|<link|src=/)
        const { port } = yield* Gateway.Gateway
        expect(docs.text).toContain(`http://127.0.0.1:${port}/testing/Hello`)
      }))
  })

  layer(
    gatewayLayer({
      aliases: {
        "GET /users/:id": "users.Get",
        "POST /search/:minAge": "users.Search",
        "GET /count/:from": "testing.Countdown"
      },
      cors: { allowedOrigins: ["http://app.example"] },
      rateLimit: { ratePerSecond: 2, burst: 4 },
      trustProxy: true,
      services: ["users", "testing"]
    }),
    { excludeTestServices: true }
  )((it) => {
    // Each test comes from its own (forwarded) client address: the buckets are per client.
    const from = (ip: string, headers: Record<string, string> = {}) => ({ "x-forwarded-for": ip, ...headers })

    it.effect("aliases: path params and query merged into the payload, typed by the request schema", () =>
      Effect.gen(function*() {
        const user = yield* request("/users/42?verbose=true", { headers: from("10.0.0.1") })
        expect(user.status).toBe(200)
        expect(user.json).toEqual({ id: "42", name: "User 42 (verbose)", age: 42 })
        const missing = yield* request("/users/missing", { headers: from("10.0.0.1") })
        expect(missing.status).toBe(404)
        expect(missing.json).toEqual({ _tag: "UserNotFound", id: "missing" })
        // A body merged with the params; the path param (a number in the schema) read as one.
        const search = yield* request("/search/30", {
          method: "POST",
          headers: from("10.0.0.2", { "content-type": "application/json" }),
          body: JSON.stringify({ tag: "t" })
        })
        expect(search.json).toEqual([{ id: "t", name: "found", age: 30 }])
        const count = yield* request("/count/2", { headers: from("10.0.0.3") })
        expect(sseEvents(count.text).map((event) => event.data)).toEqual([2, 1, 0])
      }))

    it.effect("services option: other services answer 404 ServiceNotFound", () =>
      Effect.gen(function*() {
        const hidden = yield* post("/secret/Hello", {}, from("10.0.1.1"))
        expect(hidden.status).toBe(404)
        expect(hidden.json).toMatchObject({ _tag: "ServiceNotFound" })
      }))

    it.effect("CORS: preflight answered for an allowed origin, headers on replies", () =>
      Effect.gen(function*() {
        const preflight = yield* request("/testing/Hello", {
          method: "OPTIONS",
          headers: from("10.0.2.1", {
            origin: "http://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type"
          })
        })
        expect(preflight.status).toBeLessThan(300)
        expect(preflight.headers.get("access-control-allow-origin")).toBe("http://app.example")
        expect(preflight.headers.get("access-control-allow-methods")).toContain("POST")
        const reply = yield* post("/testing/Hello", { name: "Ada" }, from("10.0.2.1", { origin: "http://app.example" }))
        expect(reply.headers.get("access-control-allow-origin")).toBe("http://app.example")
        const other = yield* post(
          "/testing/Hello",
          { name: "Ada" },
          from("10.0.2.2", { origin: "http://evil.example" })
        )
        // Never echoed back: the browser refuses the reply to a script of another origin.
        expect(other.headers.get("access-control-allow-origin")).not.toBe("http://evil.example")
      }))

    it.effect("rate limit: a burst, then 429 with Retry-After; other clients unaffected; tokens come back", () =>
      Effect.gen(function*() {
        const statuses: Array<number> = []
        for (let i = 0; i < 6; i++) {
          statuses.push((yield* post("/testing/Hello", { name: "a" }, from("10.0.3.1"))).status)
        }
        expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200])
        expect(statuses.slice(4)).toEqual([429, 429])
        const limited = yield* post("/testing/Hello", { name: "a" }, from("10.0.3.1"))
        expect(limited.status).toBe(429)
        expect(limited.headers.get("retry-after")).toBe("1")
        expect(limited.json).toMatchObject({ code: 429 })
        expect((yield* post("/testing/Hello", { name: "b" }, from("10.0.3.2"))).status).toBe(200)
        // 2 tokens a second: the client gets through again once its bucket refilled.
        const again = yield* eventually(
          post("/testing/Hello", { name: "a" }, from("10.0.3.1")),
          (r) => r.status === 200
        )
        expect(again.json).toBe("Hello, a!")
      }))
  })

  layer(
    Gateway.layer({ port: 0, host: "127.0.0.1" }).pipe(
      Layer.provideMerge(Layer.mergeAll(
        Client.layer(),
        Server.layer(Secure, { name: "secure", id: "s1", address: "memory:s1" }).pipe(
          Layer.provide(secureHandlers),
          Layer.provide(AuthMiddleware.layerServer())
        )
      )),
      Layer.provideMerge(Layer.mergeAll(Infra, AuthLive))
    ),
    { excludeTestServices: true }
  )((it) => {
    it.effect("Authorization: Bearer reaches the service's auth rules: 401 without, 200 with, 403 by rule", () =>
      Effect.gen(function*() {
        const anonymous = yield* post("/secure/WhoAmI", {})
        expect(anonymous.status).toBe(401)
        expect(anonymous.json).toMatchObject({ _tag: "Unauthorized", code: 401 })
        const auth = yield* Auth.Auth
        const token = (yield* Effect.orDie(auth.token({ id: "caller", secret: "caller-secret" }))).accessToken
        const authed = yield* post("/secure/WhoAmI", {}, { authorization: `Bearer ${token}` })
        expect(authed.status).toBe(200)
        expect(authed.json).toEqual({ account: "caller", peer: null })
        const denied = yield* post("/secure/AdminReset", {}, { authorization: `Bearer ${token}` })
        expect(denied.status).toBe(403)
        expect(denied.json).toMatchObject({ _tag: "Forbidden" })
        expect((yield* post("/secure/WhoAmI", {}, { authorization: "Bearer garbage" })).status).toBe(401)
        // A WebSocket (browsers cannot set headers there) passes the token as ?access_token=.
        const ws = yield* wsSession(`/secure/Feed?access_token=${token}`, ["{}"])
        expect(ws.frames).toEqual(["hello", "caller"])
      }))
  })
})

/** A contract that changes between deployments: V2 adds an endpoint. */
const EvolvingV1 = RpcGroup.make(Rpc.make("A", { success: Schema.String }))
const EvolvingV2 = RpcGroup.make(
  Rpc.make("A", { success: Schema.String }),
  Rpc.make("B", { payload: { n: Schema.Number }, success: Schema.Number })
)

describe("Gateway (SSE heartbeat)", () => {
  layer(gatewayLayer({ sseHeartbeat: "100 millis" }), { excludeTestServices: true })((it) => {
    it.effect("a quiet stream gets `: ping` comments until its messages come", () =>
      Effect.gen(function*() {
        const reply = yield* post("/users/Slow", { millis: 450 })
        const pings = reply.text.split("\n\n").filter((block) => block === ": ping").length
        expect(pings).toBeGreaterThanOrEqual(2)
        expect(reply.text.endsWith("data: \"done\"\n\n")).toBe(true)
        // The events themselves are unchanged.
        expect(sseEvents(reply.text.split("\n\n").filter((b) => b !== ": ping").join("\n\n"))).toEqual([
          { event: "message", data: "done" }
        ])
      }))
  })
})

describe("Gateway (rate limit on the fast path)", () => {
  // No CORS and no aliases: cached unary calls take the layer's fast path, which shares the limiter.
  layer(gatewayLayer({ rateLimit: { ratePerSecond: 1, burst: 2 }, trustProxy: true }), { excludeTestServices: true })(
    (it) => {
      it.effect("429 with Retry-After once the burst is spent, per client", () =>
        Effect.gen(function*() {
          const from = { "x-forwarded-for": "10.1.0.1" }
          expect((yield* post("/testing/Hello", { name: "a" }, from)).status).toBe(200) // describes (router)
          expect((yield* post("/testing/Hello", { name: "a" }, from)).status).toBe(200) // cached (fast path)
          const limited = yield* post("/testing/Hello", { name: "a" }, from)
          expect(limited.status).toBe(429)
          expect(limited.headers.get("retry-after")).toBe("1")
          expect(limited.json).toMatchObject({ code: 429, status: "Too Many Requests" })
          expect((yield* post("/testing/Hello", { name: "b" }, { "x-forwarded-for": "10.1.0.2" })).status).toBe(200)
        }))
    }
  )
})

describe("Gateway (own layers: contract changes, router in a server of ones own, server limits)", () => {
  it.scopedLive("a new contract is picked up: a missing endpoint re-describes, the registry watch refreshes OpenAPI", () =>
    Effect.gen(function*() {
      const infra = yield* Layer.build(Infra)
      const gateway = yield* Layer.build(
        Gateway.layer({ port: 0, host: "127.0.0.1" }).pipe(Layer.provideMerge(Client.layer()))
      ).pipe(Effect.provide(infra))
      const { port } = Context.get(gateway, Gateway.Gateway)
      const call = (path: string, body: unknown = {}) =>
        Effect.promise(async () => {
          const response = await fetch(`http://127.0.0.1:${port}${path}`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body)
          })
          return { status: response.status, json: await response.json() as any }
        })
      const paths = Effect.promise(async () =>
        Object.keys(((await (await fetch(`http://127.0.0.1:${port}/openapi.json`)).json()) as any).paths as object)
      )

      const v1Scope = yield* Scope.make()
      yield* Layer.buildWithScope(
        Server.layer(EvolvingV1, { name: "evolving", id: "v1", address: "memory:v1" }).pipe(
          Layer.provide(EvolvingV1.toLayer({ A: () => Effect.succeed("v1") }))
        ),
        v1Scope
      ).pipe(Effect.provide(infra))
      expect((yield* call("/evolving/A")).json).toBe("v1")
      expect((yield* call("/evolving/B", { n: 1 })).status).toBe(404)
      expect(yield* paths).toContain("/evolving/A")
      expect(yield* paths).not.toContain("/evolving/B")
      yield* Scope.close(v1Scope, Exit.void)

      yield* Layer.build(
        Server.layer(EvolvingV2, { name: "evolving", id: "v2", address: "memory:v2" }).pipe(
          Layer.provide(EvolvingV2.toLayer({ A: () => Effect.succeed("v2"), B: ({ n }) => Effect.succeed(n * 2) }))
        )
      ).pipe(Effect.provide(infra))
      // The registry announced another describe digest: the cached description is dropped.
      yield* eventually(paths, (list) => list.includes("/evolving/B"))
      expect((yield* call("/evolving/B", { n: 21 })).json).toBe(42)
      expect((yield* call("/evolving/A")).json).toBe("v2")
    }))

  it.scopedLive("Gateway.router inside a server of one's own, mounted under a prefix", () =>
    Effect.gen(function*() {
      const app = yield* Gateway.router({ docs: false })
      const server = yield* Layer.build(
        HttpRouter.empty.pipe(
          HttpRouter.get("/hello", HttpServerResponse.text("mine")),
          HttpRouter.mountApp("/api", app),
          HttpServer.serve(),
          Layer.provideMerge(NodeHttpServer.layer(() => http.createServer(), { port: 0, host: "127.0.0.1" }))
        )
      )
      const address = Context.get(server, HttpServer.HttpServer).address as HttpServer.TcpAddress
      const base = `http://127.0.0.1:${address.port}`
      const reply = yield* Effect.promise(() =>
        fetch(`${base}/api/testing/Hello`, { method: "POST", body: `{"name":"Ada"}` }).then((r) => r.json())
      )
      expect(reply).toBe("Hello, Ada!")
      expect(yield* Effect.promise(() => fetch(`${base}/hello`).then((r) => r.text()))).toBe("mine")
      expect(yield* Effect.promise(() => fetch(`${base}/api/docs`).then((r) => r.status))).toBe(404)
    }).pipe(Effect.provide(Layer.mergeAll(Client.layer(), services).pipe(Layer.provideMerge(Infra)))))

  it.scopedLive("mounts: an app of one's own under a prefix on the gateway's port (a dashboard's place)", () =>
    Effect.gen(function*() {
      const base = yield* baseUrl
      const page = yield* Effect.promise(() => fetch(`${base}/extra/page`).then((r) => r.text()))
      expect(page).toBe("extra page")
      const posted = yield* Effect.promise(() =>
        fetch(`${base}/extra/form`, { method: "POST", body: "x" }).then((r) => r.text())
      )
      expect(posted).toBe("form posted")
      expect(yield* Effect.promise(() => fetch(`${base}/extra/nope`).then((r) => r.status))).toBe(404)
      // The gateway's own routes are unchanged.
      expect((yield* post("/testing/Hello", { name: "Ada" })).json).toBe("Hello, Ada!")
      expect((yield* post("/testing/Hello", { name: "Ada" })).json).toBe("Hello, Ada!")
    }).pipe(Effect.provide(gatewayLayer({
      mounts: {
        "/extra": HttpRouter.empty.pipe(
          HttpRouter.get("/page", HttpServerResponse.text("extra page")),
          HttpRouter.post("/form", HttpServerResponse.text("form posted"))
        )
      }
    }))))

  it.scopedLive("closing the gateway ends open streams (503 event) and WebSockets (1001) instead of waiting for them", () =>
    Effect.gen(function*() {
      // The services and the client live in the test's scope; only the gateway closes.
      const deps = yield* Layer.build(Layer.mergeAll(Client.layer(), services).pipe(Layer.provideMerge(Infra)))
      const scope = yield* Scope.make()
      const gateway = yield* Layer.buildWithScope(
        Gateway.layer({ port: 0, host: "127.0.0.1", sseHeartbeat: false }),
        scope
      ).pipe(Effect.provide(deps))
      const { host, port } = Context.get(gateway, Gateway.Gateway)
      const context = deps
      const base = `http://${host}:${port}`
      // A stream whose only message is a minute away, and a bidi WebSocket the client keeps open.
      const sseText = fetch(`${base}/users/Slow`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ millis: 60_000 })
      }).then((response) => response.text())
      const ndText = fetch(`${base}/users/Slow`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/x-ndjson" },
        body: JSON.stringify({ millis: 60_000 })
      }).then((response) => response.text())
      const socketClosed = new Promise<{ code: number; frames: Array<unknown> }>((resolve, reject) => {
        const socket = new WebSocket(`${base.replace("http", "ws")}/testing/Chat`)
        const frames: Array<unknown> = []
        socket.on("open", () => socket.send(`"a"`))
        socket.on("message", (data) => frames.push(JSON.parse(String(data))))
        socket.on("close", (code) => resolve({ code, frames }))
        socket.on("error", reject)
      })
      // Both calls are in flight at the service before the gateway closes.
      yield* eventually(
        Effect.map(Client.stats("users"), (stats) => stats.endpoints.find((e) => e.endpoint === "Slow")?.inFlight ?? 0),
        (inFlight) => inFlight === 2
      ).pipe(Effect.provide(context))
      yield* eventually(
        Effect.map(
          Client.stats("testing"),
          (stats) => stats.endpoints.find((e) => e.endpoint === "Chat")?.inFlight ?? 0
        ),
        (inFlight) => inFlight === 1
      ).pipe(Effect.provide(context))
      const started = Date.now()
      yield* Scope.close(scope, Exit.void)
      expect(Date.now() - started).toBeLessThan(3000)
      const events = sseEvents(yield* Effect.promise(() => sseText))
      expect(events).toEqual([{
        event: "error",
        data: expect.objectContaining({ _tag: "ServiceUnavailable", code: 503 })
      }])
      const lines = (yield* Effect.promise(() => ndText)).trim().split("\n").map((line) => JSON.parse(line))
      expect(lines).toEqual([{ $error: expect.objectContaining({ _tag: "ServiceUnavailable" }) }])
      const socket = yield* Effect.promise(() => socketClosed)
      expect(socket.code).toBe(1001)
      expect(socket.frames.at(-1)).toMatchObject({ _tag: "ServiceUnavailable", detail: "the gateway is shutting down" })
      // The calls were cancelled at the services, not left running.
      yield* eventually(
        Effect.map(Client.stats("users"), (stats) => stats.endpoints.find((e) => e.endpoint === "Slow")?.inFlight),
        (inFlight) => inFlight === 0
      ).pipe(Effect.provide(context))
      yield* eventually(
        Effect.map(Client.stats("testing"), (stats) => stats.endpoints.find((e) => e.endpoint === "Chat")?.inFlight),
        (inFlight) => inFlight === 0
      ).pipe(Effect.provide(context))
    }))

  it.scopedLive("headersTimeout: a client that never finishes its headers gets 408 and is closed", () =>
    Effect.gen(function*() {
      const { host, port } = yield* Gateway.Gateway
      const started = Date.now()
      const received = yield* Effect.async<string>((resume) => {
        const socket = net.connect(port, host, () => socket.write(`POST /testing/Hello HTTP/1.1\r\nhost: ${host}\r\n`))
        let data = ""
        socket.on("data", (chunk) => (data += chunk))
        socket.on("close", () => resume(Effect.succeed(data)))
        socket.on("error", () => resume(Effect.succeed(data)))
        return Effect.sync(() => socket.destroy())
      })
      expect(received).toMatch(/^HTTP\/1\.1 408/)
      expect(Date.now() - started).toBeLessThan(5000)
    }).pipe(Effect.provide(gatewayLayer({ headersTimeout: "300 millis", requestTimeout: "600 millis" }))))

  it.scopedLive("maxConnections: connections past the cap are closed at once", () =>
    Effect.gen(function*() {
      const { host, port } = yield* Gateway.Gateway
      const first = yield* Effect.acquireRelease(
        Effect.async<net.Socket>((resume) => {
          const socket = net.connect(port, host, () => resume(Effect.succeed(socket)))
        }),
        (socket) => Effect.sync(() => socket.destroy())
      )
      expect(first.readyState).toBe("open")
      const refused = yield* Effect.promise(() =>
        fetch(`http://${host}:${port}/testing/Hello`, { method: "POST", body: `{"name":"x"}` }).then(
          (r) => `status ${r.status}`,
          () => "closed"
        )
      )
      expect(refused).toBe("closed")
      first.destroy()
      const after = yield* eventually(
        Effect.promise(() =>
          fetch(`http://${host}:${port}/testing/Hello`, { method: "POST", body: `{"name":"x"}` }).then(
            (r) => r.status,
            () => 0
          )
        ),
        (status) => status === 200
      )
      expect(after).toBe(200)
    }).pipe(Effect.provide(gatewayLayer({ maxConnections: 1 }))))
})

/** A chunked POST (no Content-Length) written on a raw socket; the status line it gets. */
const rawChunked = (host: string, port: number, path: string, body: string) =>
  new Promise<string>((resolve, reject) => {
    const socket = net.connect(port, host)
    let received = ""
    socket.on("data", (data) => {
      received += data
      if (received.includes("\r\n")) {
        socket.destroy()
        resolve(received)
      }
    })
    socket.on("error", (error) => (received === "" ? reject(error) : resolve(received)))
    socket.on("close", () => resolve(received))
    socket.write(
      `POST ${path} HTTP/1.1\r\nhost: ${host}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n`
    )
    const chunk = 64 * 1024
    for (let i = 0; i < body.length; i += chunk) {
      const part = body.slice(i, i + chunk)
      socket.write(`${Buffer.byteLength(part).toString(16)}\r\n${part}\r\n`)
    }
    socket.write("0\r\n\r\n")
  })
