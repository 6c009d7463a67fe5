/**
 * effect-micro client of the `large` group: `Client.layer()` with a static registry, TCP and the default
 * codecs, defaults kept (5 s deadline, retries, credit-based flow control).
 *
 * - `bytes-unary`: `EchoBytes` with `application/octet-stream` (the body is the bytes), from worker fibers;
 * - `json-unary`: `EchoText` (`{ data: string }`) with `application/json`, from worker fibers;
 * - `bytes-bidi`: one `ChatBytes` stream for the whole run (octet-stream); a "call" is one message and its
 *   echo (ordered: a FIFO), as in `effectMicroBidi.ts`.
 *
 * Every echo's length is checked.
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
import { BenchLarge, serviceName } from "../contract.js"
import { bytesPayload, textPayload } from "../largePayload.js"
import { workers } from "./effectWorkers.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

const octetStream = "application/octet-stream"

export const make =
  (kind: "bytes-unary" | "json-unary" | "bytes-bidi", size: number) => async (address: string): Promise<LoadClient> => {
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
    const wrongLength = (length: number) => Effect.fail(new Error(`echo of ${length} bytes, sent ${size}`))
    if (kind !== "bytes-bidi") {
      const bench = await managed.runPromise(Client.make(BenchLarge, {
        service: serviceName,
        contentType: kind === "bytes-unary" ? octetStream : "application/json"
      }))
      const call: () => Effect.Effect<unknown, unknown> = kind === "bytes-unary"
        ? (() => {
          const payload = bytesPayload(size)
          return () =>
            Effect.flatMap(
              bench.EchoBytes(payload),
              (reply) => reply.byteLength === size ? Effect.void : wrongLength(reply.byteLength)
            )
        })()
        : (() => {
          const payload = textPayload(size)
          return () =>
            Effect.flatMap(
              bench.EchoText(payload),
              (reply) => reply.data.length === size ? Effect.void : wrongLength(reply.data.length)
            )
        })()
      await managed.runPromise(call())
      return {
        call: (done) => {
          managed.runFork(call()).addObserver((exit) => done(Exit.isSuccess(exit) ? undefined : exit.cause))
        },
        workers: workers(runtime, call),
        close: () => managed.dispose()
      }
    }
    const bench = await managed.runPromise(
      Client.make(BenchLarge, { service: serviceName, node: address, contentType: octetStream })
    )
    const payload = bytesPayload(size)
    const requests = await managed.runPromise(Mailbox.make<Uint8Array>())
    const inFlight = new Fifo()
    let failed: unknown
    const replies = bench.ChatBytes(Mailbox.toStream(requests)).pipe(
      Stream.runForEachChunk((chunk) =>
        Effect.sync(() => {
          for (const reply of chunk) {
            if (reply.byteLength !== size) {
              failed = new Error(`echo of ${reply.byteLength} bytes, sent ${size}`)
              inFlight.failAll(failed)
              return
            }
            inFlight.complete()
          }
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
