import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as CachedRegistry from "../src/CachedRegistry.js"
import type { Peekable } from "../src/internal/registry/cached.js"
import { peekKey } from "../src/internal/registry/cached.js"
import * as Registry from "../src/Registry.js"
import { makeService, registryContract } from "./support/registryContract.js"

/** A memory registry whose getService calls are counted and can be made to fail. */
const makeCounted = Effect.gen(function*() {
  const memory = yield* Registry.makeMemory
  const calls = yield* Ref.make(0)
  const down = yield* Ref.make(false)
  const wrapped: Registry.Registry.Service = {
    ...memory,
    getService: (name) =>
      Ref.update(calls, (n) => n + 1).pipe(
        Effect.zipRight(Ref.get(down)),
        Effect.flatMap((isDown) =>
          isDown
            ? Effect.fail(new Registry.RegistryError({ reason: "Unavailable", detail: "engine down (test)" }))
            : memory.getService(name)
        )
      )
  }
  const cached = yield* CachedRegistry.make(wrapped)
  yield* settle
  return { memory, cached, calls, down }
})

// lets the cache's watch fiber run
const settle = Effect.repeatN(Effect.yieldNow(), 20)

registryContract("cached over memory", {
  make: Effect.map(makeCounted, ({ cached }) => ({ writer: cached, reader: cached })),
  clock: "test",
  ttl: "10 seconds"
})

