/**
 * The HTTP broker under faulty publishers and subscribers, across processes (issue 22): the subscriber runs
 * in a spawned process (fixtures/brokerSubscriber.ts), this process publishes through the HTTP broker (mdns on
 * loopback) and plays the faulty clients on raw sockets (test/support/rawHttp.ts).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as net from "node:net"
import * as Broker from "../../src/Broker.js"
import * as CachedRegistry from "../../src/CachedRegistry.js"
import * as HttpBroker from "../../src/HttpBroker.js"
import * as MdnsRegistry from "../../src/MdnsRegistry.js"
import * as Registry from "../../src/Registry.js"
import { eventually } from "../support/eventually.js"
import { spawnFixture } from "../support/processes.js"
import { connect, dribble, postHead, statusOf } from "../support/rawHttp.js"

const fixture = "test/process/fixtures/brokerSubscriber.ts"
const mdnsPort = 20000 + Math.floor(Math.random() * 20000)

const layer = HttpBroker.layer().pipe(
  Layer.provideMerge(CachedRegistry.layer()),
  Layer.provide(
    MdnsRegistry.layer({ ...MdnsRegistry.loopback, port: mdnsPort, queryTimeout: "100 millis", queryRetries: 1 })
  )
)

const nodesOf = (topic: string) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.getService(`micro.broker.${topic}`).pipe(
      Effect.map((services) => services.flatMap((s) => s.nodes)),
      Effect.orElseSucceed(() => [])
    ))

const bodiesOf = (lines: ReadonlyArray<string>): Array<string> =>
  lines.filter((line) => line.startsWith("MSG ")).map((line) => (JSON.parse(line.slice(4)) as { body: string }).body)

const spawnSubscriber = (topic: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const child = yield* spawnFixture(fixture, { TOPIC: topic, MODE: "ok", MDNS_PORT: String(mdnsPort), ...env })
    const { endpoint, id } = JSON.parse(child.ready) as { id: string; endpoint: string }
    yield* eventually(nodesOf(topic), (nodes) => nodes.length === 1, "15 seconds")
    return { id, endpoint, child, bodies: () => bodiesOf(child.lines) }
  })

/** A second publisher (own connection) that knows the subscriber from a memory registry. */
const publisherOf = (topic: string, sub: { readonly id: string; readonly endpoint: string }) => {
  const url = new URL(sub.endpoint)
  return HttpBroker.layer().pipe(
    Layer.provideMerge(Layer.effectDiscard(Effect.flatMap(Registry.Registry, (registry) =>
      registry.register({
        name: `micro.broker.${topic}`,
        version: "1",
        metadata: {},
        endpoints: [],
        nodes: [{ id: sub.id, address: url.host, metadata: { broker: "http", topic, path: url.pathname } }]
      })))),
    Layer.provideMerge(Registry.layerMemory)
  )
}

const bytes = (text: string) => new TextEncoder().encode(text)

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(
    Effect.timed(effect),
    ([duration, value]) => ({
      millis: Number(
        duration.value._tag === "Millis"
          ? duration.value.millis
          : Number((duration.value as { nanos: bigint }).nanos) / 1e6
      ),
      value
    })
  )

