/**
 * The HTTP broker in one process (publisher and subscribers share a memory registry, messages still go over
 * HTTP on loopback). The cross-process suite is test/process/broker.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as TestClock from "effect/TestClock"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as Broker from "../src/Broker.js"
import * as CachedRegistry from "../src/CachedRegistry.js"
import * as HttpBroker from "../src/HttpBroker.js"
import * as Registry from "../src/Registry.js"
import { brokerContract, localSubscriber } from "./support/brokerContract.js"
import { eventually } from "./support/eventually.js"
import { connect, postHead, statusOf } from "./support/rawHttp.js"

const nodesOf = (topic: string) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.getService(`micro.broker.${topic}`).pipe(
      Effect.map((services) => services.flatMap((s) => s.nodes)),
      Effect.orElseSucceed(() => [])
    ))

const layer = HttpBroker.layer().pipe(Layer.provideMerge(Registry.layerMemory))

brokerContract({
  name: "http (one process)",
  layer,
  subscriber: localSubscriber,
  awaitSubscribers: (topic, count) => eventually(nodesOf(topic), (nodes) => nodes.length === count),
  reportsHandlerFailures: true,
  testTimeout: 20_000
})

// The publisher reads the cached registry synchronously on its hot path: same contract through it.
brokerContract({
  name: "http over the cached registry",
  layer: HttpBroker.layer().pipe(
    Layer.provideMerge(CachedRegistry.layer().pipe(Layer.provideMerge(Registry.layerMemory)))
  ),
  subscriber: localSubscriber,
  awaitSubscribers: (topic, count) => eventually(nodesOf(topic), (nodes) => nodes.length === count),
  reportsHandlerFailures: true,
  testTimeout: 20_000
})

/** A hand-written subscriber endpoint (plain node:http) that answers batch POSTs as `reply` says; counts requests. */
const fakeEndpoint = (reply: (request: http.IncomingMessage, response: http.ServerResponse) => void, port = 0) =>
  Effect.acquireRelease(
    Effect.async<{ readonly address: string; readonly requests: () => number; readonly server: http.Server }>(
      (resume) => {
        let requests = 0
        const server = http.createServer((request, response) => {
          requests++
          request.resume()
          request.on("end", () => reply(request, response))
        })
        server.listen(port, "127.0.0.1", () =>
          resume(Effect.succeed({
            address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
            requests: () => requests,
            server
          })))
      }
    ),
    ({ server }) =>
      Effect.async<void>((resume) => {
        server.closeAllConnections()
        server.close(() => resume(Effect.void))
      })
  )

const registerNodes = (topic: string, nodes: ReadonlyArray<{ id: string; address: string; queue?: string }>) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.register({
      name: `micro.broker.${topic}`,
      version: "1",
      metadata: {},
      endpoints: [],
      nodes: nodes.map(({ address, id, queue }) => ({
        id,
        address,
        metadata: { broker: "http", topic, path: `/broker/${id}`, ...(queue !== undefined ? { queue } : {}) }
      }))
    }))

const failuresOf = (topic: string) =>
  Effect.flip(Broker.publish(topic, new TextEncoder().encode("x"))).pipe(
    Effect.map((error) => ({
      reason: error.reason,
      failures: error.failures.map((f) => ({ reason: f.reason, detail: f.detail }))
    }))
  )

