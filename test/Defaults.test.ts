/** `Defaults.layerTest`: a whole system in one process, in memory, on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import { Broker, Client, Defaults, Server, Store } from "../src/index.js"
import { handlers, Testing } from "./support/contract.js"

const system = Server.layer(Testing, { name: "testing" }).pipe(
  Layer.provide(handlers("n1")),
  Layer.provideMerge(Defaults.layerTest)
)

describe("Defaults.layerTest", () => {
  it.scoped("a service and its caller find each other and talk; broker and store work; TestClock drives deadlines", () =>
    Effect.gen(function*() {
      const client = yield* Client.make(Testing, { service: "testing" })
      expect(yield* client.Hello({ name: "Ada" })).toContain("Ada")

      const got: Array<number> = []
      yield* Broker.subscribe("events", (message) => Effect.sync(() => got.push(message.body[0]!)))
      yield* Broker.publish("events", new Uint8Array([7]))
      expect(got).toEqual([7])

      const store = yield* Store.Store
      yield* store.write({ key: "k", value: new TextEncoder().encode("v") })
      expect((yield* store.read("k"))[0]!.key).toBe("k")

      // The client's 5 s deadline passes on TestClock alone: a hung call fails with Timeout, no real wait.
      const slow = yield* Effect.fork(Effect.either(client.Sleep({ millis: 60_000 })))
      yield* TestClock.adjust("6 seconds")
      const outcome = yield* Fiber.join(slow)
      expect(outcome._tag === "Left" && outcome.left._tag).toBe("Timeout")
    }).pipe(Effect.provide(system)))
})
