/** Client behaviour with in-memory layers: selection, retries and timeouts on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { Client, Codec, Errors, Registry, Selector, Server, Transport } from "../src/index.js"
import { ghostNode as ghost, serveMemory as serve, Testing } from "./support/contract.js"

const Infra = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer)

const env = (layers: ReadonlyArray<Layer.Layer<never, any, any>>, selector = Selector.layerRoundRobin()) =>
  Layer.mergeAll(Client.layer(), ...(layers as Array<Layer.Layer<never, never, never>>)).pipe(
    Layer.provideMerge(Layer.merge(Infra, selector))
  )

/** Least-latency, recording what the client reports to it. */
const observed: Array<readonly [string, number]> = []
const observing = Layer.sync(Selector.Selector, () => {
  observed.length = 0
  const inner = Selector.makeLeastLatency()
  return {
    ...inner,
    observe: (service: string, node: { readonly id: string }, millis: number) => {
      observed.push([node.id, millis])
      inner.observe!(service, node as never, millis)
    }
  }
})

/** A selector that counts its selections: one per attempt. */
const selections = { count: 0 }
const countingSelector = Layer.sync(Selector.Selector, () => {
  selections.count = 0
  const random = Selector.makeRandom()
  return {
    select: (request) => Effect.zipRight(Effect.sync(() => selections.count++), random.select(request)),
    mark: random.mark
  }
})

