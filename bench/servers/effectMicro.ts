/**
 * effect-micro server: `Server.layer` over TCP with the default codecs (JSON, msgpack, bytes), serving the
 * `Bench` contract with an echo handler written with plain `Effect.succeed` (no `Effect.gen`). No
 * registration (the client dials the address directly). Sub-path imports only, no barrels.
 *
 * Prints `READY host:port` on stdout. SIGTERM exits via `process.exit` so `--cpu-prof` writes its profile.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Codec from "../../src/Codec.js"
import * as Registry from "../../src/Registry.js"
import * as Server from "../../src/Server.js"
import * as Transport from "../../src/Transport.js"
import { Bench, serviceName } from "../contract.js"

const Handlers = Bench.toLayer({ Echo: (item) => Effect.succeed(item) })

const Live = Server.layer(Bench, { name: serviceName, address: "127.0.0.1:0", register: false }).pipe(
  Layer.provide(Handlers),
  Layer.provide(Layer.mergeAll(Transport.layerTcp(), Registry.layerMemory, Codec.layer))
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
