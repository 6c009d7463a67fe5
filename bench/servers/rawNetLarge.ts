/**
 * Baseline server of the `large` group: plain `node:net`, frames of u32 big-endian length + body, every frame
 * echoed. `bytes` (default): the body goes back as it came (a view of the received chunk, or the one
 * reassembly copy when it was split over several reads); `json`: the body is parsed and re-serialised, as a
 * framework's JSON codec would. Each reply is its length prefix and its body as two writes, corked into one
 * writev per received chunk: no copy of the body into a frame buffer.
 *
 * Prints `READY host:port` on stdout.
 */
import * as net from "node:net"
import { lengthPrefix, LengthPrefixedReader } from "../largePayload.js"

const json = process.argv[2] === "json"

const server = net.createServer((socket) => {
  socket.setNoDelay(true)
  const reader = new LengthPrefixedReader((body) => {
    const reply = json ? Buffer.from(JSON.stringify(JSON.parse(body.toString("utf8"))), "utf8") : body
    socket.write(lengthPrefix(reply.byteLength))
    socket.write(reply)
  })
  socket.on("data", (chunk: Buffer) => {
    socket.cork()
    reader.push(chunk)
    socket.uncork()
  })
  socket.on("error", () => {})
})

server.listen(0, "127.0.0.1", () => {
  const address = server.address() as net.AddressInfo
  process.stdout.write(`READY ${address.address}:${address.port}\n`)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
