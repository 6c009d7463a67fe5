/**
 * The whole discovery path across processes: servers register over mdns (loopback, private port), a
 * client in this process resolves them by name through the cached mdns registry, spreads calls, and keeps
 * working while nodes join, die (SIGKILL) and leave (SIGTERM). Prints time-to-discovery and time-to-forget.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import { CachedRegistry, Client, Codec, MdnsRegistry, Registry, Selector, Transport } from "../../src/index.js"
import { Testing } from "../support/contract.js"
import { spawnFixture } from "../support/processes.js"

const fixture = "test/process/fixtures/rpcServer.ts"
const mdnsPort = 20000 + Math.floor(Math.random() * 20000)
const ttlMillis = 3000
const serverEnv = (id: string) => ({
  NODE_ID: id,
  MDNS_PORT: String(mdnsPort),
  REGISTER_TTL_MS: String(ttlMillis),
  REGISTER_INTERVAL_MS: "1000"
})

const clientLayer = Client.layer().pipe(
  Layer.provideMerge(
    Layer.mergeAll(
      CachedRegistry.layer().pipe(
        Layer.provide(MdnsRegistry.layer({ ...MdnsRegistry.loopback, port: mdnsPort, queryTimeout: "200 millis" }))
      ),
      Transport.layerTcp(),
      Codec.layer,
      Selector.layerRoundRobin()
    )
  )
)

const nodeIds = Effect.flatMap(Registry.Registry, (registry) =>
  registry.getService("testing").pipe(
    Effect.map((versions) => new Set(versions.flatMap((v) => v.nodes.map((n) => n.id)))),
    Effect.orElseSucceed(() => new Set<string>())
  ))

const waitUntil = (predicate: (ids: Set<string>) => boolean, timeout: Duration.DurationInput = "15 seconds") =>
  nodeIds.pipe(
    Effect.repeat({ until: predicate, schedule: Schedule.spaced("25 millis") }),
    Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error("discovery condition not met in time") })
  )

describe("discovery across processes (mdns)", () => {
  it.scopedLive(
    "three servers discovered by name; calls spread; SIGKILL and SIGTERM churn fail no call",
    () =>
      Effect.gen(function*() {
        const a = yield* spawnFixture(fixture, serverEnv("a"))
        const readyAt = Date.now()
        yield* waitUntil((ids) => ids.has("a"))
        const timeToDiscovery = Date.now() - readyAt

        const b = yield* spawnFixture(fixture, serverEnv("b"))
        const c = yield* spawnFixture(fixture, serverEnv("c"))
        yield* waitUntil((ids) => ids.has("b") && ids.has("c"))

        const testing = yield* Client.make(Testing, { service: "testing" })
        const seen: Record<string, number> = {}
        yield* Effect.forEach(Array.from({ length: 30 }), () =>
          Effect.map(testing.Echo({ text: "x" }), ({ node }) => {
            seen[node] = (seen[node] ?? 0) + 1
          }), { discard: true })
        expect(Object.keys(seen).sort()).toEqual(["a", "b", "c"])

        // Churn under load: b dies without deregistering, c leaves gracefully; no call fails.
        let completed = 0
        let killedAt = 0
        const load = Effect.forEach(
          Array.from({ length: 1500 }, (_, i) => i),
          (i) =>
            Effect.map(testing.Echo({ text: `m${i}` }), ({ text }) => {
              expect(text).toBe(`m${i}`)
              completed++
              if (completed === 300) {
                killedAt = Date.now()
                b.kill("SIGKILL")
              }
              if (completed === 600) c.kill("SIGTERM")
            }),
          { concurrency: 16, discard: true }
        )
        yield* load
        expect(completed).toBe(1500)

        // c said goodbye; b is forgotten when its TTL runs out.
        yield* waitUntil((ids) => !ids.has("c"))
        yield* waitUntil((ids) => !ids.has("b"), Duration.millis(ttlMillis + 5000))
        const timeToForget = Date.now() - killedAt
        expect(yield* nodeIds).toEqual(new Set(["a"]))
        yield* Effect.log(
          `mdns time-to-discovery ${timeToDiscovery} ms; SIGKILLed node forgotten ${timeToForget} ms after SIGKILL (TTL ${ttlMillis} ms)`
        )
        expect(a.process.exitCode).toBe(null)
      }).pipe(Effect.provide(clientLayer)),
    90_000
  )
})