describe("HTTP broker: replies the publisher must map", () => {
  it.scopedLive("error statuses, malformed and oversized replies, dropped connections become typed failures", () =>
    Effect.gen(function*() {
      const json = (status: number, body: string) => (_: http.IncomingMessage, response: http.ServerResponse) => {
        response.writeHead(status, { "content-type": "application/json" })
        response.end(body)
      }
      const failing = yield* fakeEndpoint(json(500, JSON.stringify({ reason: "HandlerFailed", detail: "boom" })))
      const rejecting = yield* fakeEndpoint(json(400, JSON.stringify({ reason: "Rejected", detail: "bad" })))
      const malformed = yield* fakeEndpoint(json(200, "[not json"))
      const wrongCount = yield* fakeEndpoint(json(200, "[null,null,null]"))
      const oversized = yield* fakeEndpoint(json(200, JSON.stringify("x".repeat(4096))))
      const dropping = yield* fakeEndpoint((request) => request.socket.destroy())
      yield* registerNodes("fail.500", [{ id: "a", address: failing.address }])
      yield* registerNodes("fail.400", [{ id: "a", address: rejecting.address }])
      yield* registerNodes("fail.malformed", [{ id: "a", address: malformed.address }])
      yield* registerNodes("fail.count", [{ id: "a", address: wrongCount.address }])
      yield* registerNodes("fail.oversized", [{ id: "a", address: oversized.address }])
      yield* registerNodes("fail.dropped", [{ id: "a", address: dropping.address }])

      expect(yield* failuresOf("fail.500")).toEqual({
        reason: "DeliveryFailed",
        failures: [{ reason: "Unreachable", detail: "500: boom" }]
      })
      expect(yield* failuresOf("fail.400")).toEqual({
        reason: "DeliveryFailed",
        failures: [{ reason: "Rejected", detail: "400: bad" }]
      })
      const malformedReply = yield* failuresOf("fail.malformed")
      expect(malformedReply.failures[0]).toMatchObject({
        reason: "Unreachable",
        detail: expect.stringContaining("malformed batch reply")
      })
      const wrongCountReply = yield* failuresOf("fail.count")
      expect(wrongCountReply.failures[0]).toMatchObject({
        reason: "Unreachable",
        detail: expect.stringContaining("malformed batch reply")
      })
      const oversizedReply = yield* failuresOf("fail.oversized")
      expect(oversizedReply.failures[0]).toMatchObject({
        reason: "Unreachable",
        detail: expect.stringContaining("exceeds 1024 bytes")
      })
      const dropped = yield* failuresOf("fail.dropped")
      expect(dropped.failures[0]!.reason).toBe("Unreachable")
      // A batch that cannot be encoded (content-type over 65535 bytes) is refused, not left hanging.
      const hugeType = yield* Effect.flip(
        Broker.publish("fail.500", new Uint8Array([1]), { contentType: "x".repeat(70_000) })
      )
      expect(hugeType.failures[0]).toMatchObject({
        reason: "Rejected",
        detail: expect.stringContaining("cannot encode")
      })
      // The broker keeps working after all that (the dropped connection is replaced).
      expect(yield* failuresOf("fail.500")).toEqual({
        reason: "DeliveryFailed",
        failures: [{ reason: "Unreachable", detail: "500: boom" }]
      })
    }).pipe(Effect.provide(HttpBroker.layer({ maxBodySize: 1024 }).pipe(Layer.provideMerge(Registry.layerMemory)))))

  it.scopedLive("a queue member answering 404/503 is retried on another member; broadcast ones are skipped", () =>
    Effect.gen(function*() {
      const gone = yield* fakeEndpoint((_, response) => {
        response.writeHead(404, { "content-type": "application/json" })
        response.end(JSON.stringify({ reason: "Unreachable", detail: "no subscription" }))
      })
      const draining = yield* fakeEndpoint((_, response) => {
        response.writeHead(503, { "content-type": "application/json" })
        response.end(JSON.stringify({ reason: "Unreachable", detail: "shutting down" }))
      })
      const live = yield* fakeEndpoint((_, response) => {
        response.writeHead(204)
        response.end()
      })
      yield* registerNodes("retry.group", [
        { id: "gone", address: gone.address, queue: "g" },
        { id: "draining", address: draining.address, queue: "g" },
        { id: "live", address: live.address, queue: "g" }
      ])
      for (let i = 0; i < 30; i++) yield* Broker.publish("retry.group", new Uint8Array([i]))
      expect(live.requests()).toBe(30)
      // Random first member: 30 publishes hit the refusing ones too (odds of not: (1/3)^30).
      expect(gone.requests() + draining.requests()).toBeGreaterThan(0)

      // Every member refusing: the group's failure says so (Unreachable, the last member's detail).
      yield* registerNodes("retry.none", [
        { id: "gone", address: gone.address, queue: "g" },
        { id: "draining", address: draining.address, queue: "g" }
      ])
      const none = yield* failuresOf("retry.none")
      expect(none.failures).toHaveLength(1)
      expect(none.failures[0]!.reason).toBe("Unreachable")

      // Broadcast: a refusing subscriber no longer exists, so it is skipped (publish succeeds).
      yield* registerNodes("retry.broadcast", [{ id: "gone", address: gone.address }, {
        id: "live",
        address: live.address
      }])
      yield* Broker.publish("retry.broadcast", new Uint8Array([1]))
    }).pipe(Effect.provide(layer)))

  it.scopedLive("the publish timeout covers a batch queued behind a hanging one on the same connection", () =>
    Effect.gen(function*() {
      const hanging = yield* fakeEndpoint(() => {})
      yield* registerNodes("hang.queued", [{ id: "a", address: hanging.address }])
      const started = Date.now()
      const results = yield* Effect.forEach(
        [1, 2, 3, 4, 5, 6],
        (i) => Effect.flip(Broker.publish("hang.queued", new Uint8Array([i]))),
        { concurrency: "unbounded" }
      )
      expect(results.every((error) => error.reason === "Timeout")).toBe(true)
      expect(Date.now() - started).toBeLessThan(5_000)
    }).pipe(
      Effect.provide(
        HttpBroker.layer({ timeout: "300 millis", maxInFlight: 2 }).pipe(Layer.provideMerge(Registry.layerMemory))
      )
    ))

  it.scoped("the publish timeout follows the Clock (TestClock): nothing fails before it, everything after", () =>
    Effect.gen(function*() {
      const hanging = yield* fakeEndpoint(() => {})
      yield* registerNodes("hang.clock", [{ id: "a", address: hanging.address }])
      const fiber = yield* Effect.fork(Effect.flip(Broker.publish("hang.clock", new Uint8Array([1]))))
      // Let the POST reach the endpoint (real I/O), then move the test clock.
      yield* Effect.promise(async () => {
        const deadline = Date.now() + 5000
        while (hanging.requests() === 0 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve))
      })
      expect(hanging.requests()).toBe(1)
      // (A short timeout: the timing wheel ticks every 20 ms of TestClock time, each tick a scheduled sleep.)
      yield* TestClock.adjust("4900 millis")
      expect(yield* Fiber.poll(fiber)).toEqual(Option.none())
      yield* TestClock.adjust("200 millis")
      const error = yield* Fiber.join(fiber)
      expect(error.reason).toBe("Timeout")
    }).pipe(Effect.provide(HttpBroker.layer({ timeout: "5 seconds" }).pipe(Layer.provideMerge(Registry.layerMemory)))))
})

