/**
 * The HTTP broker's subscriber side, one request: its body, read with plain listeners on the Node request and
 * bounded in size and time, and its turn on the subscription (requests for one subscription are handled one
 * at a time, in arrival order). Plus the subscriptions as the endpoint keeps them and its error replies.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
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
  /** The subscribing fiber's context: handlers run with it (set once per request, not per message). */
  readonly context: Context.Context<never>
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

export const errorJson = (status: number, reason: string, detail: string, headers?: Record<string, string>) =>
  HttpServerResponse.unsafeJson({ reason, detail }, headers === undefined ? { status } : { status, headers })
/** On a refusal before the body was read (too large, too slow): the rest of it is not worth reading. */
export const closeConnection = { connection: "close" }
/** The answer for a client that went away (nobody reads it). */
const gone = HttpServerResponse.empty({ status: 499 })

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
  resume: ((effect: Effect.Effect<Uint8Array, HttpServerResponse.HttpServerResponse>) => void) | undefined = undefined
  readonly socket: Net.Socket | null
  constructor(
    readonly shared: Inbounds,
    readonly subscription: LocalSubscription,
    readonly incoming: http.IncomingMessage
  ) {
    this.socket = incoming.socket
  }
  start(resume: (effect: Effect.Effect<Uint8Array, HttpServerResponse.HttpServerResponse>) => void): void {
    this.resume = resume
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
      return this.fail(
        errorJson(413, "Rejected", `body exceeds the limit of ${maxBodySize} bytes`, closeConnection)
      )
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
      errorJson(
        408,
        "Rejected",
        `body not received within ${Duration.format(this.shared.settings.bodyTimeout)}`,
        closeConnection
      )
    )
  }
  /** The client went away: nothing is handled for it (the platform answers nobody). */
  readonly onClose = (): void => {
    if (this.state < 2) {
      this.fail(gone)
    }
  }
  grant(): void {
    this.state = 2
    const resume = this.resume!
    this.resume = undefined
    if (this.socket!.destroyed) {
      resume(Effect.fail(gone))
    } else if (!this.shared.subscriptions.has(this.subscription.id)) {
      // Unsubscribed while waiting: not handled, the publisher may try another member.
      resume(Effect.fail(errorJson(404, "Unreachable", `no subscription ${this.subscription.id}`)))
    } else resume(Effect.succeed(this.body!))
  }
  fail(response: HttpServerResponse.HttpServerResponse): void {
    const resume = this.resume
    this.finish()
    if (resume !== undefined) {
      resume(Effect.fail(response))
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
    this.resume = undefined
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
