/**
 * effect-micro client over gRPC: `GrpcClient.layer()` (protobuf), the server's node registered in a memory
 * registry with `protocol: grpc`, so each call is resolved, selected and sent as a gRPC call with the
 * client's defaults (retries, 5 s deadline sent as `grpc-timeout`). `unary`: `Echo` from long-lived worker
 * fibers; `bidi`: one `Chat` stream for the run (a Mailbox in, the echoes out).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import * as Client from "../../src/Client.js"
import * as Codec from "../../src/Codec.js"
import * as GrpcClient from "../../src/plugins/grpc/GrpcClient.js"
import * as Registry from "../../src/Registry.js"
import * as Selector from "../../src/Selector.js"
import * as Transport from "../../src/Transport.js"
import { GrpcBench, grpcProtoOptions, serviceName } from "../contract.js"
import type { Item } from "../payload.js"
import { payload } from "../payload.js"
import { workers } from "./effectWorkers.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = (kind: "unary" | "bidi") => async (address: string): Promise<LoadClient> => {
  const Live = GrpcClient.layer().pipe(
    Layer.provideMerge(Layer.mergeAll(Registry.layerMemory, Selector.layer, Transport.layerTcp(), Codec.layer))
  )
  const managed = ManagedRuntime.make(Live)
  const runtime = await managed.runtime()
  await managed.runPromise(Effect.flatMap(Registry.Registry, (registry) =>
    registry.register({
      name: serviceName,
      version: "latest",
      metadata: {},
      endpoints: [],
      nodes: [{
        id: "bench-grpc",
        address,
        metadata: { protocol: "grpc", "grpc.service": `${grpcProtoOptions.package}.${grpcProtoOptions.serviceName}` }
      }]
    })))
  const bench = await managed.runPromise(Client.make(GrpcBench, { service: serviceName }))
  if (kind === "unary") {
    await managed.runPromise(bench.Echo(payload))
    return {
      call: (done) => {
        managed.runFork(bench.Echo(payload)).addObserver((exit) => done(Exit.isSuccess(exit) ? undefined : exit.cause))
      },
      workers: workers(runtime, () => bench.Echo(payload)),
      close: () => managed.dispose()
    }
  }
  const requests = await managed.runPromise(Mailbox.make<Item>())
  const inFlight = new Fifo()
  let failed: unknown
  const fiber = managed.runFork(
    bench.Chat(Mailbox.toStream(requests)).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          for (let i = 0; i < chunk.length; i++) inFlight.complete()
        })
      )
    )
  )
  fiber.addObserver((exit) => {
    failed = exit._tag === "Failure" ? exit.cause : new Error("stream ended")
    inFlight.failAll(failed)
  })
  const send = (done: (error: unknown) => void) => {
    if (failed !== undefined) return void setImmediate(() => done(failed))
    inFlight.push(done)
    requests.unsafeOffer(payload)
  }
  await new Promise<unknown>((resolve, reject) =>
    send((error) => error === undefined ? resolve(undefined) : reject(error))
  )
  return {
    call: send,
    close: async () => {
      requests.unsafeDone(Exit.void)
      await managed.dispose()
    }
  }
}