/** A fake endpoint whose answer can be switched: 204, 500, drop the connection, or hold the request. */
const switchableEndpoint = (port = 0) =>
  Effect.gen(function*() {
    let mode: "ok" | "fail" | "drop" | "hold" = "ok"
    const held: Array<http.ServerResponse> = []
    const endpoint = yield* fakeEndpoint((request, response) => {
      switch (mode) {
        case "ok":
          response.writeHead(204)
          return response.end()
        case "fail":
          response.writeHead(500, { "content-type": "application/json" })
          return response.end(JSON.stringify({ reason: "HandlerFailed", detail: "boom" }))
        case "drop":
          return request.socket.destroy()
        case "hold":
          held.push(response)
      }
    }, port)
    return {
      ...endpoint,
      held,
      set: (next: typeof mode) => {
        mode = next
      }
    }
  })

/** A port nothing listens on (connections to it are refused). */
const refusedPort = Effect.async<number>((resume) => {
  const server = http.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** Waits (real time, up to 5 s) for something the endpoint or the publisher does; TestClock does not move. */
const waitFor = (condition: () => boolean) =>
  Effect.promise(async () => {
    const deadline = Date.now() + 5000
    while (!condition() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 1))
  }).pipe(Effect.andThen(() => expect(condition()).toBe(true)))

const publishOnce = (topic: string) => Effect.either(Broker.publish(topic, new TextEncoder().encode("x")))
const detailOf = (result: Either.Either<void, Broker.BrokerError>) =>
  Either.isLeft(result) ? result.left.failures.map((f) => f.detail).join("; ") : "delivered"

describe("HTTP broker publisher: the endpoint breaker (TestClock)", () => {
  const withEjection = (
    ejection: HttpBroker.HttpBrokerOptions["ejection"],
    timeout: Duration.DurationInput = "10 seconds"
  ) => HttpBroker.layer({ ejection, timeout }).pipe(Layer.provideMerge(Registry.layerMemory))

  it.scoped("a refused endpoint is ejected at once; after baseTime exactly one trial batch; a failed trial doubles the ejection; a successful one closes", () =>
    Effect.gen(function*() {
      const port = yield* refusedPort
      yield* registerNodes("breaker.refused", [{ id: "a", address: `127.0.0.1:${port}` }])
      expect(detailOf(yield* publishOnce("breaker.refused"))).toContain("ECONNREFUSED")
      // Ejected at once: the next publish fails without a connection attempt.
      expect(detailOf(yield* publishOnce("breaker.refused"))).toMatch(/ECONNREFUSED \(endpoint ejected for 1000 ms\)$/)
      yield* TestClock.adjust("999 millis")
      expect(detailOf(yield* publishOnce("breaker.refused"))).toContain("ejected for 1000 ms")

      // The endpoint comes back (holding requests); at baseTime exactly one trial batch goes out.
      const endpoint = yield* switchableEndpoint(port)
      endpoint.set("hold")
      yield* TestClock.adjust("1 millis")
      const trial = yield* Effect.fork(publishOnce("breaker.refused"))
      yield* waitFor(() => endpoint.requests() === 1)
      for (let i = 0; i < 3; i++) expect(detailOf(yield* publishOnce("breaker.refused"))).toContain("ejected")
      // The trial fails (connection dropped): ejected again, for twice as long.
      endpoint.held[0]!.socket!.destroy()
      expect(Either.isLeft(yield* Fiber.join(trial))).toBe(true)
      expect(detailOf(yield* publishOnce("breaker.refused"))).toContain("ejected for 2000 ms")
      yield* TestClock.adjust("1999 millis")
      expect(detailOf(yield* publishOnce("breaker.refused"))).toContain("ejected for 2000 ms")
      expect(endpoint.requests()).toBe(1)

      // The next trial succeeds: closed, everything goes through again.
      endpoint.set("ok")
      yield* TestClock.adjust("1 millis")
      expect(detailOf(yield* publishOnce("breaker.refused"))).toBe("delivered")
      const after = yield* Effect.forEach([1, 2, 3, 4], () => publishOnce("breaker.refused"), {
        concurrency: "unbounded"
      })
      expect(after.map(detailOf)).toEqual(["delivered", "delivered", "delivered", "delivered"])
      expect(endpoint.requests()).toBeGreaterThanOrEqual(3)
    }).pipe(Effect.provide(withEjection(undefined))))

  it.scoped("5xx replies and publish timeouts count: consecutiveFailures in a row eject; an answer resets the count", () =>
    Effect.gen(function*() {
      const endpoint = yield* switchableEndpoint()
      yield* registerNodes("breaker.counted", [{ id: "a", address: endpoint.address }])
      endpoint.set("fail")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toBe("500: boom")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toBe("500: boom")
      endpoint.set("ok")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toBe("delivered")
      endpoint.set("fail")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toBe("500: boom")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toBe("500: boom")
      // The third failure in a row is a publish timeout.
      endpoint.set("hold")
      const timedOut = yield* Effect.fork(publishOnce("breaker.counted"))
      yield* waitFor(() => endpoint.requests() === 6)
      yield* TestClock.adjust("1100 millis")
      expect(detailOf(yield* Fiber.join(timedOut))).toContain("no reply from")
      expect(detailOf(yield* publishOnce("breaker.counted"))).toMatch(
        /no reply from .* \(endpoint ejected for 1000 ms\)$/
      )
      expect(endpoint.requests()).toBe(6)
    }).pipe(Effect.provide(withEjection({ consecutiveFailures: 3 }, "1 second"))))

  it.scoped("ejection: false never ejects", () =>
    Effect.gen(function*() {
      const port = yield* refusedPort
      yield* registerNodes("breaker.off", [{ id: "a", address: `127.0.0.1:${port}` }])
      for (let i = 0; i < 3; i++) expect(detailOf(yield* publishOnce("breaker.off"))).toContain("ECONNREFUSED")
      expect(detailOf(yield* publishOnce("breaker.off"))).not.toContain("ejected")
    }).pipe(Effect.provide(withEjection(false))))

  it.scoped("a queue group skips ejected members; with too few usable ones ejection is ignored (panic)", () =>
    Effect.gen(function*() {
      const refused = `127.0.0.1:${yield* refusedPort}`
      const b = yield* switchableEndpoint()
      yield* registerNodes("breaker.group", [{ id: "a", address: refused, queue: "g" }, {
        id: "b",
        address: b.address,
        queue: "g"
      }])
      // `a` refuses (retried on `b`) and is ejected at once; every message reaches `b`.
      for (let i = 0; i < 10; i++) expect(detailOf(yield* publishOnce("breaker.group"))).toBe("delivered")
      expect(b.requests()).toBe(10)
      // `b` drops its connection (not retried: the handler may have run) and is ejected too.
      b.set("drop")
      expect(detailOf(yield* publishOnce("breaker.group"))).toMatch(/UND_ERR_SOCKET$/)
      // No member usable: panic, ejection is ignored and messages are sent (a real attempt, not "ejected").
      const before = b.requests()
      for (let i = 0; i < 4; i++) {
        const detail = detailOf(yield* publishOnce("breaker.group"))
        expect(detail).toMatch(/ECONNREFUSED|UND_ERR_SOCKET/)
        expect(detail).not.toContain("ejected")
      }
      expect(b.requests()).toBeGreaterThan(before)
      b.set("ok")
      expect(detailOf(yield* publishOnce("breaker.group"))).toBe("delivered")
    }).pipe(Effect.provide(withEjection(undefined))))

  it.scoped("a queue group prefers the member with fewer batches in flight: a hung one gets one message, not half", () =>
    Effect.gen(function*() {
      const hung = yield* switchableEndpoint()
      const live = yield* switchableEndpoint()
      hung.set("hold")
      yield* registerNodes("breaker.load", [{ id: "hung", address: hung.address, queue: "g" }, {
        id: "live",
        address: live.address,
        queue: "g"
      }])
      let delivered = 0
      // One at a time: each publish has reached the hung member or been delivered by the live one.
      for (let i = 1; i <= 20; i++) {
        yield* Effect.fork(
          Effect.tap(publishOnce("breaker.load"), (result) => Effect.sync(() => Either.isRight(result) && delivered++))
        )
        yield* waitFor(() => hung.requests() + delivered === i)
      }
      expect(hung.requests()).toBeLessThanOrEqual(1)
      expect(delivered).toBeGreaterThanOrEqual(19)
    }).pipe(Effect.provide(withEjection(undefined))))
})

describe("HTTP broker (one process)", () => {
  it.scopedLive("a subscription is a registry node with its endpoint; closing it deregisters", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const scoped = yield* Effect.scoped(Effect.gen(function*() {
        yield* Broker.subscribe("reg.topic", (m) =>
          Effect.sync(() => {
            received.push(new TextDecoder().decode(m.body))
          }), { queue: "q1" })
        const nodes = yield* nodesOf("reg.topic")
        expect(nodes.length).toBe(1)
        expect(nodes[0]!.metadata).toMatchObject({ broker: "http", topic: "reg.topic", queue: "q1" })
        expect(nodes[0]!.address).toMatch(/^127\.0\.0\.1:\d+$/)
        const response = yield* Effect.promise(() =>
          fetch(`http://${nodes[0]!.address}${nodes[0]!.metadata.path}`, {
            method: "POST",
            body: "hello",
            headers: { "content-type": "text/plain" }
          })
        )
        expect(response.status).toBe(204)
        return nodes[0]!
      }))
      expect(received).toEqual(["hello"])
      expect(yield* nodesOf("reg.topic")).toEqual([])
      // The endpoint no longer knows the subscription.
      const response = yield* Effect.promise(() =>
        fetch(`http://${scoped.address}${scoped.metadata.path}`, { method: "POST", body: "late" }).catch(() => ({
          status: 0
        }))
      )
      expect([0, 404]).toContain(response.status)
    }).pipe(Effect.provide(layer)))

  it.scopedLive("a queue member that is gone (stale registry entry) is skipped: another member gets the message", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      // A stale node for a dead endpoint (nothing listens on port 1).
      yield* registry.register({
        name: "micro.broker.stale",
        version: "1",
        metadata: {},
        endpoints: [],
        nodes: [{
          id: "dead",
          address: "127.0.0.1:1",
          metadata: { broker: "http", topic: "stale", queue: "g", path: "/broker/dead" }
        }]
      })
      const got: Array<string> = []
      yield* Broker.subscribe("stale", (m) =>
        Effect.sync(() => {
          got.push(new TextDecoder().decode(m.body))
        }), { queue: "g" })
      for (let i = 0; i < 10; i++) yield* Broker.publish("stale", new TextEncoder().encode(String(i)))
      expect(got.length).toBe(10)

      // A dead broadcast subscriber is reported (per subscriber), as is a queue group with no live member.
      yield* registry.register({
        name: "micro.broker.dead",
        version: "1",
        metadata: {},
        endpoints: [],
        nodes: [
          { id: "b", address: "127.0.0.1:1", metadata: { broker: "http", topic: "dead", path: "/broker/b" } },
          {
            id: "q",
            address: "127.0.0.1:1",
            metadata: { broker: "http", topic: "dead", queue: "only", path: "/broker/q" }
          }
        ]
      })
      const result = yield* Effect.either(Broker.publish("dead", new Uint8Array([1])))
      const failures = Either.isLeft(result) ? result.left.failures : []
      expect(Either.isLeft(result) && result.left.reason).toBe("DeliveryFailed")
      expect([...failures].sort((x, y) => x.subscriber.localeCompare(y.subscriber))).toEqual([
        expect.objectContaining({ subscriber: "b", queue: undefined, reason: "Unreachable" }),
        expect.objectContaining({ subscriber: "q", queue: "only", reason: "Unreachable" })
      ])
    }).pipe(Effect.provide(layer)))

  it.scopedLive("fire-and-forget under load: pipelined batches keep order; a full outbox applies backpressure", () =>
    Effect.gen(function*() {
      const got: Array<number> = []
      yield* Broker.subscribe("flood", (m) =>
        Effect.sync(() => {
          got.push(new DataView(m.body.buffer, m.body.byteOffset).getUint32(0))
        }))
      const total = 20_000
      for (let i = 0; i < total; i++) {
        const body = new Uint8Array(4)
        new DataView(body.buffer).setUint32(0, i)
        yield* Broker.publish("flood", body, { fireAndForget: true })
      }
      yield* eventually(Effect.sync(() => got.length), (n) => n === total, "20 seconds")
      expect(got.every((value, index) => value === index)).toBe(true)
    }).pipe(
      Effect.provide(
        HttpBroker.layer({ maxPending: 500, maxBatchMessages: 200 }).pipe(Layer.provideMerge(Registry.layerMemory))
      )
    ))

  it.scopedLive("a hanging handler: the request timeout gives a Timeout failure, the publish timeout a Timeout error", () =>
    Effect.gen(function*() {
      yield* Broker.subscribe("hang", () => Effect.never)
      const perRequest = yield* Effect.either(Broker.publish("hang", new Uint8Array([1])))
      expect(Either.isLeft(perRequest) && perRequest.left.reason).toBe("Timeout")
      expect(Either.isLeft(perRequest) && perRequest.left.failures[0]!.reason).toBe("Timeout")
      const bounded = yield* Effect.either(Broker.publish("hang", new Uint8Array([2]), { timeout: "100 millis" }))
      expect(Either.isLeft(bounded) && bounded.left.reason).toBe("Timeout")
    }).pipe(Effect.provide(HttpBroker.layer({ timeout: "300 millis" }).pipe(Layer.provideMerge(Registry.layerMemory)))))

  it.scopedLive("many publishes in flight are batched and each still gets its own result", () =>
    Effect.gen(function*() {
      let handled = 0
      yield* Broker.subscribe("many", (m) =>
        m.body[0] === 7 ? Effect.fail("seven") : Effect.sync(() => {
          handled++
        }))
      const results = yield* Effect.forEach(
        Array.from({ length: 2000 }, (_, i) => i),
        (i) => Effect.either(Broker.publish("many", new Uint8Array([i % 10]))),
        { concurrency: 256 }
      )
      expect(results.filter(Either.isLeft).length).toBe(200)
      expect(handled).toBe(1800)
    }).pipe(Effect.provide(layer)))

  it.scopedLive("publishes made from separate callbacks in one turn of the event loop are gathered, not sent one by one", () =>
    Effect.gen(function*() {
      const endpoint = yield* fakeEndpoint((_request, response) => {
        response.writeHead(204)
        response.end()
      })
      yield* registerNodes("turn", [{ id: "sub", address: endpoint.address }])
      // Warm: the dispatcher exists and the connection is open.
      yield* Broker.publish("turn", new Uint8Array([0]))
      expect(endpoint.requests()).toBe(1)
      const runtime = yield* Effect.runtime<Broker.Broker>()
      // 64 handlers woken in the same check phase (as by replies or requests arriving together), each publishing.
      const published = yield* Effect.promise(() =>
        Promise.all(
          Array.from({ length: 64 }, (_, i) =>
            new Promise<void>((resolve, reject) =>
              setImmediate(() =>
                Runtime.runPromise(runtime)(Broker.publish("turn", new Uint8Array([i]))).then(resolve, reject)
              )
            ))
        )
      )
      expect(published.length).toBe(64)
      // One turn's 64 publishes: two batches of 32 (gathered, then split so that the subscriber starts on the
      // first while the second is sent), not 64 requests.
      expect(endpoint.requests()).toBe(1 + 2)
    }).pipe(Effect.provide(layer)))
})

