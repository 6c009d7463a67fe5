import * as Effect from "effect/Effect"
import { TransportError } from "../../Errors.js"
import type { Connection, MemoryOptions } from "../../Transport.js"
import { Transport } from "../../Transport.js"

interface End {
  dataHandler: ((chunk: Buffer) => void) | undefined
  paused: boolean
  closeHandlers: Array<(error: Error | undefined) => void>
  /** Received while paused or before a handler was installed. */
  buffered: Array<Buffer>
  closed: boolean
  /** Bytes written by this end and not yet handed to the peer (fragmenting mode). */
  outgoing: Array<Buffer>
  sending: boolean
  /** close() was called while bytes were still outgoing: close once they are delivered. */
  closing: boolean
}

const newEnd = (): End => ({
  dataHandler: undefined,
  paused: false,
  closeHandlers: [],
  buffered: [],
  closed: false,
  outgoing: [],
  sending: false,
  closing: false
})

/** mulberry32: a small seeded generator, so a fragmentation pattern can be replayed from its seed. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

interface Fragmenting {
  readonly random: () => number
  readonly maxChunkBytes: number
}

/**
 * Two connected ends; bytes are delivered on a later microtask, like a socket would. By default each write
 * arrives as one chunk. With `fragmenting`, the byte stream is re-cut at random boundaries (pieces of 1 to
 * `maxChunkBytes` bytes that may span writes), one piece per microtask, as TCP may split and coalesce.
 */
const pipe = (addressA: string, addressB: string, fragmenting: Fragmenting | undefined): [Connection, Connection] => {
  const a = newEnd()
  const b = newEnd()
  const closeBoth = () => {
    for (const end of [a, b]) {
      if (end.closed) continue
      end.closed = true
      const handlers = end.closeHandlers
      if (handlers.length > 0) queueMicrotask(() => handlers.forEach((handler) => handler(undefined)))
    }
  }
  const deliverTo = (end: End, chunk: Buffer) => {
    if (end.closed) return
    if (end.dataHandler && !end.paused) end.dataHandler(chunk)
    else end.buffered.push(chunk)
  }
  // One piece of `self`'s outgoing bytes, then the next on a later microtask while any remain.
  const sendPiece = (self: End, peer: End, cut: Fragmenting) => {
    if (self.closed) return
    let want = 1 + Math.floor(cut.random() * cut.maxChunkBytes)
    const parts: Array<Buffer> = []
    while (want > 0 && self.outgoing.length > 0) {
      const head = self.outgoing[0]!
      if (head.byteLength <= want) {
        parts.push(head)
        self.outgoing.shift()
        want -= head.byteLength
      } else {
        parts.push(head.subarray(0, want))
        self.outgoing[0] = head.subarray(want)
        want = 0
      }
    }
    deliverTo(peer, parts.length === 1 ? parts[0]! : Buffer.concat(parts))
    if (self.outgoing.length > 0) queueMicrotask(() => sendPiece(self, peer, cut))
    else {
      self.sending = false
      if (self.closing) queueMicrotask(closeBoth)
    }
  }
  const connection = (self: End, peer: End, remoteAddress: string): Connection => ({
    remoteAddress,
    peerIdentity: undefined,
    write: (data) => {
      if (self.closed) return
      const copy = Buffer.from(data)
      if (fragmenting === undefined) {
        queueMicrotask(() => deliverTo(peer, copy))
        return
      }
      self.outgoing.push(copy)
      if (!self.sending) {
        self.sending = true
        queueMicrotask(() => sendPiece(self, peer, fragmenting))
      }
    },
    // Bytes are handed to the peer within microtasks: there is no backlog to wait for.
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
        if (self.closed || self.paused) self.buffered.push(chunk)
        else self.dataHandler?.(chunk)
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
    close: () => {
      if (self.sending) self.closing = true
      else queueMicrotask(() => queueMicrotask(closeBoth))
    },
    destroy: closeBoth
  })
  return [connection(a, b, addressB), connection(b, a, addressA)]
}

export const make = (options?: MemoryOptions): Transport.Service => {
  const listeners = new Map<string, (connection: Connection) => void>()
  const fragment = options?.fragment
  const fragmenting: Fragmenting | undefined = fragment === undefined ? undefined : {
    random: seeded(fragment.seed ?? 1),
    maxChunkBytes: fragment.maxChunkBytes ?? 64
  }
  let nextPort = 1
  let nextClient = 1
  return Transport.of({
    name: "memory",
    listen: (address, onConnection) =>
      Effect.acquireRelease(
        Effect.suspend(() => {
          const bound = address.endsWith(":0") || address === "" ? `memory:${nextPort++}` : address
          if (listeners.has(bound)) {
            return Effect.fail(TransportError.of(
              "listen",
              bound,
              `listen on ${bound} failed: the address is in use (another server listens there): use port 0 to let the transport choose one`,
              false
            ))
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
        const [client, server] = pipe(`memory-client:${nextClient++}`, address, fragmenting)
        accept(server)
        return Effect.succeed(client)
      })
  })
}
