/**
 * The services of docs/recipes.md (run by test/Recipes.test.ts): Orders calls Inventory and maps the call's
 * failures into its own errors; Inventory serves items from the Store, with a streaming Watch endpoint.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Client, Defaults, Errors, Server, Store } from "effect-micro"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

// ---- Recipe 1: a service calling another, mapping CallError into its own errors

export class Item extends Schema.Class<Item>("Item")({ sku: Schema.String, stock: Schema.Int }) {}
export class UnknownSku extends Schema.TaggedError<UnknownSku>()("UnknownSku", { sku: Schema.String }) {}
export class InventoryDown extends Schema.TaggedError<InventoryDown>()("InventoryDown", { reason: Schema.String }) {}

export const Inventory = RpcGroup.make(
  Rpc.make("Get", { payload: { sku: Schema.String }, success: Item, error: UnknownSku }),
  Rpc.make("Watch", { payload: { sku: Schema.String }, success: Item, error: UnknownSku, stream: true })
)
export const Orders = RpcGroup.make(
  Rpc.make("Place", {
    payload: { sku: Schema.String },
    success: Schema.String,
    // The caller of Orders sees Orders' errors, not the framework errors of Orders' own calls.
    error: Schema.Union(UnknownSku, InventoryDown)
  })
)

export const OrdersLive = Orders.toLayer(Effect.gen(function*() {
  const inventory = yield* Client.make(Inventory, { service: "inventory" })
  return {
    Place: ({ sku }) =>
      inventory.Get({ sku }).pipe(
        // Framework failures (timeouts, unreachable nodes, ...) become this contract's own error.
        Effect.catchIf(Errors.isMicroError, (error) => Effect.fail(new InventoryDown({ reason: error.detail }))),
        Effect.flatMap((item) =>
          item.stock > 0 ? Effect.succeed(`order for ${sku} placed`) : Effect.fail(new UnknownSku({ sku }))
        )
      )
  }
}))

// ---- Recipe 2: a Store-backed streaming endpoint (the current value, then each change)

export const InventoryLive = Inventory.toLayer(Effect.gen(function*() {
  const items = yield* Store.table(Item, { table: "items" })
  const get = (sku: string) =>
    items.get(sku).pipe(Effect.catchTag("StoreError", () => Effect.fail(new UnknownSku({ sku }))))
  return {
    Get: ({ sku }) => get(sku),
    Watch: ({ sku }) =>
      Stream.concat(
        Stream.fromEffect(get(sku)),
        items.watch({ prefix: sku }).pipe(
          Stream.filter((change) => change.key === sku && change.type === "write"),
          // A store failure mid-stream is not part of this contract: the caller gets InternalServerError.
          Stream.orDie,
          Stream.mapEffect(() => get(sku))
        )
      ).pipe(Stream.changesWith((a, b) => a.stock === b.stock)) // a write of the same value sends nothing
  }
}))

// ---- Recipe 3: the whole system in one test (and one whose Inventory never answers)

export const System = Layer.mergeAll(
  Server.layer(Orders, { name: "orders" }).pipe(Layer.provide(OrdersLive)),
  Server.layer(Inventory, { name: "inventory" }).pipe(Layer.provide(InventoryLive))
).pipe(Layer.provideMerge(Defaults.layerTest))

export const HungInventorySystem = Layer.mergeAll(
  Server.layer(Orders, { name: "orders" }).pipe(Layer.provide(OrdersLive)),
  Server.layer(Inventory, { name: "inventory" }).pipe(
    Layer.provide(Inventory.toLayer({ Get: () => Effect.never, Watch: () => Stream.never }))
  )
).pipe(Layer.provideMerge(Defaults.layerTest))
