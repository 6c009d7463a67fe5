import * as Effect from "effect/Effect"
import { TransportError } from "../Errors.js"
import type { Connection } from "../Transport.js"
import { Transport } from "../Transport.js"

interface End {
  dataHandler: ((chunk: Buffer) => void) | undefined
  paused: boolean
  closeHandlers: Array<(error: Error | undefined) => void>
  buffered: Array<Buffer>
  closed: boolean
}

/** Two connected ends; bytes are delivered on a later microtask, like a socket would. */
const pipe = (addressA: string, addressB: string): [Connection, Connection] => {
  const a: End = { dataHandler: undefined, paused: false, closeHandlers: [], buffered: [], closed: false }
  const b: End = { dataHandler: undefined, paused: false, closeHandlers: [], buffered: [], closed: false }
  const closeBoth = () => {
    for (const end of [a, b]) {
      if (end.closed) continue
      end.closed = true
      const handlers = end.closeHandlers
      if (handlers.length > 0) queueMicrotask(() => handlers.forEach((handler) => handler(undefined)))
    }
  }
  const connection = (self: End, peer: End, remoteAddress: string): Connection => ({
    remoteAddress,
    peerIdentity: undefined,
    write: (data) => {
      if (self.closed) return
      const copy = Buffer.from(data)
      queueMicrotask(() => {
        if (peer.closed) return
        if (peer.dataHandler && !peer.paused) peer.dataHandler(copy)
        else peer.buffered.push(copy)
      })
    },
    // Bytes are handed to the peer on the next microtask: there is no backlog to wait for.
    pendingBytes: () => 0,
    whenDrained: (handler) => handler(),
    pause: () => {
      self.paused = true
    },
    resume: () => {
      if (!self.paused) return
      self.paused = false
      const buffered = self.buffered
      self.buffered = []
      for (const chunk of buffered) {
        if (self.closed || self.paused) {
          self.buffered.push(chunk)
          continue
        }
        self.dataHandler?.(chunk)
      }
    },
    onData: (handler) => {
      self.dataHandler = handler
      const buffered = self.buffered
      self.buffered = []
      for (const chunk of buffered) handler(chunk)
    },
    onClose: (handler) => {
      self.closeHandlers.push(handler)
      if (self.closed) queueMicrotask(() => handler(undefined))
    },
    // Let writes queued before close reach the peer first.
    close: () => queueMicrotask(() => queueMicrotask(closeBoth)),
    destroy: closeBoth
  })
  return [connection(a, b, addressB), connection(b, a, addressA)]
}

export const make = (): Transport.Service => {
  const listeners = new Map<string, (connection: Connection) => void>()
  let nextPort = 1
  let nextClient = 1
  return Transport.of({
    name: "memory",
    listen: (address, onConnection) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          const bound = address.endsWith(":0") || address === "" ? `memory:${nextPort++}` : address
          if (listeners.has(bound)) {
            return Effect.fail(TransportError.of("dial", bound, `address ${bound} already in use`))
          }
          listeners.set(bound, onConnection)
          return Effect.succeed({ address: bound })
        }),
        ({ address: bound }) => Effect.sync(() => listeners.delete(bound))
      ),
    dial: (address) =>
      Effect.suspend(() => {
        const accept = listeners.get(address)
        if (accept === undefined) {
          return Effect.fail(TransportError.of("refused", address, `connection refused by ${address}`))
        }
        const [client, server] = pipe(`memory-client:${nextClient++}`, address)
        accept(server)
        return Effect.succeed(client)
      })
  })
}
