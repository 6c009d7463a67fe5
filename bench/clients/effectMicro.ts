/**
 * effect-micro client: `Client.layer()` with a static registry, random selector, TCP and the default codecs;
 * `Client.make(Bench, { service, node: address, contentType })`. Retries, deadlines (5 s, sent to the
 * server) and metadata handling stay at their defaults unless `options` overrides them (diagnostic scenarios).
 * One fiber per call, forked from a prebuilt runtime.
 */
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Client from "../../src/Client.js"
import * as Codec from "../../src/Codec.js"
import * as Registry from "../../src/Registry.js"
import * as Selector from "../../src/Selector.js"
import * as Transport from "../../src/Transport.js"
import { Bench, serviceName } from "../contract.js"
import { payload } from "../payload.js"
import type { LoadClient } from "./types.js"

export const make = (
  contentType: string,
  options?: Pick<Client.ClientOptions, "timeout" | "retry">
) =>
async (address: string): Promise<LoadClient> => {
  const Live = Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Registry.layerStatic({ [serviceName]: [address] }),
      Selector.layer,
      Transport.layerTcp(),
      Codec.layer
    ))
  )
  const managed = ManagedRuntime.make(Live)
  const runtime = await managed.runtime()
  const bench = await managed.runPromise(Client.make(Bench, { ...options, service: serviceName, node: address, contentType }))
  // Make sure the connection works before the load starts.
  await managed.runPromise(bench.Echo(payload))
  const runFork = Runtime.runFork(runtime)
  return {
    call: (done) => {
      runFork(bench.Echo(payload)).addObserver((exit) => done(Exit.isSuccess(exit) ? undefined : exit.cause))
    },
    close: () => managed.dispose()
  }
}
