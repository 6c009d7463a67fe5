import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Broker from "../src/Broker.js"
import * as Subscriber from "../src/Subscriber.js"
import * as Topic from "../src/Topic.js"
import { brokerContract, localSubscriber } from "./support/brokerContract.js"
import { eventually } from "./support/eventually.js"

brokerContract({
  name: "memory",
  layer: Broker.layerMemory,
  subscriber: localSubscriber,
  awaitSubscribers: () => Effect.void,
  reportsHandlerFailures: true,
  testTimeout: 10_000
})

const Ping = Topic.make("ping", Schema.Struct({ n: Schema.Number }))

describe("Broker (memory) specifics", () => {
  it.scoped("autoAck false: a handler that does not ack fails the delivery; one that acks succeeds even if it fails after", () =>
    Effect.gen(function*() {
      yield* Broker.subscribe("no-ack", () => Effect.void, { autoAck: false })
      const missing = yield* Effect.either(Broker.publish("no-ack", new Uint8Array([1])))
      expect(Either.isLeft(missing) && missing.left.failures[0]!.reason).toBe("NotAcknowledged")

      yield* Broker.subscribe("ack", (message) => Effect.zipRight(message.ack, Effect.fail("late")), { autoAck: false })
      expect(Either.isRight(yield* Effect.either(Broker.publish("ack", new Uint8Array([1]))))).toBe(true)
    }).pipe(Effect.provide(Broker.layerMemory)))

  it.scoped("a defect in a handler is a HandlerFailed delivery, not a crash", () =>
    Effect.gen(function*() {
      yield* Broker.subscribe("die", () => Effect.die(new Error("boom")))
      const result = yield* Effect.either(Broker.publish("die", new Uint8Array([1])))
      expect(Either.isLeft(result) && result.left.failures[0]).toMatchObject({ reason: "HandlerFailed" })
      expect(Either.isLeft(result) && result.left.failures[0]!.detail).toContain("boom")
    }).pipe(Effect.provide(Broker.layerMemory)))

  it.scoped("timeout: a slow handler gives a Timeout error when publish has a timeout", () =>
    Effect.gen(function*() {
      yield* Broker.subscribe("slow", () => Effect.never)
      const fiber = yield* Effect.fork(
        Effect.either(Broker.publish("slow", new Uint8Array([1]), { timeout: "1 second" }))
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("2 seconds")
      const result = yield* fiber.await.pipe(Effect.flatten)
      expect(Either.isLeft(result) && result.left.reason).toBe("Timeout")
    }).pipe(Effect.provide(Broker.layerMemory)))

  it.live("Subscriber.layer subscribes while the layer lives and unsubscribes when it is released", () =>
    Effect.gen(function*() {
      const seen: Array<number> = []
      const broker = yield* Broker.makeMemory
      const brokerLayer = Layer.succeed(Broker.Broker, broker)
      const service = Subscriber.layer(Ping, ({ n }) =>
        Effect.sync(() => {
          seen.push(n)
        }))
      yield* Effect.scoped(
        Layer.build(service.pipe(Layer.provide(brokerLayer))).pipe(
          Effect.zipRight(Topic.publish(Ping, { n: 1 }).pipe(Effect.provide(brokerLayer)))
        )
      )
      yield* Topic.publish(Ping, { n: 2 }).pipe(Effect.provide(brokerLayer))
      yield* eventually(Effect.sync(() => seen), (s) => s.length >= 1, "1 second")
      expect(seen).toEqual([1])
    }))

  it.scoped("headers keep their values, keys lowercased; the handler runs with the subscriber's context", () =>
    Effect.gen(function*() {
      class Prefix extends Effect.Tag("test/Prefix")<Prefix, { readonly value: string }>() {}
      const got: Array<string> = []
      yield* Broker.subscribe("ctx", (message) =>
        Effect.map(Prefix, (p) => {
          got.push(`${p.value}:${message.headers["x-id"]}`)
        })).pipe(
          Effect.provideService(Prefix, { value: "p" })
        )
      yield* Broker.publish("ctx", new Uint8Array(), { headers: { "X-Id": "A" } })
      expect(got).toEqual(["p:A"])
    }).pipe(Effect.provide(Broker.layerMemory)))
})

describe("Topic", () => {
  const Reading = Topic.make("readings", Schema.Struct({ sensor: Schema.String, value: Schema.Number }), {
    contentType: "application/msgpack"
  })

  it.scoped("a topic's content-type is used to publish and the message's to decode; unknown content-types are BadRequest", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      yield* Topic.subscribe(Reading, (reading, message) =>
        Effect.sync(() => {
          seen.push(`${message.contentType} ${reading.sensor}=${reading.value}`)
        }))
      yield* Topic.publish(Reading, { sensor: "a", value: 1 })
      yield* Topic.publish(Reading, { sensor: "b", value: 2 }, { contentType: "application/json" })
      expect(seen).toEqual(["application/msgpack a=1", "application/json b=2"])

      const unknown = yield* Effect.either(
        Topic.publish(Reading, { sensor: "c", value: 3 }, { contentType: "text/x-nope" })
      )
      expect(Either.isLeft(unknown) && unknown.left._tag).toBe("BadRequest")

      const encoded = yield* Topic.encode(Reading, { sensor: "d", value: 4 })
      expect(encoded.contentType).toBe("application/msgpack")
      const decoded = yield* Topic.decode(Reading, {
        topic: "readings",
        body: encoded.body,
        contentType: encoded.contentType,
        headers: {},
        ack: Effect.void
      })
      expect(decoded).toEqual({ sensor: "d", value: 4 })
      expect(Topic.isTopic(Reading)).toBe(true)
      expect(Topic.isTopic({ name: "x" })).toBe(false)
    }).pipe(Effect.provide(Broker.layerMemory)))

  it.scoped("bytes of the wrong shape published raw are rejected before the handler; the publisher sees Rejected", () =>
    Effect.gen(function*() {
      let calls = 0
      yield* Topic.subscribe(Reading, () =>
        Effect.sync(() => {
          calls++
        }))
      const result = yield* Effect.either(
        Broker.publish("readings", new Uint8Array([0xc1]), { contentType: "application/msgpack" })
      )
      expect(Either.isLeft(result) && result.left.failures.map((f) => f.reason)).toEqual(["Rejected"])
      expect(calls).toBe(0)
    }).pipe(Effect.provide(Broker.layerMemory)))
})
