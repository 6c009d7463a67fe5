/**
 * Calls the greeter by name: discovery, load balancing and retries come from the layers.
 *   npx tsx examples/greeter/client.ts Ada
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Client, Defaults } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { Greeter } from "./contract.js"

const program = Effect.gen(function*() {
  const greeter = yield* Client.make(Greeter, { service: "greeter" })
  const name = process.argv[2] ?? "Ada"

  const greeting = yield* greeter.Hello({ name })
  yield* Console.log(`Hello → ${greeting.message} (served by ${greeting.node})`)

  const rejected = yield* Effect.flip(greeter.Hello({ name: " " }))
  yield* Console.log(`Hello(" ") → ${rejected._tag}`)

  const countdown = yield* Stream.runCollect(greeter.Countdown({ from: 3 }))
  yield* Console.log(`Countdown → ${[...countdown].join(", ")}`)

  const all = yield* greeter.GreetAll(Stream.make("Ada", "Grace", "Edsger"))
  yield* Console.log(`GreetAll → ${all.join(" ")}`)

  const chat = yield* Stream.runCollect(greeter.Chat(Stream.make("hi", "how are you?")))
  yield* Console.log(`Chat → ${[...chat].join(" | ")}`)
})

program.pipe(
  Effect.provide(process.env.MICRO_MDNS_LAN ? Defaults.layer : Defaults.layerLoopback),
  NodeRuntime.runMain
)
