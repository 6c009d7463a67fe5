/**
 * effect-micro server: `Server.layer` over TCP with the default codecs (JSON, protobuf, msgpack, bytes),
 * serving the `Bench` contract with an echo handler written with plain `Effect.succeed` (no `Effect.gen`),
 * or, with the argument `bidi`, the `BenchStream` contract whose `Chat` handler returns its input stream
 * (every message echoed); with `large`, the `BenchLarge` contract (echoes of raw bytes and of `{ data }`, and a
 * bidi stream of raw bytes); with `metrics`, `Debug.layerMetrics` on (Effect metrics per call); with
 * `effectful`, the echo written as `Effect.sync(() => item)`: a handler with work to run, which runs on a pooled
 * fiber (`Effect.succeed` returns an `Exit`, which the server reports without one). No registration (the
 * client dials the address directly). Sub-path imports only.
 *
 * Prints `READY host:port` on stdout. SIGTERM exits via `process.exit` so `--cpu-prof` writes its profile.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Codec from "../../src/Codec.js"
import * as Debug from "../../src/Debug.js"
import * as Registry from "../../src/Registry.js"
import * as Server from "../../src/Server.js"
import * as Transport from "../../src/Transport.js"
import { Bench, BenchLarge, BenchStream, serviceName } from "../contract.js"

const Deps = process.argv[2] === "metrics"
  ? Layer.mergeAll(Transport.layerTcp(), Registry.layerMemory, Codec.layer, Debug.layerMetrics)
  : Layer.mergeAll(Transport.layerTcp(), Registry.layerMemory, Codec.layer)
const options = { name: serviceName, address: "127.0.0.1:0", register: false } as const

const Live = process.argv[2] === "bidi"
  ? Server.layer(BenchStream, options).pipe(
    Layer.provide(BenchStream.toLayer({ Chat: (items) => items })),
    Layer.provide(Deps)
  )
  : process.argv[2] === "large"
  ? Server.layer(BenchLarge, options).pipe(
    Layer.provide(BenchLarge.toLayer({
      EchoBytes: (bytes) => Effect.succeed(bytes),
      EchoText: (message) => Effect.succeed(message),
      ChatBytes: (messages) => messages
    })),
    Layer.provide(Deps)
  )
  : Server.layer(Bench, options).pipe(
    Layer.provide(Bench.toLayer({
      Echo: process.argv[2] === "effectful" ? (item) => Effect.sync(() => item) : (item) => Effect.succeed(item)
    })),
    Layer.provide(Deps)
  )

const main = Effect.flatMap(Server.Server, (info) =>
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
