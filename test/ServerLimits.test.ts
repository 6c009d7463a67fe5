/**
 * Server limits over the in-memory transport: the per-connection stream cap is advertised in SETTINGS and
 * honoured by the client (which queues instead of being refused), idle connections are asked to go away,
 * and the idle timer costs nothing while calls flow.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { Client, Codec, Registry, Selector, Server, Transport } from "../src/index.js"
import { runtimeOf } from "../src/internal/rpc/clientService.js"
import { handlers, Testing } from "./support/contract.js"

const system = (limits: Server.ServerLimits, events: Array<string>) =>
  Layer.mergeAll(
    Server.layer(Testing, { name: "testing", address: "memory:limits", register: false, limits }).pipe(
      Layer.provide(handlers("n1", events))
    ),
    Client.layer().pipe(Layer.provide(Selector.layer))
  ).pipe(
    Layer.provideMerge(
      Layer.mergeAll(Transport.layerMemory, Codec.layer, Registry.layerStatic({ testing: ["memory:limits"] }))
    )
  )

describe("Server limits", () => {
  it.live("a client queues calls beyond the advertised stream cap: none refused, at most the cap run at once", () => {
    const events: Array<string> = []
    return Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing", retry: false })
      yield* testing.Echo({ text: "warm" }) // SETTINGS has arrived once a call has completed
      let running = 0
      let peak = 0
      const results = yield* Effect.all(
        Array.from({ length: 12 }, (_, i) =>
          Effect.suspend(() => {
            peak = Math.max(peak, ++running)
            return testing.Sleep({ millis: 20 + i }).pipe(Effect.ensuring(Effect.sync(() => running--)))
          })),
        { concurrency: "unbounded" }
      )
      expect(results).toHaveLength(12)
      expect(peak).toBe(12) // all twelve calls were in flight on the client side...
      // ...but the server never ran more than its cap (3) at once: starts and ends interleave in threes.
      let serverRunning = 0
      let serverPeak = 0
      for (const event of events) {
        if (event.startsWith("sleep-started")) serverPeak = Math.max(serverPeak, ++serverRunning)
        if (event.startsWith("sleep-done")) serverRunning--
      }
      expect(events.filter((e) => e.startsWith("sleep-started"))).toHaveLength(12)
      expect(serverPeak).toBeLessThanOrEqual(3)
    }).pipe(Effect.provide(system({ maxConcurrentStreams: 3 }, events)))
  })

  it.effect("an idle connection is sent GOAWAY after 1–2 idle timeouts; the next call dials afresh", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const client = runtimeOf(yield* Client.Client)
      yield* testing.Echo({ text: "a" })
      const first = client.pool.peek("memory:limits")
      expect(first).toBeDefined()
      // Calls keep it alive across many idle periods.
      for (let i = 0; i < 5; i++) {
        yield* TestClock.adjust("40 seconds")
        yield* testing.Echo({ text: `keep ${i}` })
      }
      expect(client.pool.peek("memory:limits")).toBe(first)
      // Then silence: gone within two idle timeouts.
      yield* TestClock.adjust("2 minutes")
      expect(client.pool.peek("memory:limits")).toBeUndefined()
      expect((yield* testing.Echo({ text: "again" })).text).toBe("again")
      expect(client.pool.peek("memory:limits")).toBeDefined()
    }).pipe(Effect.provide(system({ idleTimeout: "1 minute" }, []))))

  it.effect("a call header over the format's 64 KiB (a 1 MB token) fails typed on the caller, before anything is sent", () => {
    const events: Array<string> = []
    return Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const token = `Bearer ${"x".repeat(1_000_000)}`
      const error = yield* Effect.flip(testing.Sleep({ millis: 1 }, { metadata: { authorization: token } }))
      expect(error).toMatchObject({ _tag: "BadRequest", code: 400 })
      expect((error as { readonly detail: string }).detail).toContain(
        `metadata "authorization" is ${token.length} bytes`
      )
      // Many small fields that add up past the limit: the same.
      const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`x-${i}`, "v".repeat(1000)]))
      expect(yield* Effect.flip(testing.Sleep({ millis: 1 }, { metadata: many }))).toMatchObject({ _tag: "BadRequest" })
      expect(events).toEqual([])
      // The client is fine afterwards.
      expect((yield* testing.Echo({ text: "ok" })).text).toBe("ok")
    }).pipe(Effect.provide(system({}, events)))
  })
})