describe("CachedRegistry", () => {
  it.scoped("serves hits from memory, fills on first miss", () =>
    Effect.gen(function*() {
      const { cached, calls, memory } = yield* makeCounted
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      yield* cached.getService("greeter")
      yield* cached.getService("greeter")
      yield* cached.getService("greeter")
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("the underlying watch keeps entries fresh without refetching", () =>
    Effect.gen(function*() {
      const { cached, calls, memory } = yield* makeCounted
      const a = makeService("greeter", [{ id: "g1", port: 1 }])
      const b = makeService("greeter", [{ id: "g2", port: 2 }])
      yield* memory.register(a)
      yield* cached.getService("greeter")
      yield* memory.register(b)
      yield* settle
      const [service] = yield* cached.getService("greeter")
      expect(service!.nodes.map((n) => n.id).sort()).toEqual(["g1", "g2"])
      yield* memory.register(makeService("greeter", [{ id: "g3", port: 3 }], "2.0.0"))
      yield* settle
      expect((yield* cached.getService("greeter")).map((s) => s.version).sort()).toEqual(["1.0.0", "2.0.0"])
      yield* memory.deregister(a)
      yield* memory.deregister(b)
      yield* settle
      expect((yield* cached.getService("greeter")).map((s) => s.version)).toEqual(["2.0.0"])
      expect(yield* Ref.get(calls)).toBe(1)
      // the last version going away empties the entry: the next call asks the registry, which says not found
      yield* memory.deregister(makeService("greeter", [{ id: "g3", port: 3 }], "2.0.0"))
      yield* settle
      const error = yield* Effect.flip(cached.getService("greeter"))
      expect(error._tag).toBe("ServiceNotFound")
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("entries older than the staleness bound (1 min) are refetched in the background", () =>
    Effect.gen(function*() {
      const { cached, calls, memory } = yield* makeCounted
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      yield* cached.getService("greeter")
      yield* TestClock.adjust("59 seconds")
      yield* cached.getService("greeter")
      expect(yield* Ref.get(calls)).toBe(1)
      yield* TestClock.adjust("2 seconds")
      yield* cached.getService("greeter")
      yield* settle
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("a stale entry is served at once while one slow fetch refreshes it (etcd starting up)", () =>
    Effect.gen(function*() {
      const memory = yield* Registry.makeMemory
      const calls = yield* Ref.make(0)
      const slow = yield* Ref.make(false)
      const registry: Registry.Registry.Service = {
        ...memory,
        getService: (name) =>
          Ref.update(calls, (n) => n + 1).pipe(
            Effect.zipRight(
              Effect.flatMap(Ref.get(slow), (isSlow) => isSlow ? Effect.sleep("5 seconds") : Effect.void)
            ),
            Effect.zipRight(memory.getService(name))
          )
      }
      const cached = yield* CachedRegistry.make(registry)
      yield* settle
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      yield* cached.getService("greeter")
      yield* Ref.set(slow, true)
      yield* TestClock.adjust("61 seconds")
      // Every lookup answers without waiting on the registry; one fetch runs for all of them.
      for (let i = 0; i < 3; i++) {
        const [service] = yield* cached.getService("greeter")
        expect(service!.nodes.map((n) => n.id)).toEqual(["g1"])
      }
      yield* settle
      expect(yield* Ref.get(calls)).toBe(2)
      // Once the fetch is back the entry is fresh again: served with no further fetch.
      yield* memory.register(makeService("greeter", [{ id: "g2", port: 2 }]), { ttl: "10 minutes" })
      yield* TestClock.adjust("5 seconds")
      yield* settle
      const [service] = yield* cached.getService("greeter")
      expect(service!.nodes.map((n) => n.id).sort()).toEqual(["g1", "g2"])
      expect(yield* Ref.get(calls)).toBe(2)
    }))

  it.scoped("when the registry fails, stale entries are served; without one the error surfaces", () =>
    Effect.gen(function*() {
      const { cached, calls, down, memory } = yield* makeCounted
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      yield* cached.getService("greeter")
      yield* Ref.set(down, true)
      yield* TestClock.adjust("2 minutes")
      const [service] = yield* cached.getService("greeter")
      expect(service!.nodes.map((n) => n.id)).toEqual(["g1"])
      yield* settle
      expect(yield* Ref.get(calls)).toBe(2)
      // The failed refresh keeps the entry: still served.
      expect((yield* cached.getService("greeter"))[0]!.nodes.map((n) => n.id)).toEqual(["g1"])
      const error = yield* Effect.flip(cached.getService("other"))
      expect(error).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
    }))

  it.scoped("concurrent misses for one name make one underlying call", () =>
    Effect.gen(function*() {
      const memory = yield* Registry.makeMemory
      const calls = yield* Ref.make(0)
      const slow: Registry.Registry.Service = {
        ...memory,
        getService: (name) =>
          Ref.update(calls, (n) => n + 1).pipe(
            Effect.zipRight(Effect.sleep("1 second")),
            Effect.zipRight(memory.getService(name))
          )
      }
      const cached = yield* CachedRegistry.make(slow)
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      const fibers = yield* Effect.forEach([1, 2, 3, 4], () => Effect.fork(cached.getService("greeter")))
      yield* settle
      yield* TestClock.adjust("1 second")
      const results = yield* Fiber.joinAll(fibers)
      expect(results.every((r) => r[0]!.nodes[0]!.id === "g1")).toBe(true)
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.scoped("the synchronous read (the HTTP broker's hot path) sees exactly the fresh entries getService serves", () =>
    Effect.gen(function*() {
      const { cached, calls, memory } = yield* makeCounted
      const peek = (cached as Peekable)[peekKey]!
      expect(peek).toBeTypeOf("function")
      // Never asked: nothing cached, nothing fetched by the read itself.
      expect(peek("greeter")).toBeUndefined()
      yield* memory.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      expect(peek("greeter")).toBeUndefined()
      expect(yield* Ref.get(calls)).toBe(0)
      const fetched = yield* cached.getService("greeter")
      expect(peek("greeter")).toBe(fetched)
      // Kept fresh by the watch.
      yield* memory.register(makeService("greeter", [{ id: "g2", port: 2 }]))
      yield* settle
      expect(peek("greeter")!.flatMap((s) => s.nodes.map((n) => n.id)).sort()).toEqual(["g1", "g2"])
      // Stale after the ttl (TestClock captured when the cache was built): undefined until getService has
      // refetched (in the background: it serves the stale entry meanwhile).
      yield* TestClock.adjust("61 seconds")
      expect(peek("greeter")).toBeUndefined()
      yield* cached.getService("greeter")
      yield* settle
      expect(yield* Ref.get(calls)).toBe(2)
      expect(peek("greeter")).toBe(yield* cached.getService("greeter"))
      // Gone from the registry: the entry is dropped.
      yield* memory.deregister(makeService("greeter", [{ id: "g1", port: 1 }]))
      yield* memory.deregister(makeService("greeter", [{ id: "g2", port: 2 }]))
      yield* settle
      expect(peek("greeter")).toBeUndefined()
    }))

  it.scoped("layer wraps the Registry in context", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* registry.register(makeService("greeter", [{ id: "g1", port: 1 }]))
      expect((yield* registry.getService("greeter"))[0]!.name).toBe("greeter")
    }).pipe(Effect.provide(CachedRegistry.layer().pipe(Layer.provide(Registry.layerMemory)))))
})
