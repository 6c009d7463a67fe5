/**
 * Cross-process RPC over real TCP on 127.0.0.1: spawned server processes, a client in the test process.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Client, Codec, Registry, Selector, Transport } from "../../src/index.js"
import { runtimeOf } from "../../src/internal/rpc/clientService.js"
import { Testing, UnknownName } from "../support/contract.js"
import { eventually } from "../support/eventually.js"
import { spawnFixture } from "../support/processes.js"

const fixture = "test/process/fixtures/rpcServer.ts"

/** Nodes "a", "b" and "c" of the fixture, started together. */
const threeNodes = Effect.all(
  ["a", "b", "c"].map((id) => spawnFixture(fixture, { NODE_ID: id })),
  { concurrency: "unbounded" }
)

const clientLayer = (addresses: ReadonlyArray<string>, selector = Selector.layerRandom()) =>
  Client.layer().pipe(
    Layer.provide(
      Layer.mergeAll(Transport.layerTcp(), Registry.layerStatic({ testing: addresses }), Codec.layer, selector)
    )
  )

describe("cross-process RPC over TCP", () => {
  it.scopedLive("all four call shapes, typed errors and metadata", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "solo" })
      yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        expect(yield* testing.Hello({ name: "Ada" })).toBe("Hello, Ada!")
        expect(yield* Effect.flip(testing.Hello({ name: "nobody" }))).toBeInstanceOf(UnknownName)
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(testing.Countdown({ from: 3 })))).toEqual([3, 2, 1, 0])
        expect((yield* Stream.runCollect(testing.Countdown({ from: 5000 }))).length).toBe(5001)
        expect(yield* testing.Sum(Stream.range(1, 1000))).toBe(500500)
        const chat = yield* Stream.runCollect(testing.Chat(Stream.make("x", "y")))
        expect(Chunk.toReadonlyArray(chat)).toEqual(["echo: x", "echo: y", "goodbye"])
        const seen = yield* testing.WhoAmI(undefined, { metadata: { "x-request-id": "r-1" } })
        expect(seen["x-request-id"]).toBe("r-1")
        expect(yield* testing.Hello({ name: "Mo" }, { contentType: "application/msgpack" })).toBe("Hello, Mo!")
        // protobuf derived from the Schemas: unary, typed error, streams, framework error
        const proto = { contentType: "application/protobuf" }
        expect(yield* testing.Hello({ name: "Pb" }, proto)).toBe("Hello, Pb!")
        expect(yield* testing.Echo({ text: "pb" }, proto)).toEqual({ text: "pb", node: "solo" })
        expect(yield* Effect.flip(testing.Hello({ name: "nobody" }, proto))).toBeInstanceOf(UnknownName)
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(testing.Countdown({ from: 2 }, proto)))).toEqual([
          2,
          1,
          0
        ])
        expect(yield* testing.Sum(Stream.range(1, 10), proto)).toBe(55)
        expect((yield* Effect.flip(testing.Boom({ message: "pb" }, proto)))._tag).toBe("InternalServerError")
        const defect = yield* Effect.flip(testing.Boom({ message: "bad" }))
        expect(defect._tag).toBe("InternalServerError")
      }).pipe(Effect.provide(clientLayer([server.ready])))
    }))

  it.scopedLive("round-robin spreads calls over 3 nodes", () =>
    Effect.gen(function*() {
      const nodes = yield* threeNodes
      const counts = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        const counts: Record<string, number> = {}
        for (let i = 0; i < 30; i++) {
          const { node } = yield* testing.Echo({ text: "hi" })
          counts[node] = (counts[node] ?? 0) + 1
        }
        return counts
      }).pipe(Effect.provide(clientLayer(nodes.map((n) => n.ready), Selector.layerRoundRobin())))
      expect(counts).toEqual({ a: 10, b: 10, c: 10 })
    }))

  it.scopedLive("killing a node under load fails no call (retries on other nodes)", () =>
    Effect.gen(function*() {
      const nodes = yield* threeNodes
      const result = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        let done = 0
        const seen = new Set<string>()
        const calls = Effect.forEach(
          Array.from({ length: 3000 }, (_, i) => i),
          (i) =>
            testing.Echo({ text: `m${i}` }).pipe(
              Effect.tap(({ node, text }) =>
                Effect.sync(() => {
                  expect(text).toBe(`m${i}`)
                  seen.add(node)
                  if (++done === 500) nodes[1]!.kill("SIGKILL")
                })
              )
            ),
          { concurrency: 32, discard: true }
        )
        yield* calls
        return { done, seen }
      }).pipe(Effect.provide(clientLayer(nodes.map((n) => n.ready))))
      expect(result.done).toBe(3000)
      expect(result.seen).toEqual(new Set(["a", "b", "c"]))
      expect(nodes[1]!.process.signalCode).toBe("SIGKILL")
    }), 60_000)

  it.scopedLive(
    "Promise code (Client.makePromise): a node killed under load fails no call; abort stops the handler",
    () =>
      Effect.gen(function*() {
        const nodes = yield* threeNodes
        const result = yield* Effect.gen(function*() {
          // The default selector answers without an Effect step: calls to connected nodes start no fiber.
          const testing = yield* Client.makePromise(Testing, { service: "testing" })
          let done = 0
          const seen = new Set<string>()
          // 32 Promise callers, each awaiting its call and starting the next (as request handlers would).
          const caller = async (from: number) => {
            for (let i = from; i < 3000; i += 32) {
              const { node, text } = await testing.Echo({ text: `m${i}` })
              expect(text).toBe(`m${i}`)
              seen.add(node)
              if (++done === 500) nodes[1]!.kill("SIGKILL")
            }
          }
          yield* Effect.promise(() => Promise.all(Array.from({ length: 32 }, (_, i) => caller(i))))
          // Aborting a call cancels it on the server: the handler is interrupted.
          const controller = new AbortController()
          const sleeping = testing.Sleep({ millis: 30_000 }, { signal: controller.signal }).catch((e: unknown) => e)
          const node = yield* Effect.promise(() =>
            Promise.race(
              [nodes[0]!, nodes[2]!].map((n) =>
                n.waitForLine((line) => line === "EVENT sleep-started:30000", 5000).then(() => n)
              )
            )
          )
          controller.abort("caller gone")
          expect(yield* Effect.promise(() => sleeping)).toBe("caller gone")
          yield* Effect.promise(() => node.waitForLine((line) => line === "EVENT sleep-interrupted:30000", 5000))
          return { done, seen }
        }).pipe(Effect.provide(clientLayer(nodes.map((n) => n.ready), Selector.layer)))
        expect(result.done).toBe(3000)
        expect(result.seen).toEqual(new Set(["a", "b", "c"]))
      }),
    60_000
  )

  it.scopedLive("a non-idempotent call to a dead node is retried only when it provably never arrived", () =>
    Effect.gen(function*() {
      const alive = yield* spawnFixture(fixture, { NODE_ID: "alive" })
      const dead = yield* spawnFixture(fixture, { NODE_ID: "dead" })
      dead.kill("SIGKILL")
      yield* Effect.promise(() => dead.exited)
      // Hello is not idempotent; connection refused proves it never ran, so it is retried on "alive".
      const replies = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        return yield* Effect.forEach(Array.from({ length: 20 }), () => testing.Hello({ name: "R" }))
      }).pipe(Effect.provide(clientLayer([dead.ready, alive.ready])))
      expect(replies.every((reply) => reply === "Hello, R!")).toBe(true)
    }))

  it.scopedLive("deadline exceeded: Timeout for the caller, handler stopped on the server", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "slow" })
      const error = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        return yield* Effect.flip(testing.Sleep({ millis: 30_000 }, { timeout: "300 millis", retry: false }))
      }).pipe(Effect.provide(clientLayer([server.ready])))
      expect(error._tag).toBe("Timeout")
      yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-interrupted:30000", 5000))
    }))

  it.scopedLive("graceful stop (SIGTERM) finishes the call in flight", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "draining" })
      const reply = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        const call = yield* Effect.fork(testing.Sleep({ millis: 500 }, { retry: false }))
        yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-started:500"))
        server.kill("SIGTERM")
        return yield* call
      }).pipe(Effect.provide(clientLayer([server.ready])))
      expect(reply).toBe("slept 500")
      expect(yield* Effect.promise(() => server.exited)).toBe(0)
    }))

  it.scopedLive(
    "a frozen node (half-open connection) is probed, dropped from the pool, and calls carry on",
    () =>
      Effect.gen(function*() {
        const frozen = yield* spawnFixture(fixture, { NODE_ID: "frozen" })
        const alive = yield* spawnFixture(fixture, { NODE_ID: "alive" })
        const result = yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing", timeout: "300 millis" })
          // connect to both nodes first
          for (let i = 0; i < 4; i++) yield* testing.Echo({ text: "warm" })
          const client = runtimeOf(yield* Client.Client)
          expect(client.pool.peek(frozen.ready)).toBeDefined()
          frozen.process.kill("SIGSTOP") // no FIN, no RST: the connection stays open and silent
          const nodes: Array<string> = []
          for (let i = 0; i < 10; i++) nodes.push((yield* testing.Echo({ text: `m${i}` })).node)
          // The PING goes unanswered and the connection is dropped: wait for exactly that, as long as before (2.5 s).
          yield* eventually(Effect.sync(() => client.pool.peek(frozen.ready)), (p) => p === undefined, "2500 millis")
            .pipe(Effect.ignore) // still pooled then: the expectation below says so
          return { nodes, pooled: client.pool.peek(frozen.ready) }
        }).pipe(Effect.provide(clientLayer([frozen.ready, alive.ready], Selector.layerRoundRobin())))
        frozen.process.kill("SIGCONT")
        expect(result.nodes).toEqual(Array(10).fill("alive")) // Echo is idempotent: the timed-out call moved on
        expect(result.pooled).toBeUndefined() // the PING got no PONG: connection destroyed
      }),
    30_000
  )

  it.scopedLive(
    "graceful stop is bounded by drainTimeout: a stuck call is cut off with a 503",
    () =>
      Effect.gen(function*() {
        const server = yield* spawnFixture(fixture, { NODE_ID: "stuck", DRAIN_MS: "300" })
        const startedAt = Date.now()
        const error = yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing" })
          const call = yield* Effect.fork(Effect.flip(testing.Sleep({ millis: 60_000 }, { timeout: "1 minute" })))
          yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-started:60000"))
          server.kill("SIGTERM")
          return yield* call
        }).pipe(Effect.provide(clientLayer([server.ready])))
        // Sleep is not idempotent and it had started: the 503 reaches the caller, it is not retried.
        expect(error._tag).toBe("ServiceUnavailable")
        expect(yield* Effect.promise(() => server.exited)).toBe(0)
        expect(Date.now() - startedAt).toBeLessThan(15_000)
      }),
    30_000
  )
})
