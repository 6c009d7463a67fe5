/**
 * The HTTP broker in one process (publisher and subscribers share a memory registry, messages still go over
 * HTTP on loopback). The cross-process suite is test/process/broker.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Broker from "../src/Broker.js"
import * as HttpBroker from "../src/HttpBroker.js"
import * as Registry from "../src/Registry.js"
import { brokerContract, eventually, localSubscriber } from "./support/brokerContract.js"

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

describe("HTTP broker (one process)", () => {
  it.scopedLive("a subscription is a registry node with its endpoint; closing it deregisters", () =>
    Effect.gen(function*() {
      const received: Array<string> = []
      const scoped = yield* Effect.scoped(Effect.gen(function*() {
        yield* Broker.subscribe("reg.topic", (m) => Effect.sync(() => { received.push(new TextDecoder().decode(m.body)) }), { queue: "q1" })
        const nodes = yield* nodesOf("reg.topic")
        expect(nodes.length).toBe(1)
        expect(nodes[0]!.metadata).toMatchObject({ broker: "http", topic: "reg.topic", queue: "q1" })
        expect(nodes[0]!.address).toMatch(/^127\.0\.0\.1:\d+$/)
        const response = yield* Effect.promise(() =>
          fetch(`http://${nodes[0]!.address}${nodes[0]!.metadata.path}`, { method: "POST", body: "hello", headers: { "content-type": "text/plain" } })
        )
        expect(response.status).toBe(204)
        return nodes[0]!
      }))
      expect(received).toEqual(["hello"])
      expect(yield* nodesOf("reg.topic")).toEqual([])
      // The endpoint no longer knows the subscription.
      const response = yield* Effect.promise(() =>
        fetch(`http://${scoped.address}${scoped.metadata.path}`, { method: "POST", body: "late" }).catch(() => ({ status: 0 }))
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
        nodes: [{ id: "dead", address: "127.0.0.1:1", metadata: { broker: "http", topic: "stale", queue: "g", path: "/broker/dead" } }]
      })
      const got: Array<string> = []
      yield* Broker.subscribe("stale", (m) => Effect.sync(() => { got.push(new TextDecoder().decode(m.body)) }), { queue: "g" })
      for (let i = 0; i < 10; i++) yield* Broker.publish("stale", new TextEncoder().encode(String(i)))
      expect(got.length).toBe(10)

      // A dead broadcast subscriber is skipped; a dead queue group with no live member is Unreachable.
      yield* registry.register({
        name: "micro.broker.dead",
        version: "1",
        metadata: {},
        endpoints: [],
        nodes: [
          { id: "b", address: "127.0.0.1:1", metadata: { broker: "http", topic: "dead", path: "/broker/b" } },
          { id: "q", address: "127.0.0.1:1", metadata: { broker: "http", topic: "dead", queue: "only", path: "/broker/q" } }
        ]
      })
      const result = yield* Effect.either(Broker.publish("dead", new Uint8Array([1])))
      expect(Either.isLeft(result) && result.left.failures).toEqual([
        expect.objectContaining({ subscriber: "q", queue: "only", reason: "Unreachable" })
      ])
    }).pipe(Effect.provide(layer)))

  it.scopedLive("fire-and-forget under load: pipelined batches keep order; a full outbox applies backpressure", () =>
    Effect.gen(function*() {
      const got: Array<number> = []
      yield* Broker.subscribe("flood", (m) =>
        Effect.sync(() => { got.push(new DataView(m.body.buffer, m.body.byteOffset).getUint32(0)) }))
      const total = 20_000
      for (let i = 0; i < total; i++) {
        const body = new Uint8Array(4)
        new DataView(body.buffer).setUint32(0, i)
        yield* Broker.publish("flood", body, { fireAndForget: true })
      }
      yield* eventually(Effect.sync(() => got.length), (n) => n === total, "20 seconds")
      expect(got.every((value, index) => value === index)).toBe(true)
    }).pipe(Effect.provide(HttpBroker.layer({ maxPending: 500, maxBatchMessages: 200 }).pipe(Layer.provideMerge(Registry.layerMemory)))))

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
      yield* Broker.subscribe("many", (m) => m.body[0] === 7 ? Effect.fail("seven") : Effect.sync(() => { handled++ }))
      const results = yield* Effect.forEach(
        Array.from({ length: 2000 }, (_, i) => i),
        (i) => Effect.either(Broker.publish("many", new Uint8Array([i % 10]))),
        { concurrency: 256 }
      )
      expect(results.filter(Either.isLeft).length).toBe(200)
      expect(handled).toBe(1800)
    }).pipe(Effect.provide(layer)))
})
