/**
 * Soak: a server process under 64 calls in flight for a bounded time (SOAK_SECONDS, default 25, or
 * SOAK_CALLS calls, default 1M, whichever comes first), its RSS and open descriptors sampled every second.
 * After warm-up both must stay flat: a leak of even a few hundred bytes per call shows as steady growth.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { Client } from "../../src/index.js"
import { Testing } from "../support/contract.js"
import { spawnFixture } from "../support/processes.js"
import { clientLayer, openFds, rssMb } from "../support/rawPeer.js"

const seconds = Number(process.env.SOAK_SECONDS ?? 25)
const maxCalls = Number(process.env.SOAK_CALLS ?? 1_000_000)
const WARM_UP_SAMPLES = 5

describe("soak", () => {
  it.scopedLive(
    `${seconds} s (or ${maxCalls} calls) at 64 in flight: RSS and descriptors flat after warm-up`,
    () =>
      Effect.gen(function*() {
        const server = yield* spawnFixture("test/process/fixtures/rpcServer.ts", { NODE_ID: "soak" })
        const pid = server.process.pid!
        const samples: Array<{ rss: number; fds: number; calls: number }> = []
        let calls = 0
        let failures = 0
        const deadline = Date.now() + seconds * 1000
        yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing" })
          const sampler = yield* Effect.forkScoped(Effect.forever(
            Effect.sleep("1 second").pipe(
              Effect.zipRight(Effect.sync(() => samples.push({ rss: rssMb(pid), fds: openFds(pid), calls })))
            )
          ))
          const caller = Effect.whileLoop({
            while: () => calls < maxCalls && Date.now() < deadline,
            body: () =>
              testing.Echo({ text: "soak" }).pipe(Effect.match({
                onFailure: () => failures++,
                onSuccess: () => calls++
              })),
            step: () => {}
          })
          yield* Effect.all(Array.from({ length: 64 }, () => caller), { concurrency: "unbounded", discard: true })
          yield* Fiber.interrupt(sampler)
        }).pipe(Effect.provide(clientLayer(server.ready)))

        expect(failures).toBe(0)
        expect(samples.length).toBeGreaterThan(WARM_UP_SAMPLES + 3)
        const steady = samples.slice(WARM_UP_SAMPLES)
        const rss = steady.map((s) => s.rss)
        const fds = steady.map((s) => s.fds)
        // Young-generation GC makes RSS wobble by tens of MB; a leak grows without bound.
        const firstHalf = Math.max(...rss.slice(0, Math.ceil(rss.length / 2)))
        const secondHalf = Math.max(...rss.slice(Math.ceil(rss.length / 2)))
        if (process.env.FIGURES === "1") {
          process.stdout.write(
            `FIGURES soak: calls=${calls} seconds=${seconds} rssMb=${Math.round(Math.min(...rss))}..${
              Math.round(Math.max(...rss))
            } ` +
              `fds=${Math.min(...fds)}..${Math.max(...fds)}\n`
          )
        }
        expect(secondHalf - firstHalf).toBeLessThan(40)
        expect(Math.max(...rss)).toBeLessThan(400)
        expect(Math.max(...fds) - Math.min(...fds)).toBeLessThanOrEqual(2)
      }),
    120_000
  )
})
