/**
 * The recipes of docs/recipes.md, run: a service that calls another and maps the call's failures into its own
 * contract's errors; a Store-backed streaming endpoint; whole-system tests on `Defaults.layerTest` and TestClock;
 * Promise code calling through `Client.makePromise` on a `ManagedRuntime`.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import {
  HungInventorySystem,
  Inventory,
  InventoryDown,
  Item,
  Orders,
  System,
  UnknownSku
} from "../examples/recipes/services.js"
import { Client, Store } from "../src/index.js"

const seed = Effect.flatMap(
  Store.table(Item, { table: "items" }),
  (items) => items.set("apple", new Item({ sku: "apple", stock: 3 }))
)

describe("recipes (docs/recipes.md)", () => {
  it.scoped("a service calls another and maps its failures into its own contract's errors", () =>
    Effect.gen(function*() {
      yield* seed
      const orders = yield* Client.make(Orders, { service: "orders" })
      expect(yield* orders.Place({ sku: "apple" })).toBe("order for apple placed")
      const unknown = yield* Effect.flip(orders.Place({ sku: "pear" }))
      expect(unknown).toBeInstanceOf(UnknownSku)
    }).pipe(Effect.provide(System)))

  it.scoped("a Store-backed streaming endpoint sends the value, then each change", () =>
    Effect.gen(function*() {
      yield* seed
      const inventory = yield* Client.make(Inventory, { service: "inventory" })
      const items = yield* Store.table(Item, { table: "items" })
      const seen: Array<number> = []
      const fiber = yield* inventory.Watch({ sku: "apple" }).pipe(
        Stream.take(3),
        Stream.runForEach((item) => Effect.sync(() => seen.push(item.stock))),
        Effect.fork
      )
      // Each change is written until it has come through (the watch subscribes right after the first value).
      const writeUntilSeen = (stock: number) =>
        items.set("apple", new Item({ sku: "apple", stock })).pipe(
          Effect.zipRight(Effect.yieldNow().pipe(Effect.repeatN(20))),
          Effect.repeat({ until: () => seen.includes(stock), times: 100 })
        )
      yield* Effect.yieldNow().pipe(Effect.repeat({ until: () => seen.length > 0, times: 1000 }))
      yield* writeUntilSeen(2)
      yield* writeUntilSeen(1)
      yield* Fiber.join(fiber)
      expect(seen).toEqual([3, 2, 1])
    }).pipe(Effect.provide(System)))

  it.scoped("deadlines follow TestClock: a hung dependency becomes the caller's own error without waiting", () =>
    Effect.gen(function*() {
      // The caller's deadline is longer than Orders' own call to Inventory (5 s by default), so the answer
      // it gets is Orders' mapped error, not its own Timeout.
      const orders = yield* Client.make(Orders, { service: "orders", timeout: "20 seconds" })
      const fiber = yield* Effect.fork(Effect.flip(orders.Place({ sku: "apple" })))
      yield* TestClock.adjust("30 seconds")
      const error = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(InventoryDown)
      expect((error as InventoryDown).reason).toContain("within")
    }).pipe(Effect.provide(HungInventorySystem)))

  it("Promise code calls through Client.makePromise on a ManagedRuntime: replies, typed errors, streams", async () => {
    const runtime = ManagedRuntime.make(System)
    try {
      await runtime.runPromise(seed)
      const orders = await runtime.runPromise(Client.makePromise(Orders, { service: "orders" }))
      expect(await orders.Place({ sku: "apple" })).toBe("order for apple placed")
      const unknown = await orders.Place({ sku: "pear" }).catch((error: unknown) => error)
      expect(unknown).toBeInstanceOf(UnknownSku)
      const inventory = await runtime.runPromise(Client.makePromise(Inventory, { service: "inventory" }))
      for await (const item of inventory.Watch({ sku: "apple" })) {
        expect(item.stock).toBe(3)
        break // leaving the loop cancels the stream
      }
    } finally {
      await runtime.dispose()
    }
  })
})
