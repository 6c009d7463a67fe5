/**
 * grpc-js client of the `large` group (raw bytes). `unary`: one `Echo` call per call; `bidi`: one `Chat`
 * stream for the whole run, a "call" is one message and its echo (ordered: a FIFO). Each echo's length is
 * checked.
 */
import * as grpc from "@grpc/grpc-js"
import { largeChannelOptions, largeDefinition } from "../grpcLargeDefinition.js"
import { bytesPayload } from "../largePayload.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = (kind: "unary" | "bidi", size: number) => async (address: string): Promise<LoadClient> => {
  const Ctor = grpc.makeGenericClientConstructor(largeDefinition, "Large")
  const client = new Ctor(address, grpc.credentials.createInsecure(), largeChannelOptions) as any
  const payload = bytesPayload(size)
  const check = (reply: Buffer | undefined): Error | undefined =>
    reply?.byteLength === size ? undefined : new Error(`echo of ${reply?.byteLength} bytes, sent ${size}`)
  if (kind === "unary") {
    const send = (done: (error: unknown) => void) => {
      client.Echo(payload, (error: grpc.ServiceError | null, reply?: Buffer) => done(error ?? check(reply)))
    }
    await new Promise<unknown>((resolve, reject) =>
      send((error) => error === undefined ? resolve(undefined) : reject(error))
    )
    return { call: send, close: async () => client.close() }
  }
  const call: grpc.ClientDuplexStream<Buffer, Buffer> = client.Chat()
  const inFlight = new Fifo()
  let failed: unknown
  call.on("data", (reply: Buffer) => {
    const error = check(reply)
    if (error !== undefined) {
      failed = error
      inFlight.failAll(error)
    } else inFlight.complete()
  })
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
