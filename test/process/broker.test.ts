/**
 * The HTTP broker across processes: subscribers run in spawned processes (fixtures/brokerSubscriber.ts),
 * discovered over mdns on loopback (private port); this process publishes through the cached mdns registry.
 * Runs the shared contract (3 subscriber processes for the queue-group exactly-once test), then raw HTTP
 * requests against a subscriber endpoint: a curl-style POST is delivered, bad input gets 4xx and the
 * subscriber keeps running.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Broker from "../../src/Broker.js"
import * as CachedRegistry from "../../src/CachedRegistry.js"
import * as HttpBroker from "../../src/HttpBroker.js"
import * as MdnsRegistry from "../../src/MdnsRegistry.js"
import * as Registry from "../../src/Registry.js"
import type { Received, SubscriberSpec } from "../support/brokerContract.js"
import { brokerContract } from "../support/brokerContract.js"
import { eventually } from "../support/eventually.js"
import { spawnFixture } from "../support/processes.js"

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

const messagesOf = (lines: ReadonlyArray<string>): Array<Received> =>
  lines.filter((line) => line.startsWith("MSG ")).map((line) => JSON.parse(line.slice(4)) as Received)

const spawnSubscriber = (spec: SubscriberSpec, extraEnv: Record<string, string> = {}) =>
  Effect.map(
    spawnFixture(fixture, {
      TOPIC: spec.topic,
      QUEUE: spec.queue ?? "",
      MODE: spec.mode ?? "ok",
      MDNS_PORT: String(mdnsPort),
      ...extraEnv
    }),
    (child) => {
      const { endpoint, id } = JSON.parse(child.ready) as { id: string; endpoint: string }
      return {
        id,
        endpoint,
        child,
        received: Effect.sync(() => messagesOf(child.lines)),
        close: Effect.promise(async () => {
          child.kill("SIGTERM")
          await Promise.race([child.exited, new Promise((resolve) => setTimeout(resolve, 5000))])
        })
      }
    }
  )

brokerContract({
  name: "http (subscribers in other processes, mdns discovery)",
  layer,
  subscriber: spawnSubscriber,
  awaitSubscribers: (topic, count) => eventually(nodesOf(topic), (nodes) => nodes.length === count, "15 seconds"),
  reportsHandlerFailures: true,
  testTimeout: 90_000
})

const post = (url: string, init: RequestInit) =>
  Effect.promise(async () => {
    const response = await fetch(url, init).catch((error) => {
      throw new Error(
        `${init.method} ${JSON.stringify(init.headers)} ${
          typeof init.body === "string" ? init.body.length : String(init.body)
        }: ${error.cause?.code}`
      )
    })
    return { status: response.status, text: await response.text() }
  })

describe("HTTP broker endpoint: raw requests", () => {
  it.scopedLive(
    "a plain POST (as curl sends) is delivered; bad input gets 4xx and the subscriber keeps running",
    () =>
      Effect.gen(function*() {
        const sub = yield* spawnSubscriber({ topic: "raw.orders", mode: "typed" }, { MAX_BODY_SIZE: "2048" })
        const json = { "content-type": "application/json" }

        // curl -X POST -H 'content-type: application/json' -H 'micro-header-trace: t1' -d '{"id":"o-1","n":1}' <endpoint>
        const ok = yield* post(sub.endpoint, {
          method: "POST",
          headers: { ...json, "micro-header-trace": "t1" },
          body: `{"id":"o-1","n":1}`
        })
        expect(ok.status).toBe(204)
        const first = yield* eventually(sub.received, (r) => r.length === 1)
        expect(JSON.parse(first[0]!.body)).toEqual({ id: "o-1", n: 1 })
        expect(first[0]!.headers).toEqual({ trace: "t1" })

        const invalidJson = yield* post(sub.endpoint, { method: "POST", headers: json, body: `{"id":` })
        expect(invalidJson.status).toBe(400)
        expect(JSON.parse(invalidJson.text).reason).toBe("Rejected")

        const wrongSchema = yield* post(sub.endpoint, { method: "POST", headers: json, body: `{"id":7,"n":"x"}` })
        expect(wrongSchema.status).toBe(400)
        expect(JSON.parse(wrongSchema.text).detail).toContain("Expected string")

        const unknownType = yield* post(sub.endpoint, {
          method: "POST",
          headers: { "content-type": "text/x-nope" },
          body: "x"
        })
        expect(unknownType.status).toBe(400)

        const oversized = yield* post(sub.endpoint, {
          method: "POST",
          headers: json,
          body: JSON.stringify({ id: "x".repeat(5000), n: 1 })
        })
        expect(oversized.status).toBe(413)

        // Chunked (no content-length) and oversized: the limit still holds. The endpoint stops reading at the
        // limit, so the client sees the 413 or, if it is still sending, a closed connection.
        const chunked = yield* post(sub.endpoint, {
          method: "POST",
          headers: json,
          body: new ReadableStream({
            start(controller) {
              for (let i = 0; i < 10; i++) controller.enqueue(new TextEncoder().encode("x".repeat(1000)))
              controller.close()
            }
          }),
          duplex: "half"
        } as RequestInit).pipe(Effect.catchAllDefect(() => Effect.succeed({ status: 0, text: "connection closed" })))
        expect([0, 413]).toContain(chunked.status)

        const malformedBatch = yield* post(sub.endpoint, {
          method: "POST",
          headers: { "content-type": "application/x-micro-batch" },
          body: new Uint8Array([0, 200, 1, 2])
        })
        expect(malformedBatch.status).toBe(400)

        const wrongTopic = yield* post(sub.endpoint, {
          method: "POST",
          headers: { ...json, "micro-topic": "other" },
          body: `{"id":"o","n":1}`
        })
        expect(wrongTopic.status).toBe(400)

        const unknownPath = yield* post(sub.endpoint.replace(/\/broker\/.*$/, "/broker/nope"), {
          method: "POST",
          body: "x"
        })
        expect(unknownPath.status).toBe(404)
        const get = yield* post(sub.endpoint, { method: "GET" })
        expect(get.status).toBe(405)

        // Still alive and delivering; none of the bad requests reached the handler.
        const after = yield* post(sub.endpoint, { method: "POST", headers: json, body: `{"id":"o-2","n":2}` })
        expect(after.status).toBe(204)
        const all = yield* eventually(sub.received, (r) => r.length === 2)
        expect(all.map((r) => JSON.parse(r.body).id)).toEqual(["o-1", "o-2"])
        expect(sub.child.process.exitCode).toBe(null)
      }),
    60_000
  )

  it.scopedLive(
    "a SIGKILLed queue member (still in the registry) is skipped: the other member gets every message",
    () =>
      Effect.gen(function*() {
        const topic = `kill.${process.pid}`
        const a = yield* spawnSubscriber({ topic, queue: "g" })
        const b = yield* spawnSubscriber({ topic, queue: "g" })
        yield* eventually(nodesOf(topic), (nodes) => nodes.length === 2, "15 seconds")
        b.child.kill("SIGKILL")
        yield* Effect.promise(() => b.child.exited)
        expect((yield* nodesOf(topic)).length).toBe(2)
        for (let i = 0; i < 20; i++) yield* Broker.publish(topic, new TextEncoder().encode(String(i)))
        const got = yield* eventually(a.received, (r) => r.length === 20)
        expect(got.map((r) => r.body)).toEqual(Array.from({ length: 20 }, (_, i) => String(i)))
      }).pipe(Effect.provide(layer)),
    60_000
  )
})
