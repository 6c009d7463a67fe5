/**
 * The greeter service. Run several: each registers over multicast DNS and clients spread calls over them.
 *   npx tsx examples/greeter/server.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Defaults, Server } from "effect-micro"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { Greeter, NameRejected } from "./contract.js"

const node = process.env.NODE_NAME ?? `greeter-${process.pid}`

const GreeterLive = Greeter.toLayer({
  Hello: ({ name }) =>
    name.trim() === ""
      ? Effect.fail(new NameRejected({ name, reason: "empty" }))
      : Effect.succeed({ message: `Hello, ${name}!`, node }),
  Countdown: ({ from }) => Stream.iterate(from, (n) => n - 1).pipe(Stream.take(from + 1)),
  GreetAll: (names) =>
    Stream.runCollect(Stream.map(names, (name) => `Hello, ${name}!`)).pipe(Effect.map((c) => [...c])),
  Chat: (lines) => Stream.map(lines, (line) => `${node} heard "${line}"`)
})

const ServerLive = Server.layer(Greeter, {
  name: "greeter",
  version: "1.0.0",
  id: node,
  // Loopback keeps the example on this host; use "0.0.0.0:0" (the default) on a LAN.
  address: process.env.ADDRESS ?? "127.0.0.1:0"
}).pipe(Layer.provide(GreeterLive))

Effect.gen(function*() {
  const server = yield* Server.Server
  yield* Effect.log(`greeter ${node} serving on ${server.address}`)
  yield* Effect.never
}).pipe(
  Effect.provide(ServerLive.pipe(Layer.provide(process.env.MICRO_MDNS_LAN ? Defaults.layer : Defaults.layerLoopback))),
  NodeRuntime.runMain
)
