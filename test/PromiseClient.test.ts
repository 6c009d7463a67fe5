/** `Client.makePromise`: the typed client for Promise code, every call shape, failures, retries and abort. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Supervisor from "effect/Supervisor"
import { CachedRegistry, Client, Codec, Errors, Registry, Selector, Transport } from "../src/index.js"
import { ghostNode as ghost, serveMemory, Testing, UnknownName } from "./support/contract.js"
import { eventually } from "./support/eventually.js"

const events: Array<string> = []

const serve = (node: string) => serveMemory(node, events)

const env = (...nodes: ReadonlyArray<Layer.Layer<never, any, any>>) =>
  Layer.mergeAll(Client.layer(), ...(nodes as Array<Layer.Layer<never, never, never>>)).pipe(
    Layer.provideMerge(
      Layer.mergeAll(
        Transport.layerMemory,
        // Cached, as the default stack is: a fresh entry is read without an Effect step.
        CachedRegistry.layer().pipe(Layer.provide(Registry.layerMemory)),
        Codec.layer,
        // The default selector answers at once (an Exit), as the fast path needs.
        Selector.layer
      )
    )
  )

/** Counts the fibers started from the runtime the client captured. */
class CountingSupervisor extends Supervisor.AbstractSupervisor<void> {
  started = 0
  get value() {
    return Effect.void
  }
  override onStart(): void {
    this.started++
  }
}

const collect = async <A>(iterable: AsyncIterable<A>): Promise<Array<A>> => {
  const out: Array<A> = []
  for await (const item of iterable) out.push(item)
  return out
}

describe("Client.makePromise", () => {
  it.scopedLive("unary calls resolve with the reply and reject with the typed error itself", () =>
    Effect.gen(function*() {
      const testing = yield* Client.makePromise(Testing, { service: "testing" })
      const replies = yield* Effect.promise(() => Promise.all([1, 2, 3].map((i) => testing.Hello({ name: `n${i}` }))))
      expect(replies).toEqual(["Hello, n1!", "Hello, n2!", "Hello, n3!"])
      const error = yield* Effect.promise(() => testing.Hello({ name: "nobody" }).catch((e: unknown) => e))
      expect(error).toBeInstanceOf(UnknownName)
      expect(error).toMatchObject({ _tag: "UnknownName", name: "nobody" })
      const defect = yield* Effect.promise(() => testing.Boom({ message: "kaput" }).catch((e: unknown) => e))
      expect(defect).toMatchObject({ _tag: "InternalServerError" })
    }).pipe(Effect.provide(env(serve("n1")))))

  it.scopedLive("a unary call to a connected node starts no fiber; per-call options take the Effect path", () =>
    Effect.gen(function*() {
      const supervisor = new CountingSupervisor()
      const testing = yield* Effect.supervised(Client.makePromise(Testing, { service: "testing" }), supervisor)
      // An endpoint's first call dials and prepares the call: it runs on the runtime.
      expect(yield* Effect.promise(() => testing.Echo({ text: "first" }))).toMatchObject({ text: "first" })
      expect(yield* Effect.promise(() => testing.Hello({ name: "first" }))).toBe("Hello, first!")
      const before = supervisor.started
      const replies = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 50 }, (_, i) => testing.Echo({ text: `${i}` })))
      )
      expect(replies.map((r) => r.text)).toEqual(Array.from({ length: 50 }, (_, i) => `${i}`))
      const failed = yield* Effect.promise(() => testing.Hello({ name: "nobody" }).catch((e: unknown) => e))
      expect(failed).toBeInstanceOf(UnknownName)
      expect(supervisor.started).toBe(before)
      // With per-call options (here a timeout) the call is the Effect method's, run on the runtime.
      yield* Effect.promise(() => testing.Echo({ text: "x" }, { timeout: "2 seconds" }))
      expect(supervisor.started).toBe(before + 1)
    }).pipe(Effect.provide(env(serve("n1")))))

  it.scopedLive("a refused node is retried on another, as for Effect callers", () =>
    Effect.gen(function*() {
      const testing = yield* Client.makePromise(Testing, { service: "testing" })
      // Some calls go to the ghost first (random), are refused, and are retried on the live node.
      const replies = yield* Effect.promise(() =>
        Promise.all(Array.from({ length: 6 }, () => testing.Echo({ text: "x" })))
      )
      expect(replies.map((r) => r.node)).toEqual(Array(6).fill("b-live"))
    }).pipe(Effect.provide(env(serve("b-live"), ghost("a-ghost")))))

  it.scopedLive("retry: false: a refused call rejects with the TransportError", () =>
    Effect.gen(function*() {
      const testing = yield* Client.makePromise(Testing, { service: "testing", retry: false })
      const error = yield* Effect.promise(() => testing.Echo({ text: "x" }).catch((e: unknown) => e))
      expect(error).toBeInstanceOf(Errors.TransportError)
      expect(error).toMatchObject({ reason: "refused" })
    }).pipe(Effect.provide(env(ghost("only-ghost")))))

  it.scopedLive("an aborted signal rejects with its reason and cancels the call on the server", () =>
    Effect.gen(function*() {
      events.length = 0
      const testing = yield* Client.makePromise(Testing, { service: "testing" })
      yield* Effect.promise(() => testing.Echo({ text: "connect" }))
      const controller = new AbortController()
      const call = testing.Sleep({ millis: 60_000 }, { signal: controller.signal }).catch((e: unknown) => e)
      yield* eventually(Effect.sync(() => events.includes("sleep-started:60000")), (started) => started)
      controller.abort(new Error("caller gave up"))
      expect(yield* Effect.promise(() => call)).toMatchObject({ message: "caller gave up" })
      yield* eventually(Effect.sync(() => events.includes("sleep-interrupted:60000")), (stopped) => stopped)
      // Already aborted: nothing is sent.
      const early = yield* Effect.promise(() =>
        testing.Echo({ text: "x" }, { signal: AbortSignal.abort("too late") }).catch((e: unknown) => e)
      )
      expect(early).toBe("too late")
    }).pipe(Effect.provide(env(serve("n1")))))

  it.scopedLive("streams: server stream and bidi as async iterables, client stream from an iterable", () =>
    Effect.gen(function*() {
      const testing = yield* Client.makePromise(Testing, { service: "testing" })
      expect(yield* Effect.promise(() => collect(testing.Countdown({ from: 3 })))).toEqual([3, 2, 1, 0])
      expect(yield* Effect.promise(() => testing.Sum([1, 2, 3, 4]))).toBe(10)
      async function* lines() {
        yield "a"
        yield "b"
        yield "bye"
      }
      expect(yield* Effect.promise(() => collect(testing.Chat(lines())))).toEqual(["echo: a", "echo: b", "goodbye"])
      // A stream's typed error is thrown by the iteration, as it is.
      const failed = yield* Effect.promise(() => collect(testing.Chat(["a", "nobody"])).catch((e: unknown) => e))
      expect(failed).toBeInstanceOf(UnknownName)
      // Breaking out of the loop cancels the call; aborting its signal ends it with the reason.
      const controller = new AbortController()
      const seen: Array<number> = []
      const aborted = yield* Effect.promise(async () => {
        try {
          for await (const n of testing.Countdown({ from: 1_000_000 }, { signal: controller.signal })) {
            seen.push(n)
            if (seen.length === 3) controller.abort("enough")
          }
        } catch (e) {
          return e
        }
      })
      expect(aborted).toBe("enough")
      expect(seen.slice(0, 3)).toEqual([1_000_000, 999_999, 999_998])
    }).pipe(Effect.provide(env(serve("n1")))))
})
