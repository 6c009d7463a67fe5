/**
 * The dashboard's router in one process: two services (three nodes) on the memory transport and registry, the
 * memory broker, and the router mounted at `/ui` of a real HTTP server on loopback, read with fetch.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as http from "node:http"
import { Broker, Client, Codec, Dashboard, Gateway, Registry, Selector, Server, Transport } from "../src/index.js"
import { mountPath } from "../src/internal/dashboard/router.js"
import { handlers, Testing } from "./support/contract.js"
import { eventually } from "./support/eventually.js"
import * as Sse from "./support/sse.js"

const Infra = Layer.mergeAll(
  Transport.layerMemory,
  Registry.layerMemory,
  Codec.layer,
  Selector.layer,
  Broker.layerMemory
)

const node = (name: string, id: string) =>
  Server.layer(Testing, { name, id, address: "memory:0" }).pipe(Layer.provide(handlers(id)))

/** Two nodes of `testing`, one of `other`, a client runtime; everything shares one memory registry and broker. */
const System = Layer.mergeAll(node("testing", "t1"), node("testing", "t2"), node("other", "o1"), Client.layer()).pipe(
  Layer.provideMerge(Infra)
)

/** Serves the dashboard at `/ui` on a free loopback port; returns the server's base URL. */
const serve = (options?: Dashboard.DashboardOptions) =>
  Effect.gen(function*() {
    const server = yield* NodeHttpServer.make(() => http.createServer(), { port: 0, host: "127.0.0.1" })
    yield* server.serve(HttpRouter.empty.pipe(HttpRouter.mount("/ui", Dashboard.make(options))))
    const address = server.address as HttpServer.TcpAddress
    return `http://127.0.0.1:${address.port}`
  })

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    const text = await response.text()
    let json: any = undefined
    try {
      json = JSON.parse(text)
    } catch {
      // not JSON
    }
    return { status: response.status, type: response.headers.get("content-type"), text, json }
  })

const test = <A, E>(name: string, body: () => Effect.Effect<A, E, Scope.Scope | Layer.Layer.Success<typeof System>>) =>
  it.scopedLive(name, () => Effect.provide(body(), System), 20_000)

