/**
 * The broker contract: the same expectations run against every Broker layer (memory in-process, HTTP with
 * subscribers in other processes, NATS against a real nats-server). A harness says how to start a
 * subscriber (in this process or another) and how long discovery takes.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Broker from "../../src/Broker.js"
import * as Topic from "../../src/Topic.js"
import { eventually } from "./eventually.js"

/** A received message as a subscriber recorded it (body as UTF-8 text). */
export interface Received {
  readonly topic: string
  readonly body: string
  readonly contentType: string
  readonly headers: Readonly<Record<string, string>>
}

export interface SubscriberSpec {
  readonly topic: string
  readonly queue?: string | undefined
  /** ok: record; fail: record then fail; typed: decode as `Order` (only valid ones reach the handler and are recorded). */
  readonly mode?: "ok" | "fail" | "typed" | undefined
}

export interface SubscriberHandle {
  readonly id: string
  readonly received: Effect.Effect<ReadonlyArray<Received>>
  /** Unsubscribes (closes the subscription's scope, in whatever process holds it). */
  readonly close: Effect.Effect<void>
}

export interface BrokerHarness<R = never> {
  readonly name: string
  /** The publisher's broker (and whatever else the harness needs, e.g. its Registry). */
  readonly layer: Layer.Layer<Broker.Broker | R, unknown>
  readonly subscriber: (
    spec: SubscriberSpec
  ) => Effect.Effect<SubscriberHandle, unknown, Scope.Scope | Broker.Broker | R>
  /** Waits until a publisher sees exactly `count` subscriptions of the topic (discovery delay). */
  readonly awaitSubscribers: (topic: string, count: number) => Effect.Effect<void, unknown, Broker.Broker | R>
  /** Whether handler failures reach the publisher (HTTP, memory) or are only logged (NATS core). */
  readonly reportsHandlerFailures: boolean
  readonly testTimeout?: number | undefined
}

export const Order = Schema.Struct({ id: Schema.String, n: Schema.Number })
export type Order = typeof Order.Type

const text = (value: string): Uint8Array => new TextEncoder().encode(value)

let counter = 0
const uniqueTopic = (label: string): string =>
  `contract.${label}.${process.pid}.${Date.now().toString(36)}${(counter++).toString(36)}`

/** An in-process subscriber on the Broker in context (memory, or a second connection for others). */
export const localSubscriber = (
  spec: SubscriberSpec
): Effect.Effect<SubscriberHandle, unknown, Scope.Scope | Broker.Broker> =>
  Effect.gen(function*() {
    const outer = yield* Effect.scope
    const scope = yield* Scope.fork(outer, ExecutionStrategy.sequential)
    const received: Array<Received> = []
    const record = (message: Broker.Message, body: string) =>
      Effect.sync(() => {
        received.push({ topic: message.topic, body, contentType: message.contentType, headers: message.headers })
      })
    const options = { queue: spec.queue }
    const subscription = yield* (spec.mode === "typed"
      ? Topic.subscribe(Topic.make(spec.topic, Order), (order, message) =>
        record(message, JSON.stringify(order)), options)
      : Broker.subscribe(spec.topic, (message) => {
        const recorded = record(message, new TextDecoder().decode(message.body))
        return spec.mode === "fail"
          ? Effect.zipRight(recorded, Effect.fail(new Error("handler failed on purpose")))
          : recorded
      }, options)).pipe(Scope.extend(scope))
    return {
      id: subscription.id,
      received: Effect.sync(() => [...received]),
      close: Scope.close(scope, Exit.void)
    }
  })

