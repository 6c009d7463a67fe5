/**
 * The NATS broker against a real nats-server (started by scripts/engines.sh for this file): the shared
 * contract (each subscriber on its own connection), then a server restart in the middle of a stream.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import * as path from "node:path"
import * as Broker from "../../src/Broker.js"
import * as NatsBroker from "../../src/plugins/nats/NatsBroker.js"
import { brokerContract, localSubscriber } from "../support/brokerContract.js"
import { type RunningEngine, startEngine } from "../support/engines.js"
import { eventually } from "../support/eventually.js"
import { spawnFixture } from "../support/processes.js"

let nats: RunningEngine
beforeAll(() => {
  nats = startEngine("nats")
})
afterAll(() => nats?.stop())

const layer = Layer.suspend(() => NatsBroker.layer({ servers: nats.address }))

brokerContract({
  name: "nats",
  layer,
  subscriber: (spec) =>
    Effect.flatMap(
      NatsBroker.make({ servers: nats.address }),
      (broker) => localSubscriber(spec).pipe(Effect.provideService(Broker.Broker, broker))
    ),
  awaitSubscribers: () => Effect.void,
  reportsHandlerFailures: false,
  testTimeout: 30_000
})

const script = path.resolve(import.meta.dirname, "../../scripts/engines.sh")

describe("NATS broker", () => {
  it.live("an unreachable server fails make with Unavailable (bounded), never hangs", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        Effect.scoped(NatsBroker.make({ servers: "127.0.0.1:1", connectTimeout: "1 second" }))
      )
      expect(Either.isLeft(result) && result.left.reason).toBe("Unavailable")
    }))

  it.live("subjectPrefix namespaces topics", () =>
    Effect.gen(function*() {
      const prefixed = yield* NatsBroker.make({ servers: nats.address, subjectPrefix: "tenant-a." })
      const plain = yield* NatsBroker.make({ servers: nats.address })
      const got: Array<string> = []
      yield* plain.subscribe("tenant-a.events", (m) =>
        Effect.sync(() => {
          got.push(new TextDecoder().decode(m.body))
        }))
      yield* prefixed.publish("events", new TextEncoder().encode("hello"), { contentType: "text/plain" })
      yield* eventually(Effect.sync(() => got), (g) => g.length === 1)
      expect(got).toEqual(["hello"])
    }).pipe(Effect.scoped))

  it.live(
    "nats-server restarted mid-stream: both sides reconnect, the stream resumes; losses are counted",
    () =>
      Effect.gen(function*() {
        const restartable = startEngine("nats")
        let current = restartable
        yield* Effect.addFinalizer(() => Effect.sync(() => current.stop()))
        const options = { servers: restartable.address, reconnectTimeWait: "100 millis" } as const
        const publisher = yield* NatsBroker.make(options)
        const subscriber = yield* NatsBroker.make(options)
        const received: Array<number> = []
        yield* subscriber.subscribe("stream", (m) =>
          Effect.sync(() => {
            received.push(Number(new TextDecoder().decode(m.body)))
          }))

        const total = 600
        let sent = 0
        const publishing = yield* Effect.fork(Effect.gen(function*() {
          for (let i = 0; i < total; i++) {
            yield* publisher.publish("stream", new TextEncoder().encode(String(i)))
            sent++
            yield* Effect.sleep("5 millis")
          }
        }))
        yield* eventually(Effect.sync(() => received.length), (n) => n >= 150)
        // Stop the server, then start a new one on the same port while publishing continues.
        const stoppedAt = sent
        restartable.stop()
        yield* Effect.sleep("300 millis")
        const out = execFileSync("bash", [script, "start", "nats", String(restartable.port)], {
          encoding: "utf8",
          timeout: 60_000
        })
        const dir = out.match(/NATS_DIR=(\S+)/)![1]!
        current = {
          ...restartable,
          dir,
          stop: () => execFileSync("bash", [script, "stop", dir], { timeout: 60_000 }) as unknown as void
        }
        const restartedAt = sent
        yield* Fiber.join(publishing)
        // Messages after the reconnect flow again: the last one arrives.
        yield* eventually(Effect.sync(() => received), (r) => r.includes(total - 1), "20 seconds")
        // Nothing left in flight (no late duplicate to come): a marker published last arrives after all of them.
        yield* publisher.publish("stream", new TextEncoder().encode(String(total)))
        yield* eventually(Effect.sync(() => received), (r) => r.includes(total))
        expect(received.pop()).toBe(total)
        const unique = new Set(received)
        expect(unique.size).toBe(received.length) // no duplicates (at-most-once)
        for (let i = 1; i < received.length; i++) expect(received[i]!).toBeGreaterThan(received[i - 1]!) // order kept
        const lost = Array.from({ length: total }, (_, i) => i).filter((i) => !unique.has(i))
        // Only messages around the outage may be lost: everything before the stop and well after the restart arrives.
        expect(lost.every((i) => i >= stoppedAt - 50 && i <= restartedAt + 200)).toBe(true)
        yield* Effect.log(
          `nats restart: ${total} published, ${received.length} received, ${lost.length} lost ` +
            `(server stopped after #${stoppedAt}, restarted after #${restartedAt}; lost: ${
              lost.length > 0 ? `${lost[0]}..${lost.at(-1)}` : "none"
            })`
        )
      }).pipe(Effect.scoped),
    60_000
  )
})

describe("NATS broker, JetStream mode (at-least-once)", () => {
  const text = (value: string) => new TextEncoder().encode(value)
  const decode = (m: Broker.Message) => new TextDecoder().decode(m.body)
  const js = (stream: string): NatsBroker.NatsBrokerOptions => ({
    servers: nats.address,
    subjectPrefix: `${stream.toLowerCase()}.`,
    jetstream: { stream, ackWait: "1 second" }
  })

  it.live("publish is acknowledged by the stream; a queue group (durable consumer) gets each message once", () =>
    Effect.gen(function*() {
      const options = js("JSQUEUE")
      const publisher = yield* NatsBroker.make(options)
      const members = yield* Effect.all([NatsBroker.make(options), NatsBroker.make(options)])
      const got: Array<Array<string>> = [[], []]
      yield* Effect.forEach(members, (broker, i) =>
        broker.subscribe("jobs", (m) =>
          Effect.sync(() => {
            got[i]!.push(decode(m))
          }), { queue: "workers" }))
      for (let i = 0; i < 100; i++) yield* publisher.publish("jobs", text(`j${i}`), { headers: { n: String(i) } })
      yield* eventually(Effect.sync(() => got[0]!.length + got[1]!.length), (n) => n >= 100)
      yield* Effect.sleep("300 millis")
      const all = [...got[0]!, ...got[1]!]
      expect(all.length).toBe(100)
      expect(new Set(all).size).toBe(100)
    }).pipe(Effect.scoped))

  it.live(
    "a failing handler gets the message again until it succeeds; a rejected payload is not redelivered",
    () =>
      Effect.gen(function*() {
        const broker = yield* NatsBroker.make(js("JSRETRY"))
        let attempts = 0
        yield* broker.subscribe(
          "flaky",
          () => Effect.suspend(() => ++attempts < 3 ? Effect.fail("not yet") : Effect.void),
          { queue: "q" }
        )
        yield* broker.publish("flaky", text("x"))
        yield* eventually(Effect.sync(() => attempts), (n) => n >= 3, "15 seconds")
        yield* Effect.sleep("1500 millis")
        expect(attempts).toBe(3)

        let rejected = 0
        // Failing with a CodecError (as a typed topic does for bytes that do not decode) is a rejection: terminated.
        yield* broker.subscribe("poison", () =>
          Effect.suspend(() => {
            rejected++
            return Effect.fail({ _tag: "CodecError" })
          }), { queue: "q" })
        yield* broker.publish("poison", text("{"))
        yield* Effect.sleep("2500 millis")
        expect(rejected).toBe(1)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "subscriber crash before ack: the message is redelivered to another member after ackWait",
    () =>
      Effect.gen(function*() {
        const options = js("JSCRASH")
        const publisher = yield* NatsBroker.make(options)
        const crashed: Array<string> = []
        // Member A takes the message and never finishes (then its process "dies": connection closed, no ack).
        yield* Effect.scoped(Effect.gen(function*() {
          const a = yield* NatsBroker.make(options)
          yield* a.subscribe("orders", (m) =>
            Effect.zipRight(
              Effect.sync(() => {
                crashed.push(decode(m))
              }),
              Effect.never
            ), { queue: "billing" })
          yield* publisher.publish("orders", text("o-1"))
          yield* eventually(Effect.sync(() => crashed), (c) => c.length === 1)
        }))
        const startedAt = Date.now()
        const b = yield* NatsBroker.make(options)
        const redelivered: Array<string> = []
        yield* b.subscribe("orders", (m) =>
          Effect.sync(() => {
            redelivered.push(decode(m))
          }), { queue: "billing" })
        yield* eventually(Effect.sync(() => redelivered), (r) => r.length >= 1, "15 seconds")
        expect(crashed).toEqual(["o-1"])
        expect(redelivered).toEqual(["o-1"])
        yield* Effect.log(`JetStream redelivery after crash: ${Date.now() - startedAt} ms (ackWait 1 s)`)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "subscriber process SIGKILLed before ack: another member (this process) gets the message",
    () =>
      Effect.gen(function*() {
        const options = js("JSKILL")
        const publisher = yield* NatsBroker.make(options)
        const child = yield* spawnFixture("test/process/fixtures/brokerNatsSubscriber.ts", {
          NATS: nats.address,
          STREAM: "JSKILL",
          PREFIX: "jskill.",
          TOPIC: "orders",
          QUEUE: "billing",
          MODE: "hang",
          ACK_WAIT_MS: "1000"
        })
        yield* publisher.publish("orders", text("o-42"))
        yield* Effect.promise(() => child.waitForLine((line) => line === "MSG o-42"))
        child.kill("SIGKILL")
        yield* Effect.promise(() => child.exited)
        const survivor = yield* NatsBroker.make(options)
        const got: Array<string> = []
        yield* survivor.subscribe("orders", (m) =>
          Effect.sync(() => {
            got.push(decode(m))
          }), { queue: "billing" })
        yield* eventually(Effect.sync(() => got), (g) => g.length >= 1, "15 seconds")
        expect(got).toEqual(["o-42"])
      }).pipe(Effect.scoped),
    40_000
  )

  it.live("JetStream mode without a subject prefix is refused", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        Effect.scoped(NatsBroker.make({ servers: nats.address, subjectPrefix: "", jetstream: true }))
      )
      expect(Either.isLeft(result) && result.left.reason).toBe("Unavailable")
    }))
})