describe("Dashboard", () => {
  test("the page, its script and stylesheet, under the mount point whatever the trailing slash", () =>
    Effect.gen(function*() {
      const base = yield* serve({ title: "acme <prod>" })
      for (const path of ["/ui", "/ui/", "/ui/index.html"]) {
        const page = yield* get(base + path)
        expect(page.status).toBe(200)
        expect(page.type).toMatch(/^text\/html/)
        expect(page.text).toContain(`<base href="/ui/">`)
        expect(page.text).toContain("<title>acme &lt;prod&gt; dashboard</title>")
        // Offline: nothing but relative URLs of the router itself.
        expect(page.text).not.toMatch(/(src|href)="(https?:)?\/\//)
      }
      const script = yield* get(`${base}/ui/app.js`)
      expect(script.status).toBe(200)
      expect(script.type).toMatch(/^text\/javascript/)
      expect(script.text).toContain("new EventSource(\"api/registry\")")
      const css = yield* get(`${base}/ui/app.css`)
      expect(css.type).toMatch(/^text\/css/)
      const missing = yield* get(`${base}/ui/api/nope`)
      expect(missing.status).toBe(404)
      expect(missing.json).toMatchObject({ _tag: "NotFound", code: 404, status: "Not Found" })
      expect(mountPath("/", "/")).toBe("")
      expect(mountPath("/a/b/index.html?x=1", "/index.html")).toBe("/a/b")
    }))

  test("services and their nodes; one service's versions; an unknown one is a typed 404", () =>
    Effect.gen(function*() {
      const base = yield* serve()
      const services = yield* get(`${base}/ui/api/services`)
      expect(services.status).toBe(200)
      expect(services.json.map((s: { name: string }) => s.name)).toEqual(["other", "testing"])
      const testing = services.json[1]
      expect(testing).toMatchObject({ name: "testing", version: "latest", kind: "service" })
      expect(testing.nodes.map((n: { id: string }) => n.id).sort()).toEqual(["t1", "t2"])
      expect(testing.nodes[0].address).toMatch(/^memory:\d+$/)
      expect(testing.nodes[0].metadata).toHaveProperty("describe")
      expect(testing.endpoints.map((e: { name: string }) => e.name)).toContain("Hello")

      const one = yield* get(`${base}/ui/api/services/other`)
      expect(one.json).toEqual([
        expect.objectContaining({ name: "other", nodes: [expect.objectContaining({ id: "o1" })] })
      ])
      const unknown = yield* get(`${base}/ui/api/services/nosuch`)
      expect(unknown.status).toBe(404)
      expect(unknown.json).toMatchObject({ _tag: "ServiceNotFound", code: 404 })
      expect(Object.keys(unknown.json).sort()).toEqual(["_tag", "code", "detail", "id", "status"])
    }))

  test("describe: endpoints, shapes and parsed JSON Schemas; node= must be a registered node", () =>
    Effect.gen(function*() {
      const base = yield* serve()
      const described = yield* get(`${base}/ui/api/services/testing/describe`)
      expect(described.status).toBe(200)
      const byName = Object.fromEntries(described.json.endpoints.map((e: { name: string }) => [e.name, e]))
      expect(byName.Hello).toMatchObject({
        shape: "unary",
        idempotent: false,
        request: { type: "object", required: ["name"], properties: { name: { type: "string" } } },
        response: { type: "string" },
        error: { $ref: "#/$defs/UnknownName" }
      })
      expect(byName.Echo.idempotent).toBe(true)
      expect(byName.Sum.shape).toBe("client-stream")

      const [entry] = yield* Effect.flatMap(Registry.Registry, (registry) => registry.getService("testing"))
      const t2 = entry!.nodes.find((n) => n.id === "t2")!
      const pinned = yield* get(`${base}/ui/api/services/testing/describe?node=${t2.address}`)
      expect(pinned.status).toBe(200)
      // An address the registry does not list for the service is never dialled.
      const made_up = yield* get(`${base}/ui/api/services/testing/describe?node=127.0.0.1:22`)
      expect(made_up.status).toBe(404)
      expect(made_up.json.detail).toContain("no node at 127.0.0.1:22")
    }))

  test("health and stats of every node, with the calls made; a dead node reports its error, not a failure", () =>
    Effect.gen(function*() {
      const base = yield* serve({ probeTimeout: "1 second" })
      const testing = yield* Client.make(Testing, { service: "testing" })
      for (let i = 0; i < 4; i++) yield* testing.Hello({ name: "Ada" })
      yield* Effect.flip(testing.Hello({ name: "nobody" }))

      const health = yield* get(`${base}/ui/api/services/testing/health`)
      expect(health.status).toBe(200)
      expect(health.json.map((h: { id: string }) => h.id).sort()).toEqual(["t1", "t2"])
      for (const h of health.json) {
        expect(h).toMatchObject({ ok: true, version: "latest", value: { status: "serving" } })
      }

      const stats = yield* get(`${base}/ui/api/services/testing/stats`)
      const hello = stats.json.flatMap((s: any) => s.value.endpoints.filter((e: any) => e.endpoint === "Hello"))
      expect(hello.reduce((n: number, e: any) => n + e.started, 0)).toBe(5)
      expect(hello.reduce((n: number, e: any) => n + e.failed, 0)).toBe(1)

      // A registered node nobody serves: its probe fails with a typed error, the others still answer.
      const registry = yield* Registry.Registry
      yield* registry.register({
        name: "testing",
        version: "latest",
        metadata: {},
        endpoints: [],
        nodes: [{ id: "ghost", address: "memory:65000", metadata: {} }]
      })
      const withGhost = yield* get(`${base}/ui/api/services/testing/health`)
      const ghost = withGhost.json.find((h: { id: string }) => h.id === "ghost")
      expect(ghost).toMatchObject({ ok: false, address: "memory:65000", error: { code: 503 } })
      expect(ghost.error._tag).toMatch(/TransportError|NoAvailableNodes/)
      expect(withGhost.json.filter((h: { ok: boolean }) => h.ok)).toHaveLength(2)
      const unknown = yield* get(`${base}/ui/api/services/nosuch/stats`)
      expect(unknown.status).toBe(404)
    }))

  test("registry changes live: the list first, then a change per watch event (node up, node gone, service gone)", () =>
    Effect.gen(function*() {
      const base = yield* serve()
      const events = yield* Sse.open(`${base}/ui/api/registry`)
      expect(events.status).toBe(200)
      expect(events.contentType).toMatch(/^text\/event-stream/)
      const first = yield* events.next((e) => e.event === "services")
      expect((first.data as Array<{ name: string }>).map((s) => s.name)).toEqual(["other", "testing"])

      const registry = yield* Registry.Registry
      const extra = (ids: Array<string>) => ({
        name: "extra",
        version: "1.0",
        metadata: {},
        endpoints: [],
        nodes: ids.map((id) => ({ id, address: `memory:${id}`, metadata: { zone: "a" } }))
      })
      const mark = events.events.length
      yield* registry.register(extra(["x1"]))
      yield* registry.register(extra(["x2"]))
      yield* registry.deregister(extra(["x1"]))
      yield* registry.deregister(extra(["x2"]))
      const isExtra = (type: string, nodes: number) => (e: Sse.ServerEvent) => {
        const change = e.data as { type: string; service: { name: string; nodes: Array<unknown> } }
        return e.event === "change" && change.type === type && change.service.name === "extra" &&
          change.service.nodes.length === nodes
      }
      const created = yield* events.next(isExtra("create", 1), { from: mark })
      expect(created.data).toMatchObject({
        service: {
          version: "1.0",
          kind: "service",
          nodes: [{ id: "x1", address: "memory:x1", metadata: { zone: "a" } }]
        }
      })
      yield* events.next(isExtra("update", 2), { from: mark })
      yield* events.next(isExtra("update", 1), { from: mark })
      yield* events.next(isExtra("delete", 0), { from: mark })
    }))

  test("keep-alive comments every heartbeat; callPrefix reaches the page; options out of range fall back", () =>
    Effect.gen(function*() {
      const base = yield* serve({ heartbeat: "50 millis", callPrefix: "/api/", maxTails: -1, probeConcurrency: 0 })
      const text = yield* Effect.promise(async () => {
        const abort = new AbortController()
        const response = await fetch(`${base}/ui/api/topics/beat`, { signal: abort.signal })
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
        let seen = ""
        while ((seen.match(/: keep-alive/g) ?? []).length < 3) seen += (await reader.read()).value ?? ""
        await reader.cancel()
        abort.abort()
        return seen
      })
      expect(text.startsWith("retry: 2000\n\n")).toBe(true)
      expect(text).toContain("event: subscribed")
      const page = yield* get(`${base}/ui/`)
      expect(page.text).toContain(`"callPrefix":"/api"`)
      // probeConcurrency 0 would ask no node at all; it falls back to the default.
      const health = yield* get(`${base}/ui/api/services/testing/health`)
      expect(health.json).toHaveLength(2)
    }))

  test("the whole list again every refreshInterval", () =>
    Effect.gen(function*() {
      const base = yield* serve({ refreshInterval: "100 millis" })
      const events = yield* Sse.open(`${base}/ui/api/registry`)
      yield* events.next((e) => e.event === "services")
      const mark = events.events.length
      yield* events.next((e) => e.event === "services", { from: mark, timeoutMillis: 5_000 })
    }))

  test("topic tail: sees every message without taking any from a queue group; bodies as text, base64, cut", () =>
    Effect.gen(function*() {
      const base = yield* serve({ tailBodyLimit: 8 })
      const broker = yield* Broker.Broker
      const received: Array<string> = []
      const allReceived = yield* Deferred.make<void>()
      // The topic's real subscriber: one queue group, which must still get every message.
      yield* broker.subscribe(
        "orders",
        (message) =>
          Effect.sync(() => received.push(new TextDecoder().decode(message.body))).pipe(
            Effect.zipRight(
              Effect.suspend(() => received.length === 3 ? Deferred.succeed(allReceived, undefined) : Effect.void)
            )
          ),
        { queue: "billing" }
      )

      const tail = yield* Sse.open(`${base}/ui/api/topics/orders`)
      const subscribed = yield* tail.next((e) => e.event === "subscribed")
      expect(subscribed.data).toMatchObject({ topic: "orders", queue: expect.stringMatching(/^micro-dashboard-/) })

      const encoder = new TextEncoder()
      yield* broker.publish("orders", encoder.encode(`{"id":1}`), {
        contentType: "application/json",
        headers: { tenant: "acme" }
      })
      yield* broker.publish("orders", encoder.encode("abcdefgé"))
      yield* broker.publish("orders", new Uint8Array([0xff, 0xfe, 0x00, 0x01]))
      yield* Deferred.await(allReceived)
      expect(received).toHaveLength(3)

      const message = (seq: number) => tail.next((e) => e.event === "message" && (e.data as any).seq === seq)
      expect((yield* message(1)).data).toMatchObject({
        topic: "orders",
        contentType: "application/json",
        headers: { tenant: "acme" },
        size: 8,
        encoding: "utf8",
        body: `{"id":1}`,
        truncated: false
      })
      // 9 bytes cut at 8: the cut falls inside "é", which stays out rather than turning the body into base64.
      expect((yield* message(2)).data).toMatchObject({ encoding: "utf8", body: "abcdefg", truncated: true, size: 9 })
      expect((yield* message(3)).data).toMatchObject({ encoding: "base64", body: "//4AAQ==", truncated: false })
    }))

  it.scopedLive("without a Broker in the process, the rest works and a tail answers 503", () =>
    Effect.gen(function*() {
      const base = yield* serve()
      const services = yield* get(`${base}/ui/api/services`)
      expect(services.json.map((s: { name: string }) => s.name)).toEqual(["testing"])
      const tail = yield* get(`${base}/ui/api/topics/orders`)
      expect(tail.status).toBe(503)
      expect(tail.json).toMatchObject({ _tag: "BrokerError", code: 503, status: "No Broker" })
    }).pipe(
      Effect.provide(
        Layer.mergeAll(node("testing", "t1"), Client.layer()).pipe(
          Layer.provideMerge(Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Selector.layer))
        )
      )
    ))

  test("on the gateway (dashboard: true): the page at /ui, its API, and the call route its form posts to", () =>
    Effect.gen(function*() {
      const server = yield* NodeHttpServer.make(() => http.createServer(), { port: 0, host: "127.0.0.1" })
      yield* server.serve(yield* Gateway.router({ dashboard: { title: "gw" } }))
      const base = `http://127.0.0.1:${(server.address as HttpServer.TcpAddress).port}`
      const page = yield* get(`${base}/ui`)
      expect(page.status).toBe(200)
      expect(page.text).toContain(`<base href="/ui/">`)
      expect(page.text).toContain(`"callPrefix":""`)
      const services = yield* get(`${base}/ui/api/services`)
      expect(services.json.map((s: { name: string }) => s.name)).toEqual(["other", "testing"])
      const script = yield* get(`${base}/ui/app.js`)
      expect(script.type).toMatch(/^text\/javascript/)
      const call = yield* Effect.promise(() =>
        fetch(`${base}/testing/Hello`, { method: "POST", body: JSON.stringify({ name: "Ada" }) }).then((r) => r.json())
      )
      expect(call).toBe("Hello, Ada!")
      // Off by default.
      const plain = yield* NodeHttpServer.make(() => http.createServer(), { port: 0, host: "127.0.0.1" })
      yield* plain.serve(yield* Gateway.router())
      const none = yield* get(`http://127.0.0.1:${(plain.address as HttpServer.TcpAddress).port}/ui/app.js`)
      expect(none.status).not.toBe(200)
    }))

  test("closing the gateway ends its open event streams: its close does not wait for the browsers to leave", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(
        Gateway.layer({ port: 0, host: "127.0.0.1", dashboard: true }),
        scope
      )
      const base = `http://127.0.0.1:${Context.get(context, Gateway.Gateway).port}`
      const registry = yield* Sse.open(`${base}/ui/api/registry`)
      yield* registry.next((e) => e.event === "services")
      const tail = yield* Sse.open(`${base}/ui/api/topics/orders`)
      yield* tail.next((e) => e.event === "subscribed")
      // Without the signal, Node's server.close() would wait for these two responses forever.
      yield* Scope.close(scope, Exit.void).pipe(
        Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error("the gateway's close hung") })
      )
      yield* eventually(Effect.sync(() => registry.ended() && tail.ended()), (ended) => ended, "2 seconds")
    }))

  test("tails are limited, refused for a bad topic, and end (freeing their slot) when the browser leaves", () =>
    Effect.gen(function*() {
      const base = yield* serve({ maxTails: 1 })
      const bad = yield* get(`${base}/ui/api/topics/${encodeURIComponent("has space")}`)
      expect(bad.status).toBe(400)
      expect(bad.json).toMatchObject({ _tag: "BadRequest", code: 400 })

      const scope = yield* Scope.make()
      const first = yield* Sse.open(`${base}/ui/api/topics/t`).pipe(Scope.extend(scope))
      yield* first.next((e) => e.event === "subscribed")
      const refused = yield* get(`${base}/ui/api/topics/other`)
      expect(refused.status).toBe(503)
      expect(refused.json).toMatchObject({ code: 503, status: "Too Many Tails" })

      // The browser goes away: the request's scope closes, the subscription and the slot with it.
      yield* Scope.close(scope, Exit.void)
      const next = yield* eventually(
        Effect.flatMap(Sse.open(`${base}/ui/api/topics/t`), (stream) => Effect.as(stream.close, stream.status)),
        (status) => status === 200,
        "5 seconds"
      )
      expect(next).toBe(200)
    }))
})
