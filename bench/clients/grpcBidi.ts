/**
 * grpc-js bidi client: one `Chat` stream for the whole run; a "call" writes one message and completes when
 * its echo arrives (the stream is ordered, so in-flight messages are a FIFO). The load generator keeps
 * N messages in flight, so msgs/s is measured exactly like req/s.
 */
import * as grpc from "@grpc/grpc-js"
import { definition } from "../grpcDefinition.js"
import { payload } from "../payload.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = async (address: string): Promise<LoadClient> => {
  const Ctor = grpc.makeGenericClientConstructor(definition, "Bench")
  const client = new Ctor(address, grpc.credentials.createInsecure()) as any
  const call: grpc.ClientDuplexStream<unknown, unknown> = client.Chat()
  const inFlight = new Fifo()
  let failed: unknown
  call.on("data", () => inFlight.complete())
  call.on("error", (error) => {
    failed = error
    inFlight.failAll(error)
  })
  call.on("end", () => inFlight.failAll(new Error("stream ended")))
  const send = (done: (error: unknown) => void) => {
    if (failed !== undefined) return void setImmediate(() => done(failed))
    inFlight.push(done)
    call.write(payload)
  }
  await new Promise<unknown>((resolve, reject) =>
    send((error) => error === undefined ? resolve(undefined) : reject(error))
  )
  return {
    call: send,
    close: async () => {
      call.end()
      await new Promise((resolve) => setTimeout(resolve, 50))
      client.close()
    }
  }
}
