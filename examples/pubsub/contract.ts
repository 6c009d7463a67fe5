/** What the pubsub example's processes share: a typed topic and the billing service's RPC contract. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Topic } from "effect-micro"
import * as Schema from "effect/Schema"

export const Order = Schema.Struct({
  id: Schema.String,
  item: Schema.String,
  quantity: Schema.Int.pipe(Schema.nonNegative()),
  total: Schema.Number
})
export type Order = typeof Order.Type

/** Orders are published here; billing workers share the queue group "billing", the auditor sees every order. */
export const OrderPlaced = Topic.make("orders.placed", Order)

/** The billing service also serves RPC: which orders did this node invoice? */
export const Billing = RpcGroup.make(
  Rpc.make("Invoiced", { success: Schema.Struct({ node: Schema.String, orders: Schema.Array(Schema.String) }) })
)
