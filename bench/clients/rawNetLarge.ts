/**
 * Baseline client of the `large` group: one `node:net` connection, u32 length + body frames, replies in
 * request order (a FIFO). `bytes`: the same payload Buffer is written for every call (length prefix and body
 * as two corked writes, no copy) and each echo's length is checked; `json`: `{ data }` is serialised per call
 * and each echo parsed.
 */
import * as net from "node:net"
import { bytesPayload, lengthPrefix, LengthPrefixedReader, textPayload } from "../largePayload.js"
import { Fifo } from "./fifo.js"
import type { LoadClient } from "./types.js"

export const make = (encoding: "bytes" | "json", size: number) => (address: string): Promise<LoadClient> =>
  new Promise((resolve, reject) => {
    const colon = address.lastIndexOf(":")
    const socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) })
    socket.setNoDelay(true)
    const bytes = bytesPayload(size)
    const text = textPayload(size)
    const inFlight = new Fifo()
    let failed: Error | undefined
    const failAll = (error: Error) => {
      failed = error
      inFlight.failAll(error)
    }
    const reader = new LengthPrefixedReader((body) => {
      if (encoding === "json") JSON.parse(body.toString("utf8"))
      else if (body.byteLength !== size) return failAll(new Error(`echo of ${body.byteLength} bytes, sent ${size}`))
      inFlight.complete()
    })
    socket.on("data", (chunk: Buffer) => reader.push(chunk))
    socket.once("connect", () => {
      socket.on("error", failAll)
      socket.on("close", () => failAll(new Error("connection closed")))
      resolve({
        call: (done) => {
          if (failed !== undefined) return void setImmediate(() => done(failed))
          inFlight.push(done)
          const body = encoding === "json" ? Buffer.from(JSON.stringify(text), "utf8") : bytes
          socket.cork()
          socket.write(lengthPrefix(body.byteLength))
          socket.write(body)
          socket.uncork()
        },
        close: () =>
          new Promise((resolveClose) => {
            socket.once("close", () => resolveClose())
            socket.end()
            setTimeout(() => socket.destroy(), 500).unref()
          })
      })
    })
    socket.once("error", reject)
  })
