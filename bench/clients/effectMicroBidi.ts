/**
 * effect-micro bidi client: one `Chat` stream for the whole run (`Client.make(BenchStream, ...)`, defaults
 * kept, JSON). The request stream is a `Mailbox` the load generator offers to; the reply stream is consumed
 * chunk by chunk. A "call" sends one message and completes when its echo arrives (ordered, so a FIFO).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Stream from "effect/Stream"
import * as Client from "../../src/Client.js"
import * as Codec from "../../src/Codec.js"
import * as Registry from "../../src/Registry.js"
import * as Selector from "../../src/Selector.js"
import * as Transport from "../../src/Transport.js"
import { BenchStream, serviceName } from "../contract.js"
import type { Item } from "../payload.js"
import { payload } from "../payload.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = (contentType: string) => async (address: string): Promise<LoadClient> => {
  const Live = Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Registry.layerStatic({ [serviceName]: [address] }),
      Selector.layer,
      Transport.layerTcp(),
      Codec.layer
    ))
  )
  const managed = ManagedRuntime.make(Live)
  const bench = await managed.runPromise(Client.make(BenchStream, { service: serviceName, node: address, contentType }))
  const requests = await managed.runPromise(Mailbox.make<Item>())
  const inFlight = new Fifo()
  let failed: unknown
  const replies = bench.Chat(Mailbox.toStream(requests)).pipe(
    Stream.runForEachChunk((chunk) =>
      Effect.sync(() => {
        for (let i = 0; i < chunk.length; i++) inFlight.complete()
      })
    )
  )
  const fiber = managed.runFork(replies)
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
