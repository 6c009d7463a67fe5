/** Server registration lifecycle on TestClock: register with a TTL, re-register, deregister before draining. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { Codec, Registry, Server, Transport } from "../src/index.js"
import { handlers, Testing } from "./support/contract.js"

/** A registry that records what the server does with it. */
const recording = (log: Array<string>) =>
  Layer.scoped(
    Registry.Registry,
    Effect.map(Registry.makeMemory, (memory) => ({
      ...memory,
      register: (service, options) =>
        Effect.zipRight(
          Effect.sync(() => log.push(`register ttl=${String(options?.ttl)}`)),
          memory.register(service, options)
        ),
      deregister: (service) => Effect.zipRight(Effect.sync(() => log.push("deregister")), memory.deregister(service))
    }))
  )

describe("Server lifecycle", () => {
  it.effect("registers on start with the TTL, re-registers on the interval, deregisters on stop", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const scope = yield* Scope.make()
      const env = yield* Layer.buildWithScope(
        Server.layer(Testing, {
          name: "testing",
          address: "memory:0",
          registerTtl: "9 seconds",
          registerInterval: "3 seconds"
        }).pipe(
          Layer.provide(handlers("n1")),
          Layer.provideMerge(Layer.mergeAll(Transport.layerMemory, recording(log), Codec.layer))
        ),
        scope
      )
      const info = Layer.succeedContext(env)
      const services = yield* Effect.flatMap(Registry.Registry, (r) => r.getService("testing")).pipe(
        Effect.provide(info)
      )
      expect(services[0]!.nodes.map((n) => n.address)).toEqual([(yield* Effect.provide(Server.Server, info)).address])
      expect(services[0]!.endpoints.map((e) => e.name)).toContain("Countdown")
      expect(log).toEqual(["register ttl=9 seconds"])

      yield* TestClock.adjust("10 seconds")
      expect(log.filter((l) => l.startsWith("register")).length).toBe(4) // start + 3 re-registrations
      // still there after the TTL because it was renewed
      expect(
        (yield* Effect.flatMap(Registry.Registry, (r) => r.getService("testing")).pipe(Effect.provide(info))).length
      ).toBe(1)

      yield* Scope.close(scope, Exit.void)
      expect(log.at(-1)).toBe("deregister")
    }))

  it.effect("watchers see the node appear and disappear", () =>
    Effect.gen(function*() {
      const registryLayer = Registry.layerMemory
      const events = yield* Effect.gen(function*() {
        const registry = yield* Registry.Registry
        const fiber = yield* registry.watch({ service: "testing" }).pipe(Stream.take(2), Stream.runCollect, Effect.fork)
        yield* Effect.yieldNow()
        yield* Effect.scoped(
          Server.make(Testing, { name: "testing", address: "memory:0" }).pipe(
            Effect.provide(handlers("n1")),
            Effect.provide(Layer.merge(Transport.layerMemory, Codec.layer))
          )
        )
        return yield* fiber
      }).pipe(Effect.provide(registryLayer), Effect.scoped)
      expect([...events].map((e) => e.type)).toEqual(["create", "delete"])
    }))
})
