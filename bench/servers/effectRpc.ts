/**
 * @effect/rpc reference server over raw TCP: `RpcServer.layer(Bench, { disableTracing: true })` with
 * `RpcServer.layerProtocolSocketServer`, `NodeSocketServer.layer` on 127.0.0.1:0 and msgpack serialization.
 * The echo handler is the same `Effect.succeed` as effect-micro's. Prints `READY host:port`.
 */
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as SocketServer from "@effect/platform/SocketServer"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Bench } from "../contract.js"

const Handlers = Bench.toLayer({ Echo: (item) => Effect.succeed(item) })

const Socket = NodeSocketServer.layer({ host: "127.0.0.1", port: 0 })

const Live = RpcServer.layer(Bench, { disableTracing: true }).pipe(
  Layer.provide(Handlers),
  Layer.provide(RpcServer.layerProtocolSocketServer),
  Layer.provide(RpcSerialization.layerMsgPack),
  Layer.provideMerge(Socket)
)

const main = Effect.flatMap(SocketServer.SocketServer, (server) =>
  Effect.zipRight(
    Effect.sync(() => {
      const address = server.address as SocketServer.TcpAddress
      process.stdout.write(`READY ${address.hostname}:${address.port}\n`)
    }),
    Effect.never
  )).pipe(Effect.provide(Live))

Effect.runFork(main).addObserver((exit) => {
  process.stderr.write(`server exited: ${String(exit)}\n`)
  process.exit(1)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
