/**
 * effect-micro's HTTP gateway (`Gateway.layer`) in front of the effect-micro bench server (a child process,
 * see backend.ts): `POST /bench/Echo` with the JSON item → a unary call over TCP → the JSON reply. The
 * gateway's client reaches the service through a static registry entry (no discovery traffic); default call
 * options (5 s deadline, retries). Prints `READY 127.0.0.1:port`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Client from "../../src/Client.js"
import * as Codec from "../../src/Codec.js"
import * as Gateway from "../../src/Gateway.js"
import * as Registry from "../../src/Registry.js"
import * as Selector from "../../src/Selector.js"
import * as Transport from "../../src/Transport.js"
import { serviceName } from "../contract.js"
import { startBackend } from "./backend.js"

const backend = await startBackend("effectMicro")

const Live = Gateway.layer({ port: 0, host: "127.0.0.1" }).pipe(
  Layer.provide(Client.layer()),
  Layer.provide(
    Layer.mergeAll(
      Registry.layerStatic({ [serviceName]: [backend] }),
      Transport.layerTcp(),
      Codec.layer,
      Selector.layer
    )
  )
)

const main = Effect.flatMap(
  Gateway.Gateway,
  ({ host, port }) => Effect.zipRight(Effect.sync(() => process.stdout.write(`READY ${host}:${port}\n`)), Effect.never)
).pipe(
  Effect.provide(Live)
)

Effect.runFork(main).addObserver((exit) => {
  process.stderr.write(`gateway exited: ${String(exit)}\n`)
  process.exit(1)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
