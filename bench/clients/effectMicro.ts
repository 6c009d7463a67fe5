/**
 * effect-micro client: `Client.layer()` with a static registry, random selector, TCP and the default codecs;
 * `Client.make(Bench, { service, contentType })`, so every call is resolved through the registry and
 * load balanced by the selector. Retries, deadlines (5 s, sent to the server) and metadata handling stay at
 * their defaults unless `options` overrides them (diagnostic scenarios).
 *
 * Calls come from long-lived worker fibers (`workers`), as in a service calling another. With `caller`,
 * each call is instead started from callback code (`call`), as Promise code (an Express handler, a script)
 * calls a service: `"promise-client"` through `Client.makePromise` (the API for Promise code), `"promise"`
 * awaiting `runtime.runPromise(client.Echo(...))` per call, `"fork"` with `runFork` per call.
 */
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Client from "../../src/Client.js"
import * as Codec from "../../src/Codec.js"
import * as Debug from "../../src/Debug.js"
import * as Registry from "../../src/Registry.js"
import * as Selector from "../../src/Selector.js"
import * as Transport from "../../src/Transport.js"
import { Bench, serviceName } from "../contract.js"
import { payload } from "../payload.js"
import { workers } from "./effectWorkers.js"
import type { LoadClient } from "./types.js"

export const make = (
  contentType: string,
  options?: Pick<Client.ClientOptions, "timeout" | "retry"> & {
    readonly caller?: "promise-client" | "promise" | "fork"
    /** `Debug.layerMetrics` on. */
    readonly metrics?: boolean
  }
) =>
async (address: string): Promise<LoadClient> => {
  const Live = Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Registry.layerStatic({ [serviceName]: [address] }),
      Selector.layer,
      Transport.layerTcp(),
      Codec.layer,
      options?.metrics ? Debug.layerMetrics : Layer.empty
    ))
  )
  const managed = ManagedRuntime.make(Live)
  const runtime = await managed.runtime()
  const bench = await managed.runPromise(Client.make(Bench, {
    timeout: options?.timeout,
    retry: options?.retry,
    service: serviceName,
    contentType
  }))
  // Make sure the connection works before the load starts.
  await managed.runPromise(bench.Echo(payload))
  const runFork = Runtime.runFork(runtime)
  const runPromise = Runtime.runPromise(runtime)
  const promiseClient = await managed.runPromise(Client.makePromise(Bench, {
    timeout: options?.timeout,
    retry: options?.retry,
    service: serviceName,
    contentType
  }))
  return {
    call: options?.caller === "promise-client"
      ? (done) => {
        promiseClient.Echo(payload).then(() => done(undefined), done)
      }
      : options?.caller === "promise"
      ? (done) => {
        runPromise(bench.Echo(payload)).then(() => done(undefined), done)
      }
      : (done) => {
        runFork(bench.Echo(payload)).addObserver((exit) => done(Exit.isSuccess(exit) ? undefined : exit.cause))
      },
    workers: options?.caller === undefined ? workers(runtime, () => bench.Echo(payload)) : undefined,
    close: () => managed.dispose()
  }
}
