/**
 * Baseline client: one `node:net` connection, frames of u32 length + JSON. Replies come back in request
 * order (one connection, a sequential server), so pending calls are a FIFO queue. Each reply is parsed.
 */
import * as net from "node:net"
import { payload } from "../payload.js"
import type { LoadClient } from "./types.js"

export const make = (address: string): Promise<LoadClient> =>
  new Promise((resolve, reject) => {
    const colon = address.lastIndexOf(":")
    const socket = net.connect({ host: address.slice(0, colon), port: Number(address.slice(colon + 1)) })
    socket.setNoDelay(true)
    // A ring would be faster; an array with a head index is close enough and simple.
    let queue: Array<(error: unknown) => void> = []
    let head = 0
    let pending: Buffer | undefined
    let failed: Error | undefined
    const failAll = (error: Error) => {
      failed = error
      const waiting = queue.slice(head)
      queue = []
      head = 0
      for (const done of waiting) done(error)
    }
    socket.on("data", (chunk: Buffer) => {
      const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
      pending = undefined
      let offset = 0
      socket.cork()
      while (buf.byteLength - offset >= 4) {
        const length = buf.readUInt32BE(offset)
        if (buf.byteLength - offset - 4 < length) break
        JSON.parse(buf.toString("utf8", offset + 4, offset + 4 + length))
        offset += 4 + length
        const done = queue[head++]!
        if (head > 4096) {
          queue = queue.slice(head)
          head = 0
        }
        done(undefined)
      }
      socket.uncork()
      if (offset < buf.byteLength) pending = Buffer.from(buf.subarray(offset))
    })
    socket.once("connect", () => {
      socket.on("error", failAll)
      socket.on("close", () => failAll(new Error("connection closed")))
      resolve({
        call: (done) => {
          if (failed !== undefined) return void setImmediate(() => done(failed))
          queue.push(done)
          const json = JSON.stringify(payload)
          const size = Buffer.byteLength(json)
          const frame = Buffer.allocUnsafe(4 + size)
          frame.writeUInt32BE(size, 0)
          frame.write(json, 4, "utf8")
          socket.write(frame)
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