describe("HTTP broker subscriber endpoint: limits and deadlines", () => {
  const limited = HttpBroker.layer({
    handlerTimeout: "300 millis",
    headersTimeout: "1 second",
    keepAliveTimeout: "500 millis",
    maxConnections: 3
  }).pipe(Layer.provideMerge(Registry.layerMemory))

  it.scopedLive("a handler past its deadline is interrupted (504 Timeout to the publisher); the next message is delivered", () =>
    Effect.gen(function*() {
      const got: Array<string> = []
      let interrupted = 0
      yield* Broker.subscribe("deadline", (m) => {
        const body = new TextDecoder().decode(m.body)
        return body === "hang"
          ? Effect.onInterrupt(Effect.never, () =>
            Effect.sync(() => {
              interrupted++
            }))
          : Effect.sync(() => {
            got.push(body)
          })
      })
      const hung = yield* Effect.flip(Broker.publish("deadline", new TextEncoder().encode("hang")))
      expect(hung.reason).toBe("Timeout")
      expect(hung.failures).toEqual([
        expect.objectContaining({ reason: "Timeout", detail: expect.stringContaining("handler did not finish") })
      ])
      expect(interrupted).toBe(1)
      const started = Date.now()
      yield* Broker.publish("deadline", new TextEncoder().encode("next"))
      expect(Date.now() - started).toBeLessThan(1000)
      expect(got).toEqual(["next"])
    }).pipe(Effect.provide(limited)))

  it.scopedLive("a client that disconnects during its handler: the handler is interrupted, the next request runs after its finalizers", () =>
    Effect.gen(function*() {
      const events: Array<string> = []
      let started!: () => void
      const handlerStarted = new Promise<void>((resolve) => {
        started = resolve
      })
      const subscription = yield* Broker.subscribe("disconnect", (m) => {
        const body = new TextDecoder().decode(m.body)
        if (body !== "hang") {
          return Effect.sync(() => {
            events.push(body)
          })
        }
        return Effect.sync(() => {
          events.push("hang started")
          started()
        }).pipe(
          Effect.zipRight(Effect.never),
          // A finalizer that takes a while: the subscription stays one-at-a-time through it.
          Effect.onInterrupt(() =>
            Effect.zipRight(
              Effect.sleep("300 millis"),
              Effect.sync(() => {
                events.push("hang finalized")
              })
            )
          )
        )
      })
      const url = subscription.endpoint!
      const hanging = yield* connect(url)
      hanging.write(postHead(url, 4) + "hang")
      yield* Effect.promise(() => handlerStarted)
      const next = yield* connect(url)
      next.write(postHead(url, 4) + "next")
      hanging.socket.destroy()
      yield* eventually(Effect.sync(() => statusOf(next.received())), (status) => status === 204, "5 seconds")
      expect(events).toEqual(["hang started", "hang finalized", "next"])
    }).pipe(Effect.provide(HttpBroker.layer().pipe(Layer.provideMerge(Registry.layerMemory)))))
  it.scopedLive("infinite header, body and handler deadlines are accepted (no limit)", () =>
    Effect.gen(function*() {
      const got: Array<number> = []
      yield* Broker.subscribe("unbounded", (m) =>
        Effect.sync(() => {
          got.push(m.body[0]!)
        }))
      yield* Broker.publish("unbounded", new Uint8Array([1]))
      expect(got).toEqual([1])
    }).pipe(Effect.provide(
      HttpBroker.layer({
        headersTimeout: Duration.infinity,
        bodyTimeout: Duration.infinity,
        handlerTimeout: Duration.infinity
      }).pipe(Layer.provideMerge(Registry.layerMemory))
    )))

  it.scopedLive("a bad %-escape, another path or another method get 400/404/405 with a JSON body", () =>
    Effect.gen(function*() {
      const subscription = yield* Broker.subscribe("escape", () => Effect.void)
      const ask = (url: string, method = "POST") =>
        Effect.promise(async () => {
          const reply = await fetch(url, method === "POST" ? { method, body: "x" } : { method })
          return {
            status: reply.status,
            allow: reply.headers.get("allow"),
            type: reply.headers.get("content-type"),
            body: await reply.json() as { reason: string; detail: string }
          }
        })
      const escape = yield* ask(subscription.endpoint!.replace(/\/broker\/.*$/, "/broker/%E0%A4%A"))
      expect(escape.status).toBe(400)
      expect(escape.type).toBe("application/json")
      expect(escape.body.reason).toBe("Rejected")
      expect(escape.body.detail).toContain("%-escape")
      const elsewhere = yield* ask(subscription.endpoint!.replace(/\/broker\/.*$/, "/other"))
      expect(elsewhere.status).toBe(404)
      expect(elsewhere.body.reason).toBe("Unreachable")
      const get = yield* ask(subscription.endpoint!, "GET")
      expect(get.status).toBe(405)
      expect(get.allow).toBe("POST")
      expect(get.body).toEqual({ reason: "Rejected", detail: "use POST" })
    }).pipe(Effect.provide(limited)))

  it.scopedLive("slow headers are cut at headersTimeout, idle keep-alive connections at keepAliveTimeout", () =>
    Effect.gen(function*() {
      const subscription = yield* Broker.subscribe("slowloris", () => Effect.void)
      const url = subscription.endpoint!
      const started = Date.now()
      const slow = yield* connect(url)
      slow.write(`POST ${new URL(url).pathname} HTTP/1.1\r\nhost: x\r\n`)
      const idle = yield* connect(url)
      idle.write(postHead(url, 1) + "i")
      const [slowText, idleText] = yield* Effect.promise(() => Promise.all([slow.closed, idle.closed])).pipe(
        Effect.timeout("5 seconds"),
        Effect.orDie
      )
      expect(statusOf(slowText)).toBe(408)
      expect(statusOf(idleText)).toBe(204)
      // Node checks request deadlines once a second: headersTimeout 1 s → closed within ≈ 2 s.
      expect(Date.now() - started).toBeLessThan(3500)
    }).pipe(Effect.provide(limited)))

  it.scopedLive("connections beyond maxConnections are dropped; the endpoint keeps serving", () =>
    Effect.gen(function*() {
      const got: Array<string> = []
      const subscription = yield* Broker.subscribe("conns", (m) =>
        Effect.sync(() => {
          got.push(new TextDecoder().decode(m.body))
        }))
      const url = subscription.endpoint!
      const held = yield* Effect.forEach([1, 2, 3], () => connect(url))
      // Each of the three is served (so accepted) before the fourth arrives.
      for (const client of held) client.write(postHead(url, 1) + "h")
      yield* eventually(
        Effect.sync(() => held.map((client) => statusOf(client.received()))),
        (statuses) => statuses.every((s) => s === 204)
      )
      const extra = yield* connect(url)
      extra.write(postHead(url, 1) + "x")
      const text = yield* Effect.promise(() => extra.closed).pipe(Effect.timeout("2 seconds"), Effect.orDie)
      expect(statusOf(text)).toBe(undefined)
      for (const client of held) client.socket.destroy()
      yield* eventually(
        Effect.promise(() => fetch(url, { method: "POST", body: "ok" }).then((r) => r.status, () => 0)),
        (status) => status === 204
      )
      expect(got).toEqual(["h", "h", "h", "ok"])
    }).pipe(Effect.provide(HttpBroker.layer({ maxConnections: 3 }).pipe(Layer.provideMerge(Registry.layerMemory)))))
})
