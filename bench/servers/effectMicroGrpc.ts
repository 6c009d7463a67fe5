/**
 * effect-micro over gRPC: `GrpcServer.layer` serving `GrpcBench` (`Echo` with `Effect.succeed`, `Chat`
 * returning its input stream), messages encoded by the protobuf codec compiled from the Schemas. No
 * registration. Prints `READY host:port`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as GrpcServer from "../../src/plugins/grpc/GrpcServer.js"
import * as Registry from "../../src/Registry.js"
import { GrpcBench, grpcProtoOptions, serviceName } from "../contract.js"

const Live = GrpcServer.layer(GrpcBench, {
  ...grpcProtoOptions,
  name: serviceName,
  address: "127.0.0.1:0",
  register: false
}).pipe(
  Layer.provide(GrpcBench.toLayer({ Echo: (item) => Effect.succeed(item), Chat: (items) => items })),
  Layer.provide(Registry.layerMemory)
)

const main = Effect.flatMap(GrpcServer.GrpcServer, (info) =>
  Effect.zipRight(
    Effect.sync(() => process.stdout.write(`READY ${info.listenAddress}\n`)),
    Effect.never
  )).pipe(Effect.provide(Live))

Effect.runFork(main).addObserver((exit) => {
  process.stderr.write(`server exited: ${String(exit)}\n`)
  process.exit(1)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
