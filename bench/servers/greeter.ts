/**
 * Start-up reference for the `startup` group: a greeter service as a user writes it — imports from the
 * package's barrel (`src/index.ts`, i.e. `from "effect-micro"`) and the `effect` barrel, `Defaults.layerLoopback`
 * (mdns discovery, kept on loopback), `Server.layer` with a one-endpoint contract. Prints `READY host:port` once
 * the server listens and has registered, so spawn → READY is process start → serving.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Effect, Layer, Schema } from "effect"
import { Defaults, Server } from "../../src/index.js"

const Greeter = RpcGroup.make(Rpc.make("Hello", { payload: { name: Schema.String }, success: Schema.String }))
const GreeterLive = Greeter.toLayer({ Hello: ({ name }) => Effect.succeed(`Hello, ${name}!`) })

const main = Effect.flatMap(
  Server.Server,
  (info) => Effect.zipRight(Effect.sync(() => process.stdout.write(`READY ${info.address}\n`)), Effect.never)
).pipe(
  Effect.provide(
    Server.layer(Greeter, { name: `greeter-${process.pid}`, address: "127.0.0.1:0" }).pipe(
      Layer.provide(GreeterLive),
      Layer.provide(Defaults.layerLoopback)
    )
  )
)

Effect.runFork(main).addObserver((exit) => {
  process.stderr.write(`greeter exited: ${String(exit)}\n`)
  process.exit(1)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
