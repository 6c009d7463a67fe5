/**
 * What the docs' code blocks refer to without defining it (scripts/check-docs.ts imports these into a block
 * that uses them): the README's Greeter contract and handlers, an `AuthLive` providing the auth services, and
 * the services of docs/recipes.md (examples/recipes/services.ts).
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import type { Layer } from "effect"
import { Effect, Schema, Stream } from "effect"
import type { Auth, AuthRules, ServiceIdentity } from "effect-micro"
import { Contract } from "effect-micro"

export class NameRejected extends Schema.TaggedError<NameRejected>()("NameRejected", { name: Schema.String }) {}

export const Greeter = RpcGroup.make(
  Rpc.make("Hello", { payload: { name: Schema.String }, success: Schema.String, error: NameRejected })
    .annotate(Contract.Idempotent, true),
  Rpc.make("Countdown", { payload: { from: Schema.Int }, success: Schema.Int, stream: true }),
  Contract.clientStream("Sum", { payload: Schema.Number, success: Schema.Number }),
  Contract.bidi("Chat", { payload: Schema.String, success: Schema.String })
)

export const GreeterLive = Greeter.toLayer({
  Hello: ({ name }) => name === "" ? Effect.fail(new NameRejected({ name })) : Effect.succeed(`Hello, ${name}!`),
  Countdown: ({ from }) => Stream.iterate(from, (n) => n - 1).pipe(Stream.take(from + 1)),
  Sum: (numbers) => Stream.runFold(numbers, 0, (a, b) => a + b),
  Chat: (lines) => Stream.map(lines, (line) => `echo: ${line}`)
})

export declare const AuthLive: Layer.Layer<Auth.Auth | AuthRules.Rules | ServiceIdentity.ServiceIdentity>

export {
  HungInventorySystem,
  Inventory,
  InventoryDown,
  InventoryLive,
  Item,
  Orders,
  OrdersLive,
  System,
  UnknownSku
} from "../examples/recipes/services.js"
