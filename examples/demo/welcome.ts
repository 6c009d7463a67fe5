/**
 * The "welcome" service: answers Welcome(name) by calling the greeter service — service-to-service
 * discovery over multicast DNS, load balanced across the greeter's nodes.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Client, Defaults, Errors, Server } from "effect-micro"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Greeter, NameRejected } from "../greeter/contract.js"

export const Welcome = RpcGroup.make(
  Rpc.make("Welcome", {
    payload: { name: Schema.String },
    success: Schema.Struct({ text: Schema.String, greeterNode: Schema.String }),
    error: Schema.Union(NameRejected, Errors.ServiceUnavailable)
  })
)

const WelcomeLive = Welcome.toLayer(Effect.gen(function*() {
  const greeter = yield* Client.make(Greeter, { service: "greeter" })
  return {
    Welcome: ({ name }) =>
      greeter.Hello({ name }).pipe(
        Effect.map((greeting) => ({ text: `${greeting.message} Welcome aboard.`, greeterNode: greeting.node })),
        // Our contract promises NameRejected or ServiceUnavailable; any other call failure maps to 503.
        Effect.catchIf(
          (error): error is Exclude<typeof error, NameRejected> => error._tag !== "NameRejected",
          (error) => Effect.fail(Errors.ServiceUnavailable.of(`greeter failed: ${error.detail}`, "welcome"))
        )
      )
  }
}))

if (import.meta.url === `file://${process.argv[1]}`) {
  Effect.gen(function*() {
    const server = yield* Server.Server
    yield* Effect.log(`welcome serving on ${server.address}`)
    yield* Effect.never
  }).pipe(
    Effect.provide(
      Server.layer(Welcome, { name: "welcome", address: "127.0.0.1:0" }).pipe(
        Layer.provide(WelcomeLive),
        Layer.provide(Defaults.layerLoopback)
      )
    ),
    NodeRuntime.runMain
  )
}
