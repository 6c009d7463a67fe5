/**
 * An auditor: sees every order (no queue group) as raw bytes plus headers.
 *   npx tsx examples/pubsub/auditor.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Defaults, Subscriber } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { OrderPlaced } from "./contract.js"

const Main = Subscriber.layerRaw(
  OrderPlaced.name,
  (message) => Console.log(`auditor: ${message.contentType} ${new TextDecoder().decode(message.body)}`)
).pipe(
  Layer.provideMerge(process.env.MICRO_MDNS_LAN ? Defaults.layer : Defaults.layerLoopback)
)

process.stdin.on("end", () => process.kill(process.pid, "SIGTERM")).resume()

Effect.gen(function*() {
  yield* Console.log("auditor: ready")
  yield* Effect.never
}).pipe(Effect.provide(Main), NodeRuntime.runMain)
