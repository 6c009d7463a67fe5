/**
 * grpc-js client built from the contract's `.proto` with proto-loader. `unary`: one `Echo` call per call;
 * `bidi`: one `Chat` stream for the whole run, a "call" is one message and its echo (ordered: a FIFO).
 */
import * as grpc from "@grpc/grpc-js"
import { loadBench } from "../grpcProto.js"
import { payload } from "../payload.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = (kind: "unary" | "bidi") => async (address: string): Promise<LoadClient> => {
  const Bench = loadBench()
  const client = new Bench(address, grpc.credentials.createInsecure())
  if (kind === "unary") {
    const send = (done: (error: unknown) => void) => {
      client.Echo(payload, (error: grpc.ServiceError | null) => done(error ?? undefined))
    }
    await new Promise<unknown>((resolve, reject) =>
      send((error) => error === undefined ? resolve(undefined) : reject(error))
    )
    return { call: send, close: async () => client.close() }
  }
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
