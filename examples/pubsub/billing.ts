/**
 * A billing worker: an RPC service and a subscriber of `orders.placed` in the queue group "billing", as one
 * Layer (the subscription starts and stops with the service). Run several: each order is billed once.
 *   NODE_NAME=billing-1 npx tsx examples/pubsub/billing.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Defaults, Server, Subscriber } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Billing, OrderPlaced } from "./contract.js"

const node = process.env.NODE_NAME ?? `billing-${process.pid}`
const invoiced: Array<string> = []

class OutOfStock extends Error {
  readonly _tag = "OutOfStock"
}

const BillingLive = Billing.toLayer({ Invoiced: () => Effect.succeed({ node, orders: [...invoiced] }) })

const OrdersSubscriber = Subscriber.layer(OrderPlaced, (order, message) =>
  order.quantity === 0
    // A handler failure is reported back to the publisher (HTTP broker) as a delivery failure.
    ? Effect.fail(new OutOfStock(`order ${order.id}: nothing to bill`))
    : Effect.zipRight(
      Effect.sync(() => invoiced.push(order.id)),
      Console.log(
        `${node}: billed ${order.id} (${order.quantity} × ${order.item}, ${order.total} €) trace=${
          message.headers["trace-id"] ?? "-"
        }`
      )
    ), { queue: "billing" })

const Main = Layer.mergeAll(
  Server.layer(Billing, { name: "billing", id: node, address: "127.0.0.1:0" }).pipe(Layer.provide(BillingLive)),
  OrdersSubscriber
).pipe(
  Layer.provideMerge(process.env.MICRO_MDNS_LAN ? Defaults.layer : Defaults.layerLoopback)
)

// Exit with the parent (main.ts closes our stdin).
process.stdin.on("end", () => process.kill(process.pid, "SIGTERM")).resume()

Effect.gen(function*() {
  yield* Console.log(`${node}: ready`)
  yield* Effect.never
}).pipe(Effect.provide(Main), NodeRuntime.runMain)
