/**
 * The HTTP broker's subscriber side, one request: its body, read with plain listeners on the Node request and
 * bounded in size and time, and its turn on the subscription (requests for one subscription are handled one
 * at a time, in arrival order). Plus the subscriptions as the endpoint keeps them and its error replies.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as http from "node:http"
import type * as Net from "node:net"
import type { Handler } from "../../Broker.js"
import type { DeadlineEntry, DeadlineWheel } from "../rpc/deadlines.js"
import type { Settings } from "./httpSettings.js"

export interface LocalSubscription {
  readonly id: string
  readonly topic: string
  readonly queue: string | undefined
  readonly handler: Handler
  readonly autoAck: boolean
  /** Runs a request's handling as a fiber of the subscribing fiber's runtime (its context, loggers, ...). */
  readonly runFork: <A>(effect: Effect.Effect<A>) => Fiber.RuntimeFiber<A>
  /** A request for this subscription is being handled; the next ones wait in `waiting` (FIFO, see `Inbound`). */
  busy: boolean
  readonly waiting: Array<{ grant(): void }>
}

/** What the requests of one broker's endpoint share. */
export interface Inbounds {
  readonly settings: Settings
  readonly deadlines: DeadlineWheel
  readonly subscriptions: ReadonlyMap<string, LocalSubscription>
  /** The requests being read or waiting on each connection (see `Inbound.start`). */
  readonly bySocket: WeakMap<Net.Socket, Set<Inbound>>
}

/** A reply written straight to Node's response: status, optional headers and body. */
export interface Reply {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: string | undefined
}

const JSON_TYPE = { "content-type": "application/json" }
/** On a refusal before the body was read (too large, too slow): the rest of it is not worth reading. */
const JSON_CLOSE = { "content-type": "application/json", connection: "close" }

export const errorReply = (status: number, reason: string, detail: string, close = false): Reply => ({
  status,
  headers: close ? JSON_CLOSE : JSON_TYPE,
  body: JSON.stringify({ reason, detail })
})
export const jsonReply = (status: number, body: string): Reply => ({ status, headers: JSON_TYPE, body })
/** The answer for a client that went away (nobody reads it). */
export const gone: Reply = { status: 499 }

/** Who waits for an `Inbound`: the body once it has the subscription's turn, or the refusal. */
export interface InboundOwner {
  granted(body: Uint8Array): void
  refused(reply: Reply): void
}

/**
 * One request's body and its turn on the subscription. Plain listeners on the Node request (no stream
 * or fiber per request): chunks are kept up to `maxBodySize`, the body must arrive within `bodyTimeout`
 * of the headers (on the layer's timing wheel), and a client that disconnects while its body is read or
 * while it waits for its turn gives up its place (nothing is handled for it). On `end` the turn is taken
 * synchronously: requests pipelined on one connection complete their bodies in arrival order, so each
 * publisher's order is kept; requests for one subscription are then handled one at a time (FIFO).
 */
export class Inbound {
  chunks: Array<Buffer> = []
  bytes = 0
  /** 0 reading, 1 waiting for the turn, 2 has the turn, 3 finished. */
  state = 0
  body: Uint8Array | undefined = undefined
  deadline: DeadlineEntry | undefined = undefined
  owner: InboundOwner | undefined = undefined
  readonly socket: Net.Socket | null
  constructor(
    readonly shared: Inbounds,
    readonly subscription: LocalSubscription,
    readonly incoming: http.IncomingMessage
  ) {
    this.socket = incoming.socket
  }
  start(owner: InboundOwner): void {
    this.owner = owner
    const socket = this.socket
    if (socket === null || socket.destroyed) {
      return this.fail(gone)
    }
    // One close listener per connection (not one per request: pipelined requests would pile listeners up).
    const inboundsOf = this.shared.bySocket
    let onSocket = inboundsOf.get(socket)
    if (onSocket === undefined) {
      const inbounds = new Set<Inbound>()
      onSocket = inbounds
      inboundsOf.set(socket, inbounds)
      socket.once("close", () => {
        for (const inbound of inbounds) {
          inbound.onClose()
        }
      })
    }
    onSocket.add(this)
    if (this.incoming.readableEnded) {
      return this.onEnd()
    }
    const bodyTimeoutMillis = this.shared.settings.bodyTimeoutMillis
    if (bodyTimeoutMillis !== Infinity) {
      this.deadline = this.shared.deadlines.add(bodyTimeoutMillis, this.onTimeout)
    }
    this.incoming.on("data", this.onData)
    this.incoming.once("end", this.onEnd)
    this.incoming.once("error", this.onClose)
  }
  readonly onData = (chunk: Buffer): void => {
    this.bytes += chunk.length
    const maxBodySize = this.shared.settings.maxBodySize
    if (this.bytes > maxBodySize) {
      return this.fail(errorReply(413, "Rejected", `body exceeds the limit of ${maxBodySize} bytes`, true))
    }
    this.chunks.push(chunk)
  }
  readonly onEnd = (): void => {
    if (this.state !== 0) {
      return
    }
    this.shared.deadlines.remove(this.deadline)
    this.deadline = undefined
    this.detachBody()
    const chunks = this.chunks
    // One chunk (the common case for small bodies): no copy.
    this.body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.bytes)
    const subscription = this.subscription
    if (subscription.busy) {
      this.state = 1
      subscription.waiting.push(this)
    } else {
      subscription.busy = true
      this.grant()
    }
  }
  readonly onTimeout = (): void => {
    this.deadline = undefined
    this.fail(
      errorReply(408, "Rejected", `body not received within ${Duration.format(this.shared.settings.bodyTimeout)}`, true)
    )
  }
  /** The client went away: nothing is handled for it (the reply reaches nobody). */
  readonly onClose = (): void => {
    if (this.state < 2) {
      this.fail(gone)
    }
  }
  grant(): void {
    this.state = 2
    const owner = this.owner!
    this.owner = undefined
    if (this.socket!.destroyed) {
      owner.refused(gone)
    } else if (!this.shared.subscriptions.has(this.subscription.id)) {
      // Unsubscribed while waiting: not handled, the publisher may try another member.
      owner.refused(errorReply(404, "Unreachable", `no subscription ${this.subscription.id}`))
    } else owner.granted(this.body!)
  }
  fail(reply: Reply): void {
    const owner = this.owner
    this.finish()
    if (owner !== undefined) {
      owner.refused(reply)
    }
  }
  detachBody(): void {
    this.incoming.off("data", this.onData)
    this.incoming.off("end", this.onEnd)
    this.incoming.off("error", this.onClose)
  }
  /** Idempotent: releases the turn (to the next waiting request) or the place in the queue, and the listeners. */
  finish(): void {
    const state = this.state
    if (state === 3) {
      return
    }
    this.state = 3
    this.owner = undefined
    this.body = undefined
    if (state === 0) {
      this.shared.deadlines.remove(this.deadline)
      this.detachBody()
    }
    if (this.socket !== null) {
      this.shared.bySocket.get(this.socket)?.delete(this)
    }
    const subscription = this.subscription
    if (state === 1) {
      const index = subscription.waiting.indexOf(this)
      if (index !== -1) {
        subscription.waiting.splice(index, 1)
      }
    } else if (state === 2) {
      const next = subscription.waiting.shift()
      if (next === undefined) {
        subscription.busy = false
      } else next.grant()
    }
  }
}