describe("HTTP broker under faults (cross-process)", () => {
  it.scopedLive(
    "A sends its body slowly, B disconnects while queued, C is still delivered promptly",
    () =>
      Effect.gen(function*() {
        const topic = `wedge.${process.pid}`
        const sub = yield* spawnSubscriber(topic, { BODY_TIMEOUT_MS: "3000" })

        // A: headers, then 1 byte every 100 ms of a 1000-byte body (would take 100 s).
        const a = yield* connect(sub.endpoint)
        a.write(postHead(sub.endpoint, 1000))
        yield* dribble(a, "a".repeat(1000), 100)

        // X: a message whose handler holds the subscription for 1.5 s.
        const x = yield* Effect.fork(Broker.publish(topic, bytes("sleep:1500")))
        yield* Effect.promise(() => sub.child.waitForLine((line) => line.includes("sleep:1500")))

        // B: a complete POST queued behind X, whose client disconnects while it waits.
        const b = yield* connect(sub.endpoint)
        b.write(postHead(sub.endpoint, 1) + "b")
        // D: another publisher (its own connection) whose timeout fires while D is queued: undici aborts by
        // closing the connection, as in the report.
        const d = yield* Effect.flip(Broker.publish(topic, bytes("d"), { timeout: "300 millis" })).pipe(
          Effect.provide(publisherOf(topic, sub))
        )
        expect(d.reason).toBe("Timeout")
        b.socket.destroy()

        // C: delivered as soon as X is done (≈ 1 s from here), not held by A, B or D.
        const c = yield* timed(Broker.publish(topic, bytes("c")))
        expect(c.millis).toBeLessThan(3000)
        yield* Effect.fromFiber(x).pipe(Effect.orDie)
        // The subscriber's stdout reaches this process after the publish result: wait for the lines.
        yield* eventually(Effect.sync(sub.bodies), (bodies) => bodies.length >= 2, "5 seconds")
        expect(sub.bodies()).toEqual(["sleep:1500", "c"])

        // A is cut at its body deadline with 408 and the connection closed.
        const aText = yield* Effect.promise(() => a.closed).pipe(Effect.timeout("5 seconds"), Effect.orDie)
        expect(statusOf(aText)).toBe(408)

        // And the subscription still serves.
        yield* Broker.publish(topic, bytes("e"))
        yield* eventually(Effect.sync(sub.bodies), (bodies) => bodies.length >= 3, "5 seconds")
        expect(sub.bodies()).toEqual(["sleep:1500", "c", "e"])
      }).pipe(Effect.provide(layer)),
    60_000
  )

  it.scopedLive(
    "a slow body cannot hold other publishers; it is cut at the body deadline",
    () =>
      Effect.gen(function*() {
        const topic = `slowbody.${process.pid}`
        const sub = yield* spawnSubscriber(topic, { BODY_TIMEOUT_MS: "1500" })
        const slow = yield* Effect.forEach([1, 2, 3], () => connect(sub.endpoint))
        for (const client of slow) {
          client.write(postHead(sub.endpoint, 100))
          yield* dribble(client, "s".repeat(100), 200)
        }
        const started = Date.now()
        for (let i = 0; i < 5; i++) {
          const publish = yield* timed(Broker.publish(topic, bytes(`m${i}`)))
          expect(publish.millis).toBeLessThan(1000)
        }
        const texts = yield* Effect.forEach(slow, (client) => Effect.promise(() => client.closed)).pipe(
          Effect.timeout("6 seconds"),
          Effect.orDie
        )
        expect(texts.map(statusOf)).toEqual([408, 408, 408])
        // Cut around the deadline (1.5 s after the headers), not at Node's own request timeout (≥ 12.5 s here).
        expect(Date.now() - started).toBeLessThan(5000)
        yield* eventually(Effect.sync(sub.bodies), (bodies) => bodies.length >= 5, "5 seconds")
        expect(sub.bodies()).toEqual(["m0", "m1", "m2", "m3", "m4"])
      }).pipe(Effect.provide(layer)),
    60_000
  )

  it.scopedLive(
    "a subscriber host that stopped answering (SYN unanswered) fails at the connect timeout, then fast while ejected",
    () =>
      Effect.gen(function*() {
        const topic = `blackhole.${process.pid}`
        const hole = yield* spawnFixture("test/process/fixtures/brokerBlackhole.ts")
        const address = `127.0.0.1:${hole.ready}`
        // Fill the accept queue (nothing accepts): later connection attempts get no SYN-ACK.
        yield* Effect.forEach([1, 2, 3, 4], () =>
          Effect.acquireRelease(
            Effect.sync(() => net.connect({ host: "127.0.0.1", port: Number(hole.ready) }).on("error", () => {})),
            (socket) => Effect.sync(() => socket.destroy())
          ))
        const publisher = HttpBroker.layer({ connectTimeout: "500 millis" }).pipe(
          Layer.provideMerge(Layer.effectDiscard(Effect.flatMap(Registry.Registry, (registry) =>
            registry.register({
              name: `micro.broker.${topic}`,
              version: "1",
              metadata: {},
              endpoints: [],
              nodes: [{ id: "vanished", address, metadata: { broker: "http", topic, path: "/broker/vanished" } }]
            })))),
          Layer.provideMerge(Registry.layerMemory)
        )
        yield* Effect.gen(function*() {
          const first = yield* timed(Effect.flip(Broker.publish(topic, bytes("1"))))
          expect(first.value.failures.map((f) => [f.subscriber, f.reason])).toEqual([["vanished", "Unreachable"]])
          expect(first.value.failures[0]!.detail).toContain("UND_ERR_CONNECT_TIMEOUT")
          // At the connect timeout, not the 10 s publish timeout.
          expect(first.millis).toBeLessThan(3000)
          const second = yield* timed(Effect.flip(Broker.publish(topic, bytes("2"))))
          expect(second.value.failures[0]!.detail).toContain("ejected")
          expect(second.millis).toBeLessThan(300)
        }).pipe(Effect.provide(publisher))
      }),
    30_000
  )

  it.scopedLive(
    "a SIGKILLed broadcast subscriber is reported Unreachable per subscriber, then fails fast while ejected",
    () =>
      Effect.gen(function*() {
        const topic = `deadbroadcast.${process.pid}`
        const live = yield* spawnSubscriber(topic)
        const dead = yield* spawnFixture(fixture, { TOPIC: topic, MODE: "ok", MDNS_PORT: String(mdnsPort) })
        const deadId = (JSON.parse(dead.ready) as { id: string }).id
        yield* eventually(nodesOf(topic), (nodes) => nodes.length === 2, "15 seconds")
        yield* Broker.publish(topic, bytes("before"))
        dead.kill("SIGKILL")
        yield* Effect.promise(() => dead.exited)
        // Still registered (TTL 90 s): the publisher is told, per subscriber, instead of a silent loss.
        expect((yield* nodesOf(topic)).length).toBe(2)
        const first = yield* Effect.flip(Broker.publish(topic, bytes("after-1")))
        expect(first.reason).toBe("DeliveryFailed")
        expect(first.failures.map((f) => [f.subscriber, f.queue, f.reason])).toEqual([[
          deadId,
          undefined,
          "Unreachable"
        ]])
        // Ejected: the next publishes fail for it without trying to connect; the live one keeps getting them.
        const second = yield* timed(Effect.flip(Broker.publish(topic, bytes("after-2"))))
        expect(second.value.failures.map((f) => f.reason)).toEqual(["Unreachable"])
        expect(second.value.failures[0]!.detail).toContain("ejected")
        yield* eventually(Effect.sync(live.bodies), (bodies) => bodies.length === 3)
        expect(live.bodies()).toEqual(["before", "after-1", "after-2"])
        // Fire-and-forget publishes do not fail (failures are dropped).
        yield* Broker.publish(topic, bytes("after-3"), { fireAndForget: true })
      }).pipe(Effect.provide(layer)),
    60_000
  )
})