export const brokerContract = <R = never>(harness: BrokerHarness<R>): void => {
  const timeout = harness.testTimeout ?? 60_000
  describe(`Broker contract: ${harness.name}`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, Broker.Broker | Scope.Scope | R>) =>
      effect.pipe(Effect.provide(harness.layer)) as Effect.Effect<A, unknown, Scope.Scope>

    it.scopedLive(
      "fan-out: every subscriber gets every message with headers and content-type, in order",
      () =>
        run(Effect.gen(function*() {
          const topic = uniqueTopic("fanout")
          const a = yield* harness.subscriber({ topic })
          const b = yield* harness.subscriber({ topic })
          yield* harness.awaitSubscribers(topic, 2)
          for (const i of [1, 2, 3]) {
            yield* Broker.publish(topic, text(`m${i}`), {
              contentType: "text/plain",
              headers: { "X-Trace": `t${i}`, tenant: "acme" }
            })
          }
          for (const sub of [a, b]) {
            const got = yield* eventually(sub.received, (r) => r.length >= 3)
            expect(got.map((r) => r.body)).toEqual(["m1", "m2", "m3"])
            expect(got[0]!.headers).toMatchObject({ "x-trace": "t1", tenant: "acme" })
            expect(got[2]!.contentType).toBe("text/plain")
            expect(got[0]!.topic).toBe(topic)
          }
        })),
      timeout
    )

    it.scopedLive("publishing to a topic nobody subscribes succeeds", () =>
      run(Effect.gen(function*() {
        const result = yield* Effect.either(Broker.publish(uniqueTopic("nobody"), text("x")))
        expect(Either.isRight(result)).toBe(true)
      })), timeout)

    it.scopedLive(
      "queue group: each message handled exactly once across 3 members; broadcast subscriber gets all",
      () =>
        run(Effect.gen(function*() {
          const topic = uniqueTopic("queue")
          const workers = yield* Effect.all([1, 2, 3].map(() => harness.subscriber({ topic, queue: "workers" })))
          const audit = yield* harness.subscriber({ topic })
          yield* harness.awaitSubscribers(topic, 4)
          const total = 300
          yield* Effect.forEach(
            Array.from({ length: total }, (_, i) => i),
            (i) => Broker.publish(topic, text(`job-${i}`)),
            { concurrency: 16, discard: true }
          )
          const expected = Array.from({ length: total }, (_, i) => `job-${i}`).sort()
          yield* eventually(audit.received, (r) => r.length >= total)
          const perWorker = yield* Effect.forEach(workers, (w) => w.received)
          const all = perWorker.flatMap((r) => r.map((m) => m.body))
          expect(all.length).toBe(total)
          expect([...all].sort()).toEqual(expected)
          expect(new Set(all).size).toBe(total)
          for (const got of perWorker) expect(got.length).toBeGreaterThan(0)
          expect((yield* audit.received).length).toBe(total)
        })),
      timeout
    )

    it.scopedLive(
      "unsubscribe: closing a subscription's scope stops its deliveries; others keep theirs",
      () =>
        run(Effect.gen(function*() {
          const topic = uniqueTopic("unsub")
          const a = yield* harness.subscriber({ topic })
          const b = yield* harness.subscriber({ topic })
          yield* harness.awaitSubscribers(topic, 2)
          yield* Broker.publish(topic, text("before"))
          yield* eventually(b.received, (r) => r.length === 1)
          yield* b.close
          yield* harness.awaitSubscribers(topic, 1)
          yield* Broker.publish(topic, text("after"))
          const got = yield* eventually(a.received, (r) => r.length === 2)
          expect(got.map((r) => r.body)).toEqual(["before", "after"])
          expect((yield* b.received).map((r) => r.body)).toEqual(["before"])
        })),
      timeout
    )

    it.scopedLive(
      "ordering per publisher: 200 fire-and-forget publishes arrive in order",
      () =>
        run(Effect.gen(function*() {
          const topic = uniqueTopic("order")
          const sub = yield* harness.subscriber({ topic })
          yield* harness.awaitSubscribers(topic, 1)
          for (let i = 0; i < 200; i++) yield* Broker.publish(topic, text(String(i)), { fireAndForget: true })
          const got = yield* eventually(sub.received, (r) => r.length >= 200)
          expect(got.map((r) => Number(r.body))).toEqual(Array.from({ length: 200 }, (_, i) => i))
        })),
      timeout
    )

    it.scopedLive(
      "handler failure: reported to the publisher where the broker can; the subscriber keeps running",
      () =>
        run(Effect.gen(function*() {
          const topic = uniqueTopic("fail")
          const sub = yield* harness.subscriber({ topic, mode: "fail" })
          yield* harness.awaitSubscribers(topic, 1)
          const first = yield* Effect.either(Broker.publish(topic, text("one")))
          if (harness.reportsHandlerFailures) {
            expect(Either.isLeft(first)).toBe(true)
            if (Either.isLeft(first)) {
              expect(first.left.reason).toBe("DeliveryFailed")
              expect(first.left.failures.map((f) => f.reason)).toEqual(["HandlerFailed"])
              expect(first.left.failures[0]!.detail).toContain("handler failed on purpose")
            }
          } else {
            expect(Either.isRight(first)).toBe(true)
          }
          yield* Effect.either(Broker.publish(topic, text("two")))
          const got = yield* eventually(sub.received, (r) => r.length >= 2)
          expect(got.map((r) => r.body)).toEqual(["one", "two"])
        })),
      timeout
    )

    it.scopedLive(
      "typed topic: valid values delivered decoded; invalid values fail at publish; bad bytes never reach the handler",
      () =>
        run(Effect.gen(function*() {
          const name = uniqueTopic("typed")
          const topic = Topic.make(name, Order)
          const sub = yield* harness.subscriber({ topic: name, mode: "typed" })
          yield* harness.awaitSubscribers(name, 1)
          yield* Topic.publish(topic, { id: "o-1", n: 1 })

          const invalid = yield* Effect.either(Topic.publish(topic, { id: 42, n: "x" } as unknown as Order))
          expect(Either.isLeft(invalid) && invalid.left._tag).toBe("CodecError")

          // Bytes that are not an Order, published around the typed layer.
          const wrongShape = yield* Effect.either(
            Broker.publish(name, text(`{"id":1}`), { contentType: "application/json" })
          )
          const notJson = yield* Effect.either(Broker.publish(name, text(`{nope`), { contentType: "application/json" }))
          if (harness.reportsHandlerFailures) {
            for (const result of [wrongShape, notJson]) {
              expect(Either.isLeft(result)).toBe(true)
              if (Either.isLeft(result)) expect(result.left.failures.map((f) => f.reason)).toEqual(["Rejected"])
            }
          }
          yield* Topic.publish(topic, { id: "o-2", n: 2 })
          const got = yield* eventually(sub.received, (r) => r.length >= 2)
          expect(got.map((r) => JSON.parse(r.body))).toEqual([{ id: "o-1", n: 1 }, { id: "o-2", n: 2 }])
        })),
      timeout
    )
  })
}
