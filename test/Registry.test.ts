import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Registry from "../src/Registry.js"
import { makeService, registryContract } from "./support/registryContract.js"

registryContract("memory", {
  make: Effect.map(Registry.makeMemory, (registry) => ({ writer: registry, reader: registry })),
  clock: "test",
  ttl: "10 seconds"
})

describe("Registry.layerStatic", () => {
  it.effect("resolves configured addresses and ignores register", () =>
    Effect.gen(function*() {
      const registry = yield* Registry.Registry
      yield* registry.register(makeService("other", [{ id: "x", port: 1 }]))
      const [service] = yield* registry.getService("greeter")
      expect(service!.nodes.map((n) => n.address)).toEqual(["127.0.0.1:4000", "127.0.0.1:4001"])
      const error = yield* Effect.flip(registry.getService("other"))
      expect(error._tag).toBe("ServiceNotFound")
      expect((yield* registry.listServices).map((s) => s.name)).toEqual(["greeter"])
    }).pipe(Effect.provide(Registry.layerStatic({ greeter: ["127.0.0.1:4000", "127.0.0.1:4001"] }))))
})