describe("Client", () => {
  it.scoped("Selector.layerHashed: calls with the same key go to the same node (per call or per client)", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const served = new Map<string, Set<string>>()
      for (const key of ["tenant-1", "tenant-2", "tenant-3", "tenant-4"]) {
        const nodes = new Set<string>()
        for (let i = 0; i < 10; i++) nodes.add((yield* testing.Echo({ text: key }, { key })).node)
        served.set(key, nodes)
      }
      for (const nodes of served.values()) expect(nodes.size).toBe(1)
      const pinned = yield* Client.make(Testing, { service: "testing", key: "tenant-1" })
      const first = [...served.get("tenant-1")!][0]
      for (let i = 0; i < 5; i++) expect((yield* pinned.Echo({ text: "x" })).node).toBe(first)
      // Without a key: random, so all three nodes serve.
      const all = new Set<string>()
      for (let i = 0; i < 60; i++) all.add((yield* testing.Echo({ text: "x" })).node)
      expect(all).toEqual(new Set(["n1", "n2", "n3"]))
    }).pipe(Effect.provide(env([serve("n1"), serve("n2"), serve("n3")], Selector.layerHashed()))))

  it.scoped("a latency-aware selector gets each successful unary call's latency for the node that served it", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const replies: Array<string> = []
      for (let i = 0; i < 12; i++) replies.push((yield* testing.Echo({ text: "x" })).node)
      // One sample per call, for the node that answered it, in order.
      expect(observed.map(([id]) => id)).toEqual(replies)
      for (const [, millis] of observed) expect(millis).toBeGreaterThanOrEqual(0)
      // Failed calls are not latency samples.
      yield* Effect.flip(testing.Boom({ message: "no" }))
      expect(observed).toHaveLength(12)
    }).pipe(Effect.provide(env([serve("n1"), serve("n2")], observing))))

  it.scoped("calls go to nodes whose registration lists the endpoint (the others are avoided)", () =>
    Effect.gen(function*() {
      // "a-old" advertises only an endpoint this contract does not call: never picked, so nothing is refused
      // even without retries (round-robin would send every other call to it otherwise).
      const testing = yield* Client.make(Testing, { service: "testing", retry: false })
      const replies = yield* Effect.forEach(Array.from({ length: 6 }), () => testing.Hello({ name: "x" }))
      expect(replies).toEqual(Array(6).fill("Hello, x!"))
    }).pipe(Effect.provide(env([
      serve("b-live"),
      Layer.effectDiscard(Effect.flatMap(Registry.Registry, (registry) =>
        registry.register({
          name: "testing",
          version: "old",
          metadata: {},
          endpoints: [{ name: "Legacy", metadata: {} }],
          nodes: [{ id: "a-old", address: "memory:a-old", metadata: {} }]
        })))
    ]))))

  it.scoped("retries a refused connection on another node", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      // round-robin in id order: "a-ghost" comes first, so every other call hits it first
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 6 }), () => testing.Hello({ name: "x" })))
      yield* TestClock.adjust("1 second")
      const replies = yield* Fiber.join(fiber)
      expect(replies).toEqual(Array(6).fill("Hello, x!"))
    }).pipe(Effect.provide(env([serve("b-live"), ghost("a-ghost")]))))

  it.scoped("gives up after the retry schedule with the last error", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const fiber = yield* Effect.fork(Effect.flip(testing.Hello({ name: "x" })))
      yield* TestClock.adjust("10 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "TransportError", reason: "refused" })
    }).pipe(Effect.provide(env([ghost("only-ghost")]))))

  it.scoped("retry: false makes one attempt", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing", retry: false })
      const error = yield* Effect.flip(testing.Hello({ name: "x" }))
      expect(error._tag).toBe("TransportError")
    }).pipe(Effect.provide(env([ghost("only-ghost")]))))

  it.scoped("a custom schedule per call: attempts are counted", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const error = yield* Effect.flip(testing.Hello({ name: "x" }, { retry: Schedule.recurs(5) }))
      expect(error._tag).toBe("TransportError")
      expect(selections.count).toBe(6) // first attempt + 5 retries
    }).pipe(Effect.provide(env([ghost("only-ghost")], countingSelector))))

  it.scoped("a timeout is retried on another node only for idempotent endpoints", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      // Sleep is not idempotent: one attempt, then Timeout.
      const sleep = yield* Effect.fork(Effect.flip(testing.Sleep({ millis: 60_000 }, { timeout: "1 second" })))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(sleep))._tag).toBe("Timeout")
    }).pipe(Effect.provide(env([serve("n1"), serve("n2")]))))

  it.scoped("typed endpoint errors are never retried", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const error = yield* Effect.flip(testing.Hello({ name: "nobody" }, { retry: Schedule.recurs(5) }))
      expect(error._tag).toBe("UnknownName")
      expect(selections.count).toBe(1)
    }).pipe(Effect.provide(env([serve("n1")], countingSelector))))

  it.scoped("filters nodes by version", () =>
    Effect.gen(function*() {
      const v2 = Client.make(Testing, { service: "testing", filter: { version: "2.0.0" } })
      const error = yield* Effect.flip(Effect.flatMap(v2, (c) => c.Hello({ name: "x" })))
      expect(error._tag).toBe("NoAvailableNodes")
    }).pipe(Effect.provide(env([serve("n1")]))))

  it.scoped("client middleware can add metadata and see every call", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const seen = yield* testing.WhoAmI(undefined)
      expect(seen["x-added-by"]).toBe("middleware")
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Client.layer({
            middleware: [(call, next) => next({ ...call, metadata: { ...call.metadata, "x-added-by": "middleware" } })]
          }),
          serve("n1")
        ).pipe(Layer.provideMerge(Layer.merge(Infra, Selector.layer)))
      )
    ))

  it.scoped("server middleware can reject calls with a framework error", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const error = yield* Effect.flip(testing.Hello({ name: "x" }))
      expect(error).toMatchObject({ _tag: "Forbidden", code: 403 })
      expect(yield* testing.Hello({ name: "x" }, { metadata: { "x-pass": "yes" } })).toBe("Hello, x!")
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Client.layer(),
          serve("n1").pipe(
            Layer.provide(
              Server.layerMiddleware((call, next) =>
                call.metadata["x-pass"] === "yes"
                  ? next
                  : Effect.fail(Errors.Forbidden.of("no pass", "testing"))
              )
            )
          )
        ).pipe(Layer.provideMerge(Layer.merge(Infra, Selector.layer)))
      )
    ))

  it.scoped("a request over the frame limit fails with BadRequest before anything is sent", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const big = new Uint8Array(4096)
      const error = yield* Effect.flip(testing.Bytes(big, { contentType: "application/octet-stream" }))
      expect(error).toMatchObject({ _tag: "BadRequest" })
      expect((error as Errors.BadRequest).detail).toContain("exceeds the frame limit of 1024")
      const streamError = yield* Effect.flip(
        testing.Sum(Stream.make(1, 2, 3)).pipe(Effect.zipRight(
          testing.Chat(Stream.make("x".repeat(2000))).pipe(Stream.runDrain)
        ))
      )
      expect(streamError).toMatchObject({ _tag: "BadRequest" })
      // the connection is still fine
      expect(yield* testing.Hello({ name: "small" })).toBe("Hello, small!")
    }).pipe(
      Effect.provide(
        Layer.mergeAll(Client.layer({ maxFrameSize: 1024 }), serve("n1")).pipe(
          Layer.provideMerge(Layer.merge(Infra, Selector.layer))
        )
      )
    ))

  it.scoped("a 503 raised while handling a call is retried only for idempotent endpoints (the handler ran)", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const error = yield* Effect.flip(testing.Hello({ name: "x" }, { retry: Schedule.recurs(3) }))
      expect(error._tag).toBe("ServiceUnavailable")
      expect(selections.count).toBe(1)
      selections.count = 0
      yield* Effect.flip(testing.Echo({ text: "x" }, { retry: Schedule.recurs(3) }))
      expect(selections.count).toBe(4)
    }).pipe(
      Effect.provide(
        Layer.mergeAll(
          Client.layer(),
          serve("n1").pipe(
            Layer.provide(
              Server.layerMiddleware(() => Effect.fail(Errors.ServiceUnavailable.of("downstream down", "testing")))
            )
          )
        ).pipe(Layer.provideMerge(Layer.merge(Infra, countingSelector)))
      )
    ))

  it.scoped("a failing request stream fails the call instead of hanging it", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const broken = Stream.concat(Stream.make(1, 2), Stream.die(new Error("input broke")))
      const sum = yield* Effect.exit(testing.Sum(broken))
      expect(sum._tag).toBe("Failure")
      const chat = yield* Effect.exit(
        Stream.runCollect(testing.Chat(Stream.concat(Stream.make("a"), Stream.die("input broke"))))
      )
      expect(chat._tag).toBe("Failure")
      expect(yield* testing.Hello({ name: "after" })).toBe("Hello, after!")
    }).pipe(Effect.provide(env([serve("n1")]))))

  it.scoped("client streaming honours the caller's timeout on the client side too", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const fiber = yield* Effect.fork(Effect.flip(testing.Sum(Stream.never, { timeout: "1 second" })))
      yield* TestClock.adjust("2 seconds")
      expect((yield* Fiber.join(fiber))._tag).toBe("Timeout")
    }).pipe(Effect.provide(env([serve("n1")]))))
})
