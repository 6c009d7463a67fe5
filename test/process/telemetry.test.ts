/**
 * Tracing and logs across processes: this process runs an OTLP/HTTP receiver (OTLP/JSON, what
 * `Telemetry.layerOtlp` sends by default) and calls `tel-front` (a process) whose handler calls `tel-back`
 * (a process) which writes to its store and publishes on the HTTP broker to a subscriber (a process). Every
 * process exports to the receiver; discovery is mdns on loopback (private port). One trace must run caller →
 * front → back → store/publish → subscriber with the right parents, and the log records of each process
 * must carry that trace id and the id of the span they were logged in; front's Effect metric is exported too.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import {
  CachedRegistry,
  Client,
  Codec,
  MdnsRegistry,
  Registry,
  Selector,
  Telemetry,
  Tracing,
  Transport
} from "../../src/index.js"
import { eventually } from "../support/eventually.js"
import { receiver } from "../support/otlpReceiver.js"
import { spawnFixture } from "../support/processes.js"
import { Front, topic } from "../support/telemetryContract.js"

const fixture = "test/process/fixtures/telemetryService.ts"
const mdnsPort = 20000 + Math.floor(Math.random() * 20000)

const registry = CachedRegistry.layer().pipe(
  Layer.provideMerge(
    MdnsRegistry.layer({ ...MdnsRegistry.loopback, port: mdnsPort, queryTimeout: "100 millis", queryRetries: 1 })
  )
)

const nodesOf = (service: string) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.getService(service).pipe(
      Effect.map((services) => services.flatMap((s) => s.nodes).length),
      Effect.orElseSucceed(() => 0)
    ))

// OTLP SpanKind numbers.
const SERVER = 2
const CLIENT = 3
const PRODUCER = 4
const CONSUMER = 5

describe("Telemetry across processes", () => {
  it.scopedLive(
    "one trace from the caller through two services and the broker to a subscriber; logs carry it",
    () =>
      Effect.gen(function*() {
        const otlp = yield* receiver
        const spawn = (role: string) =>
          spawnFixture(fixture, { ROLE: role, NODE_ID: `${role}-1`, OTLP_URL: otlp.url, MDNS_PORT: String(mdnsPort) })
        const [subscriber] = yield* Effect.all([spawn("subscriber"), spawn("back"), spawn("front")], {
          concurrency: "unbounded"
        })

        const caller = Client.layer({ middleware: [Tracing.client] }).pipe(
          Layer.provideMerge(Layer.mergeAll(Transport.layerTcp(), Codec.layer, Selector.layer)),
          Layer.provideMerge(registry),
          Layer.provide(Telemetry.layerOtlp({
            url: otlp.url,
            serviceName: "tel-caller",
            exportInterval: "100 millis",
            metrics: false
          }))
        )
        yield* Effect.gen(function*() {
          // Every process is discoverable before the call (the broker's subscriber included).
          yield* eventually(
            Effect.all([nodesOf("tel-front"), nodesOf("tel-back"), nodesOf(`micro.broker.${topic}`)]),
            (counts) => counts.every((n) => n > 0),
            "10 seconds"
          )
          const front = yield* Client.make(Front, { service: "tel-front" })
          expect(yield* front.Relay({ text: "traced" })).toBe("traced")
          yield* Effect.promise(() => subscriber.waitForLine((line) => line === "MSG traced", 5000))

          const find = Effect.sync(() =>
            otlp.spans.find((s) => s.service === "tel-caller" && s.name === "tel-front/Relay")
          )
          const traceId = (yield* eventually(find, (span) => span !== undefined, "10 seconds"))!.traceId
          const expected: Array<[service: string, name: string, kind: number]> = [
            ["tel-caller", "tel-front/Relay", CLIENT],
            ["tel-front", "tel-front/Relay", SERVER],
            ["tel-front", "tel-back/Publish", CLIENT],
            ["tel-back", "tel-back/Publish", SERVER],
            ["tel-back", "store.write", CLIENT],
            ["tel-back", `publish ${topic}`, PRODUCER],
            ["tel-subscriber", `deliver ${topic}`, CONSUMER]
          ]
          const inTrace = yield* eventually(
            Effect.sync(() => otlp.spans.filter((s) => s.traceId === traceId)),
            (spans) =>
              expected.every(([service, name, kind]) =>
                spans.some((s) => s.service === service && s.name === name && s.kind === kind)
              ),
            "10 seconds"
          )
          const span = (service: string, name: string, kind: number) =>
            inTrace.find((s) => s.service === service && s.name === name && s.kind === kind)!
          const [callFront, serveFront, callBack, serveBack, write, publish, deliver] = expected.map((e) => span(...e))
          expect(callFront.parentSpanId).toBeUndefined()
          expect(serveFront.parentSpanId).toBe(callFront.spanId)
          expect(callBack.parentSpanId).toBe(serveFront.spanId)
          expect(serveBack.parentSpanId).toBe(callBack.spanId)
          expect(write.parentSpanId).toBe(serveBack.spanId)
          expect(publish.parentSpanId).toBe(serveBack.spanId)
          expect(deliver.parentSpanId).toBe(publish.spanId)
          expect(serveFront.node).toBe("front-1")
          expect(deliver.node).toBe("subscriber-1")

          const logs = yield* eventually(
            Effect.sync(() => otlp.logs.filter((l) => l.traceId === traceId)),
            (logs) => logs.length >= 3,
            "10 seconds"
          )
          const log = (body: string) => logs.find((l) => l.body === body)
          expect(log("front relaying traced")).toMatchObject({
            service: "tel-front",
            node: "front-1",
            spanId: serveFront.spanId
          })
          expect(log("back publishing traced")).toMatchObject({
            service: "tel-back",
            node: "back-1",
            spanId: serveBack.spanId
          })
          expect(log("subscriber got traced")).toMatchObject({ service: "tel-subscriber", spanId: deliver.spanId })
          // Effect metrics come for free: front's counter reaches the receiver.
          yield* eventually(
            Effect.sync(() => otlp.metrics.filter((m) => m.service === "tel-front" && m.name === "telemetry_relays")),
            (found) => found.some((m) => Number(m.value) === 1),
            "10 seconds"
          )
          expect([...otlp.contentTypes]).toEqual(["application/json"])
        }).pipe(Effect.provide(caller))
      }),
    30_000
  )
})
