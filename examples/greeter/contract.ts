/** The greeter contract, shared by server and client. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Contract } from "effect-micro"
import * as Schema from "effect/Schema"

export class NameRejected extends Schema.TaggedError<NameRejected>()("NameRejected", {
  name: Schema.String,
  reason: Schema.String
}) {}

export const Greeting = Schema.Struct({ message: Schema.String, node: Schema.String })

export const Greeter = RpcGroup.make(
  // unary, with a typed error; idempotent so the client may retry it on another node after a timeout
  Rpc.make("Hello", { payload: { name: Schema.String }, success: Greeting, error: NameRejected })
    .annotate(Contract.Idempotent, true),
  // server streaming
  Rpc.make("Countdown", { payload: { from: Schema.Int }, success: Schema.Int, stream: true }),
  // client streaming
  Contract.clientStream("GreetAll", { payload: Schema.String, success: Schema.Array(Schema.String) }),
  // bidirectional
  Contract.bidi("Chat", { payload: Schema.String, success: Schema.String })
)
