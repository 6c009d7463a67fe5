/** The built-in Debug endpoints and the opt-in HTTP probe port, in one process (memory transport + real HTTP). */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Broker, Client, Codec, Debug, Registry, Selector, Server, Store, Topic, Transport } from "../src/index.js"
import { render } from "../src/internal/debug/prometheus.js"
import { Directory, TopicDirectory } from "../src/internal/debug/topics.js"
import { handlers, Testing } from "./support/contract.js"
import { eventually } from "./support/eventually.js"

const Infra = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Selector.layer)

const serverLayer = (http = true) =>
  Server.layer(Testing, {
    name: "testing",
    id: "n1",
    address: "memory:0",
    ...(http ? { http: { host: "127.0.0.1" } } : {})
  })
    .pipe(Layer.provide(handlers("n1")))

const get = (address: string, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://${address}${path}`)
    return { status: response.status, type: response.headers.get("content-type"), body: await response.text() }
  })

describe("Debug", () => {
  it.scopedLive("Client.health and Client.stats answer over the service's own protocol", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const health = yield* Client.health("testing")
      expect(health).toMatchObject({ status: "serving", service: "testing", version: "latest", node: "n1" })
      expect(health.uptimeMillis).toBeGreaterThanOrEqual(0)

      yield* testing.Hello({ name: "Ada" })
      yield* testing.Hello({ name: "Bob" })
      yield* Effect.flip(testing.Hello({ name: "nobody" }))
      yield* Effect.flip(testing.Boom({ message: "x" }))
      const stats = yield* Client.stats("testing")
      const hello = stats.endpoints.find((e) => e.endpoint === "Hello")!
      expect(hello).toMatchObject({ started: 3, succeeded: 2, failed: 1, cancelled: 0, inFlight: 0 })
      expect(hello.failedByCode).toEqual({ error: 1 })
      expect(stats.endpoints.find((e) => e.endpoint === "Boom")!.failedByCode).toEqual({ "500": 1 })
      expect(hello.durationCounts[hello.durationCounts.length - 1]).toBe(3)
      expect(stats.endpoints.find((e) => e.endpoint === "Boom")).toMatchObject({ started: 1, failed: 1 })
      // The Debug endpoints are not counted as the service's own.
      expect(stats.endpoints.map((e) => e.endpoint)).not.toContain("Debug.Stats")
      expect(stats.connections.open).toBeGreaterThanOrEqual(1)
      expect(stats.bytes.received).toBeGreaterThan(0)
      expect(stats.bytes.sent).toBeGreaterThan(0)
      expect(stats.memory.rss).toBeGreaterThan(0)
      expect(stats.registry.registrations).toBeGreaterThanOrEqual(1)
      // The registry lists the contract's endpoints only.
      const [service] = yield* Effect.flatMap(Registry.Registry, (registry) => registry.getService("testing"))
      expect(service!.endpoints.map((e) => e.name)).not.toContain("Debug.Health")
      // The node advertises the digest of its description.
      const description = yield* Client.describe("testing")
      expect(service!.nodes[0]!.metadata.describe).toBe(description.digest)
      expect(description.endpoints.map((e) => e.name)).toContain("Hello")
    }).pipe(Effect.provide(Layer.mergeAll(Client.layer(), serverLayer(false)).pipe(Layer.provideMerge(Infra)))))

  it.scopedLive("Describe lists the typed topics the process subscribes to, for as long as they are subscribed", () =>
    Effect.gen(function*() {
      const Orders = Topic.make("orders.created", Schema.Struct({ id: Schema.String, total: Schema.Number }))
      const before = yield* Client.describe("testing")
      expect(before.topics).toEqual([])
      const subscription = yield* Scope.make()
      yield* Topic.subscribe(Orders, () => Effect.void, { queue: "billing" }).pipe(Scope.extend(subscription))
      yield* Topic.subscribe(Orders, () => Effect.void).pipe(Scope.extend(subscription))
      const during = yield* Client.describe("testing")
      expect(during.topics).toEqual([
        { topic: "orders.created", schema: expect.any(String) },
        { topic: "orders.created", queue: "billing", schema: expect.any(String) }
      ])
      expect(JSON.parse(during.topics![0]!.schema)).toMatchObject({
        type: "object",
        required: ["id", "total"],
        properties: { id: { type: "string" }, total: { type: "number" } }
      })
      // Topics are not part of the contract's digest.
      expect(during.digest).toBe(before.digest)
      yield* Scope.close(subscription, Exit.void)
      expect((yield* Client.describe("testing")).topics).toEqual([])
    }).pipe(
      // A directory of its own, so other tests' subscriptions in this process do not show.
      Effect.provide(
        Layer.mergeAll(Client.layer(), serverLayer(false), Broker.layerMemory).pipe(Layer.provideMerge(Infra))
      ),
      Effect.provideService(TopicDirectory, new Directory())
    ))

  it.scopedLive("broker publishes and deliveries are counted", () =>
    Effect.gen(function*() {
      const before = yield* Client.stats("testing")
      const broker = yield* Broker.Broker
      const delivered = yield* Effect.makeSemaphore(0)
      yield* broker.subscribe("events", () => delivered.release(1))
      yield* broker.publish("events", new Uint8Array([1]))
      yield* delivered.take(1)
      const after = yield* Client.stats("testing")
      expect(after.broker.published - before.broker.published).toBe(1)
      expect(after.broker.delivered - before.broker.delivered).toBe(1)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(Client.layer(), serverLayer(false), Broker.layerMemory).pipe(Layer.provideMerge(Infra))
      )
    ))

  it.scopedLive("HTTP probe: /health, /ready, /stats, /metrics; 404 and 405 otherwise", () =>
    Effect.gen(function*() {
      const info = yield* Server.Server
      const address = info.httpAddress!
      expect(address).toMatch(/^127\.0\.0\.1:\d+$/)
      const health = yield* get(address, "/health")
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body)).toMatchObject({ status: "serving", service: "testing" })
      expect((yield* get(address, "/ready")).status).toBe(200)
      const stats = yield* get(address, "/stats")
      expect(JSON.parse(stats.body)).toMatchObject({ service: "testing", node: "n1" })
      const metrics = yield* get(address, "/metrics")
      expect(metrics.type).toBe("text/plain; version=0.0.4; charset=utf-8")
      expect(metrics.body).toContain(`# TYPE micro_server_calls_total counter`)
      expect((yield* get(address, "/nope")).status).toBe(404)
      const post = yield* Effect.promise(() => fetch(`http://${address}/health`, { method: "POST" }))
      expect(post.status).toBe(405)
    }).pipe(Effect.provide(serverLayer().pipe(Layer.provideMerge(Infra)))))

  it.scopedLive("a process without a server gets the same probe port: process-wide figures, no endpoints", () =>
    Effect.gen(function*() {
      const probeScope = yield* Scope.make()
      const { address } = yield* Debug.serveHttp({ name: "worker", node: "w1", host: "127.0.0.1" }).pipe(
        Scope.extend(probeScope)
      )
      const broker = yield* Broker.Broker
      const before = JSON.parse((yield* get(address, "/stats")).body)
      yield* broker.publish("jobs", new Uint8Array([1]))
      const health = yield* get(address, "/health")
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body)).toMatchObject({ status: "serving", service: "worker", node: "w1", address })
      expect((yield* get(address, "/ready")).status).toBe(200)
      const stats = JSON.parse((yield* get(address, "/stats")).body)
      expect(stats).toMatchObject({ service: "worker", node: "w1", endpoints: [], connections: { open: 0 } })
      expect(stats.broker.published - before.broker.published).toBe(1)
      expect(stats.memory.rss).toBeGreaterThan(0)
      const metrics = yield* get(address, "/metrics")
      expect(metrics.body).toContain("micro_broker_published_total")
      expect((yield* get(address, "/nope")).status).toBe(404)
      yield* Scope.close(probeScope, Exit.void)
      const closed = yield* Effect.either(Effect.tryPromise(() => fetch(`http://${address}/health`)))
      expect(closed._tag).toBe("Left")
    }).pipe(Effect.provide(Broker.layerMemory)))

  it.scopedLive("readiness follows the drain: /ready is 503 while calls finish, /health answers until the end", () =>
    Effect.gen(function*() {
      // The server in its own scope, the client (a caller elsewhere) outliving its stop.
      const infra = yield* Layer.build(Infra)
      const serverScope = yield* Scope.make()
      const server = yield* Layer.buildWithScope(serverLayer(), serverScope).pipe(Effect.provide(infra))
      const address = Context.get(server, Server.Server).httpAddress!
      expect((yield* get(address, "/ready")).status).toBe(200)
      const client = yield* Layer.build(Client.layer()).pipe(Effect.provide(infra))
      const testing = yield* Client.make(Testing, { service: "testing" }).pipe(Effect.provide(client))
      // A call that keeps the drain going for a while.
      const call = yield* Effect.fork(testing.Sleep({ millis: 1500 }))
      yield* eventually(
        Client.stats("testing").pipe(Effect.provide(client)),
        (stats) => stats.endpoints.find((e) => e.endpoint === "Sleep")!.inFlight === 1
      )
      const closing = yield* Effect.fork(Scope.close(serverScope, Exit.void))
      yield* eventually(get(address, "/ready"), (ready) => ready.status === 503)
      const health = yield* get(address, "/health")
      expect(health.status).toBe(200)
      expect(JSON.parse(health.body).status).toBe("draining")
      expect(yield* Fiber.join(call)).toBe("slept 1500")
      yield* Fiber.join(closing)
      const after = yield* Effect.promise(() => fetch(`http://${address}/health`).then(() => "open", () => "closed"))
      expect(after).toBe("closed")
    }))

  it.scopedLive("Debug.layerMetrics: servers, clients and the broker report to Effect metrics", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "metered" })
      const broker = yield* Broker.Broker
      const valueOf = (name: string, labels: Record<string, string>) =>
        Metric.unsafeSnapshot().find((pair) =>
          pair.metricKey.name === name &&
          Object.entries(labels).every(([key, value]) =>
            pair.metricKey.tags.some((tag) => tag.key === key && tag.value === value)
          )
        )?.metricState
      const count = (name: string, labels: Record<string, string>) =>
        (valueOf(name, labels) as { count?: number } | undefined)?.count ?? 0
      const before = {
        server: count("micro_server_calls_total", { service: "metered", endpoint: "Hello", outcome: "succeeded" }),
        client: count("micro_client_calls_total", { service: "metered", endpoint: "Hello", outcome: "failed" }),
        published: count("micro_broker_published_total", { outcome: "succeeded" })
      }
      yield* testing.Hello({ name: "Ada" })
      yield* testing.Hello({ name: "Bob" })
      yield* Effect.flip(testing.Hello({ name: "nobody" }))
      yield* Stream.runDrain(testing.Countdown({ from: 3 }))
      expect(count("micro_client_calls_total", { service: "metered", endpoint: "Countdown", outcome: "succeeded" }))
        .toBeGreaterThanOrEqual(1)
      yield* broker.publish("metered", new Uint8Array([1]))
      expect(count("micro_server_calls_total", { service: "metered", endpoint: "Hello", outcome: "succeeded" }))
        .toBe(before.server + 2)
      expect(count("micro_client_calls_total", { service: "metered", endpoint: "Hello", outcome: "failed" }))
        .toBe(before.client + 1)
      expect(count("micro_server_calls_total", { service: "metered", endpoint: "Hello", code: "error" }))
        .toBeGreaterThanOrEqual(1)
      const histogram = valueOf("micro_server_call_duration_seconds", {
        service: "metered",
        endpoint: "Hello"
      }) as unknown as {
        count: number
      }
      expect(histogram.count).toBeGreaterThanOrEqual(3)
      // Process-wide figures are copied once a second.
      yield* eventually(
        Effect.sync(() => count("micro_broker_published_total", { outcome: "succeeded" })),
        (published) => published >= before.published + 1,
        "5 seconds"
      )
      expect(valueOf("process_resident_memory_bytes", {})).toBeDefined()
      // Store operations, by backend, operation and outcome.
      const store = yield* Store.Store
      yield* store.write({ key: "k", value: new Uint8Array([1]) })
      yield* store.read("k")
      yield* Effect.flip(store.read("missing"))
      expect(count("micro_store_operations_total", { backend: "memory", operation: "write", outcome: "succeeded" }))
        .toBeGreaterThanOrEqual(1)
      expect(count("micro_store_operations_total", { backend: "memory", operation: "read", outcome: "failed" }))
        .toBeGreaterThanOrEqual(1)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Client.layer(),
          Server.layer(Testing, { name: "metered", address: "memory:0" }).pipe(Layer.provide(handlers("m1"))),
          Broker.layerMemory,
          Store.layerMemory()
        ).pipe(Layer.provideMerge(Infra), Layer.provide(Debug.layerMetrics))
      )
    ))

  it("the Prometheus text escapes label values and ends with a newline", () => {
    const text = render({
      service: "a\"b\\c\nd",
      node: "n",
      uptimeMillis: 1,
      endpoints: [],
      connections: { open: 0, accepted: 0, refused: 0 },
      bytes: { received: 0, sent: 0 },
      broker: { published: 0, publishFailed: 0, delivered: 0, deliveryFailed: 0 },
      registry: {
        registrations: 0,
        registrationFailures: 0,
        lookups: 0,
        lookupFailures: 0,
        staleServed: 0,
        watchEvents: 0
      },
      memory: { rss: 1, heapUsed: 1, heapTotal: 1, external: 1 },
      eventLoopDelayMillis: { min: 0, mean: 0, max: 0, p50: 0, p99: 0 },
      gc: { count: 0, pauseMillis: 0 }
    })
    expect(text).toContain(`service="a\\"b\\\\c\\nd"`)
    expect(text.endsWith("\n")).toBe(true)
  })
})
