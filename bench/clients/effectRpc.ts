/**
 * @effect/rpc client over raw TCP: `RpcClient.make(Bench, { disableTracing: true })` on
 * `RpcClient.layerProtocolSocket()` + `NodeSocket.layerNet`, msgpack. Calls from long-lived worker fibers
 * (as the effect-micro client).
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import * as Scope from "effect/Scope"
import { Bench } from "../contract.js"
import { payload } from "../payload.js"
import { workers } from "./effectWorkers.js"
import type { LoadClient } from "./types.js"

export const make = async (address: string): Promise<LoadClient> => {
  const colon = address.lastIndexOf(":")
  const Protocol = RpcClient.layerProtocolSocket().pipe(
    Layer.provide(NodeSocket.layerNet({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) })),
    Layer.provide(RpcSerialization.layerMsgPack)
  )
  const managed = ManagedRuntime.make(Protocol)
  const runtime = await managed.runtime()
  const scope = Effect.runSync(Scope.make())
  const client = await managed.runPromise(Scope.extend(RpcClient.make(Bench, { disableTracing: true }), scope))
  await managed.runPromise(client.Echo(payload))
  const runFork = Runtime.runFork(runtime)
  return {
    call: (done) => {
      runFork(client.Echo(payload)).addObserver((exit) => done(Exit.isSuccess(exit) ? undefined : exit.cause))
    },
    workers: workers(runtime, () => client.Echo(payload)),
    close: async () => {
      await Effect.runPromise(Scope.close(scope, Exit.void))
      await managed.dispose()
    }
  }
}
