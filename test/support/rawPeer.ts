/**
 * A raw protocol peer for cross-process tests of bad input and hostile peers: it writes whatever bytes a
 * test wants and collects the frames the server sends back, decoded by the project's own frame parser.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as net from "node:net"
import { Client, Codec, Registry, Selector, Transport } from "../../src/index.js"
import * as wire from "../../src/internal/rpc/wire.js"

export interface RawFrame {
  readonly type: number
  readonly streamId: number
  readonly payload: Buffer
}

export interface RawPeer {
  readonly socket: net.Socket
  readonly frames: Array<RawFrame>
  readonly closed: Promise<void>
}

/** Connects to `address`; the socket is destroyed when the scope closes. */
export const rawPeer = (address: string) =>
  Effect.acquireRelease(
    Effect.async<RawPeer>((resume) => {
      const [host, port] = address.split(":")
      const socket = net.connect({ host: host!, port: Number(port) }, () => {
        const frames: Array<RawFrame> = []
        const decoder = new wire.FrameDecoder(
          {
            onFrame: (type, streamId, payload) => frames.push({ type, streamId, payload: Buffer.from(payload) }),
            onOversized: () => {},
            onProtocolError: () => {},
            onFrameDefect: () => {}
          },
          16 * 1024 * 1024,
          false
        )
        socket.on("data", (chunk) => decoder.push(chunk))
        const closed = new Promise<void>((done) => socket.once("close", () => done()))
        socket.on("error", () => {})
        resume(Effect.succeed({ socket, frames, closed }))
      })
    }),
    ({ socket }) => Effect.sync(() => socket.destroy())
  )

/** Polls `get` (every 5 ms, bounded) until it returns a value. */
export const waitFor = <A>(get: () => A | undefined, timeoutMillis = 5000) =>
  Effect.promise(async () => {
    const deadline = Date.now() + timeoutMillis
    for (;;) {
      const value = get()
      if (value !== undefined) return value
      if (Date.now() > deadline) throw new Error("timed out waiting")
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  })

/** The call header of a Testing endpoint. */
export const header = (endpoint: string, contentType = "application/json") =>
  wire.encodeCallHeader({ service: "testing", endpoint, contentType, metadata: {} })

/** The JSON body of an ERROR frame. */
export const errorOf = (frame: RawFrame) => JSON.parse(frame.payload.subarray(1).toString("utf8"))

/** A client of the `testing` service at fixed addresses (static registry, TCP). */
export const clientLayer = (
  addresses: string | ReadonlyArray<string>,
  selector: Layer.Layer<Selector.Selector> = Selector.layer
) =>
  Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Transport.layerTcp(),
      Registry.layerStatic({ testing: typeof addresses === "string" ? [addresses] : addresses }),
      Codec.layer,
      selector
    ))
  )

/** A process's resident set size in MB, from /proc. */
export const rssMb = (pid: number): number => {
  const match = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))
  return match === null ? 0 : Number(match[1]) / 1024
}

/** CPU time (user + system) a process has used, in milliseconds, from /proc. */
export const cpuMillis = (pid: number): number => {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // utime and stime are fields 14 and 15 of stat (11 and 12 after the command name), in clock ticks (100 Hz).
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/** Open file descriptors of a process. */
export const openFds = (pid: number): number => fs.readdirSync(`/proc/${pid}/fd`).length
