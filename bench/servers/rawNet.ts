/**
 * Baseline server: plain `node:net`, frames of u32 big-endian length + JSON bytes. Each request is parsed
 * and re-serialised (comparable work to a framework's codec). Replies written while handling one socket
 * chunk are corked into one write, as effect-micro's BatchWriter does for one event-loop turn.
 *
 * Prints `READY host:port` on stdout.
 */
import * as net from "node:net"

const server = net.createServer((socket) => {
  socket.setNoDelay(true)
  let pending: Buffer | undefined
  socket.on("data", (chunk: Buffer) => {
    const buf = pending === undefined ? chunk : Buffer.concat([pending, chunk])
    pending = undefined
    let offset = 0
    socket.cork()
    while (buf.byteLength - offset >= 4) {
      const length = buf.readUInt32BE(offset)
      if (buf.byteLength - offset - 4 < length) break
      const request = JSON.parse(buf.toString("utf8", offset + 4, offset + 4 + length))
      offset += 4 + length
      const json = JSON.stringify(request)
      const size = Buffer.byteLength(json)
      const frame = Buffer.allocUnsafe(4 + size)
      frame.writeUInt32BE(size, 0)
      frame.write(json, 4, "utf8")
      socket.write(frame)
    }
    socket.uncork()
    if (offset < buf.byteLength) pending = Buffer.from(buf.subarray(offset))
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
