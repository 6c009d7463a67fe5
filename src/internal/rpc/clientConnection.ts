/**
 * The client side of one multiplexed connection: allocates stream ids, writes OPEN/DATA/END/CANCEL/CREDIT
 * frames (batched per tick) and dispatches replies to per-call handlers. Callback-based: it is on every
 * call's hot path; the Effect API is built on top in internal/rpc/client.ts.
 */
import type { CallShape } from "../../Contract.js"
import { TransportError } from "../../Errors.js"
import type { Connection } from "../../Transport.js"
import { describeUnknown } from "../codec/inputLimits.js"
import type { DeadlineEntry, DeadlineWheel } from "./deadlines.js"
import { StreamTable } from "./streamTable.js"
import type { OutgoingFrame } from "./wire.js"
import {
  BatchWriter,
  bodyFrame,
  decodeSettings,
  encodeBody,
  encodeEmpty,
  encodeOpen,
  encodeU32,
  FrameDecoder,
  FrameType,
  LARGE_BODY,
  OpenFlag,
  openFrame,
  PREFACE,
  Setting
} from "./wire.js"

export interface CallHandlers {
  onReply(body: Buffer): void
  onData(body: Buffer): void
  onEnd(): void
  onError(kind: number, body: Buffer): void
  onCredit(credit: number): void
  /** The connection broke or closed before the call finished. */
  onClosed(error: TransportError): void
}

/**
 * What the client's calls need of a connection to a node: the native protocol's `ClientConnection`, or a
 * connection speaking another protocol (the gRPC plugin's) chosen by the node's `protocol` metadata
 * (`ProtocolDialers` in internal/rpc/protocols.ts). Callback-based, as the client's hot path is.
 */
export interface CallConnection {
  readonly address: string
  /** True once the pool must not hand it out again (closed, broken, told to go away). */
  readonly unusable: boolean
  /** Frames (or messages) received so far: the hung-node check watches it. */
  readonly received: number
  /** Calls open or queued. */
  readonly activeCalls: number
  /**
   * Opens a call and returns its id. `body` is the request for unary and server-streaming calls; `shape`
   * is the endpoint's call shape (protocols that name it on the wire need it; the native one does not).
   */
  open(
    header: Buffer,
    timeoutMillis: number,
    window: number,
    body: Uint8Array | undefined,
    handlers: CallHandlers,
    shape?: CallShape
  ): number
  /** Sends one request message of a streaming request. */
  data(id: number, body: Uint8Array): void
  /** Ends the request stream (half-close). */
  end(id: number): void
  /** Lets the server send `credit` more messages. */
  credit(id: number, credit: number): void
  /** Abandons a call: tells the server to stop it, forgets its handlers. */
  cancel(id: number): void
  /** Forgets a finished call. */
  release(id: number): void
  /** Checks the peer is still there after a call timed out (may destroy a half-open connection). */
  probe(timeoutMillis?: number): void
  /** A liveness check whose answer shows up in `received` (hung-node check). */
  ping(): void
  close(): void
}

const MAX_STREAM_ID = 0x7fffffff
/** Payload of the hung-node check's PINGs (8 bytes; the probe's token is a random double, never these bytes in practice). */
const HEALTH_PING = Buffer.from("healthck")

export class ClientConnection implements CallConnection {
  private readonly calls = new StreamTable<CallHandlers>()
  /**
   * Calls over the server's advertised concurrency limit (SETTINGS), in order: their frames (OPEN first)
   * wait here and are sent as earlier calls finish, instead of being refused by the server.
   */
  private readonly queued = new Map<number, Array<OutgoingFrame>>()
  private maxConcurrentStreams = Infinity
  private readonly writer: BatchWriter
  private readonly decoder: FrameDecoder
  private nextId = 1
  private probeDeadline: DeadlineEntry | undefined = undefined
  private probeToken: Buffer | undefined = undefined
  /** True after GOAWAY, a broken connection or id exhaustion: the pool must not hand it out again. */
  unusable = false
  /** Frames received so far: the client's hung-node check watches it (internal/rpc/nodeHealth.ts). */
  received = 0
  private closed = false
  /** The server sent GOAWAY: no new call may be opened here. */
  private goneAway = false

  constructor(
    readonly address: string,
    private readonly connection: Connection,
    maxFrameSize: number,
    /** The client's timing wheel (Clock-driven): PONG timeouts. */
    private readonly deadlines: DeadlineWheel,
    private readonly onGone: (self: ClientConnection) => void
  ) {
    const writev = connection.writev
    this.writer = new BatchWriter(
      (data) => connection.write(data),
      writev === undefined ? undefined : (pieces) => writev(pieces)
    )
    this.decoder = new FrameDecoder(this, maxFrameSize, false)
    connection.write(PREFACE)
    connection.onData((chunk) => this.onChunk(chunk))
    connection.onClose((error) => this.onConnectionClosed(error))
  }

  /** Calls open or queued on this connection. */
  get activeCalls(): number {
    return this.calls.size
  }

  private onChunk(chunk: Buffer): void {
    try {
      this.decoder.push(chunk)
    } catch (defect) {
      // The decoder guards every frame; reaching here is a bug. Fail this connection's calls, not the process.
      this.onProtocolError(`frame decoder failed: ${describeUnknown(defect)}`)
    }
  }

  /** Opens a call. `body` is the request for unary and server-streaming calls. */
  open(
    header: Buffer,
    timeoutMillis: number,
    window: number,
    body: Uint8Array | undefined,
    handlers: CallHandlers
  ): number {
    const id = this.nextId
    this.nextId += 1
    if (this.closed || this.goneAway) {
      // Taken from the pool just before it closed or the server said GOAWAY: nothing was sent, so the
      // call may go to another node whatever the endpoint.
      handlers.onClosed(TransportError.of("closed", this.address, "connection already closed", true))
      return id
    }
    if (this.nextId >= MAX_STREAM_ID) this.markUnusable()
    this.calls.set(id, handlers)
    const flags = body !== undefined ? OpenFlag.Unary : 0
    if (this.queued.size > 0 || this.calls.size - this.queued.size > this.maxConcurrentStreams) {
      this.queued.set(id, [openFrame(id, flags, timeoutMillis, window, header, body)])
    } else if (body === undefined || body.byteLength < LARGE_BODY) {
      // The per-call hot path: one buffer, as before (writeFrame(openFrame(...)) measured ≈35 ns more per call).
      this.writer.write(encodeOpen(id, flags, timeoutMillis, window, header, body))
    } else this.writer.writeFrame(openFrame(id, flags, timeoutMillis, window, header, body))
    return id
  }

  data(id: number, body: Uint8Array): void {
    if (this.calls.has(id)) this.send(id, bodyFrame(FrameType.Data, id, body))
  }

  end(id: number): void {
    if (this.calls.has(id)) this.send(id, encodeEmpty(FrameType.End, id))
  }

  credit(id: number, credit: number): void {
    if (this.calls.has(id)) this.send(id, encodeU32(FrameType.Credit, id, credit))
  }

  private send(id: number, frame: OutgoingFrame): void {
    const queued = this.queued.get(id)
    if (queued !== undefined) queued.push(frame)
    else this.writer.writeFrame(frame)
  }

  /** Abandons a call: tells the server to stop it, forgets its handlers. */
  cancel(id: number): void {
    if (this.calls.delete(id) && !this.closed) {
      // A call still queued here never reached the server: nothing to cancel there.
      if (!this.queued.delete(id)) this.writer.write(encodeEmpty(FrameType.Cancel, id))
      this.callEnded()
    }
  }

  /** Sends queued calls while the server's concurrency limit allows. */
  private promote(): void {
    for (const [id, frames] of this.queued) {
      if (this.calls.size - this.queued.size >= this.maxConcurrentStreams) return
      this.queued.delete(id)
      for (const frame of frames) this.writer.writeFrame(frame)
    }
  }

  private callEnded(): void {
    if (this.queued.size > 0) this.promote()
    this.maybeRetire()
  }

  /**
   * Checks the peer is still there (after a call timed out): a PING that gets no PONG within
   * `timeoutMillis` means a half-open connection (peer gone without a FIN/RST, e.g. a partition), which is
   * then destroyed so its calls fail now and the pool dials afresh instead of timing out every call on it.
   */
  probe(timeoutMillis = 2000): void {
    if (this.closed || this.probeDeadline !== undefined) return
    const token = Buffer.allocUnsafe(8)
    token.writeDoubleBE(Math.random())
    this.probeToken = token
    this.writer.write(encodeBody(FrameType.Ping, 0, token))
    this.probeDeadline = this.deadlines.add(timeoutMillis, () => {
      this.probeDeadline = undefined
      if (this.closed) return
      this.connection.destroy()
      this.failAll(
        TransportError.of("reset", this.address, `no PONG within ${timeoutMillis} ms: peer unreachable`, false)
      )
      this.markUnusable()
    })
  }

  /** Sends a PING whose PONG only counts as a received frame (hung-node check); unlike `probe`, no deadline. */
  ping(): void {
    if (!this.closed) this.writer.write(encodeBody(FrameType.Ping, 0, HEALTH_PING))
  }

  /** Forgets a finished call (no frame sent). */
  release(id: number): void {
    if (this.calls.delete(id)) {
      this.queued.delete(id)
      this.callEnded()
    }
  }

  close(): void {
    this.markUnusable()
    this.writer.flush()
    this.connection.close()
  }

  // ----- FrameHandler -----

  onFrame(type: number, streamId: number, payload: Buffer): void {
    this.received++
    const handlers = this.calls.get(streamId)
    switch (type) {
      case FrameType.Reply:
        if (handlers !== undefined) {
          this.calls.delete(streamId)
          handlers.onReply(payload)
          this.callEnded()
        }
        return
      case FrameType.Data:
        handlers?.onData(payload)
        return
      case FrameType.End:
        if (handlers !== undefined) {
          this.calls.delete(streamId)
          handlers.onEnd()
          this.callEnded()
        }
        return
      case FrameType.Error:
        if (handlers !== undefined && payload.byteLength >= 1) {
          this.calls.delete(streamId)
          handlers.onError(payload[0]!, payload.subarray(1))
          this.callEnded()
        }
        return
      case FrameType.Credit:
        if (handlers !== undefined && payload.byteLength >= 4) handlers.onCredit(payload.readUInt32BE(0))
        return
      case FrameType.Cancel:
        if (handlers !== undefined) {
          this.calls.delete(streamId)
          handlers.onClosed(TransportError.of("closed", this.address, "the server cancelled the stream", false))
          this.callEnded()
        }
        return
      case FrameType.Ping:
        this.writer.write(encodeBody(FrameType.Pong, streamId, payload))
        return
      case FrameType.Pong:
        if (this.probeDeadline !== undefined && this.probeToken !== undefined && payload.equals(this.probeToken)) {
          this.deadlines.remove(this.probeDeadline)
          this.probeDeadline = undefined
        }
        return
      case FrameType.GoAway:
        this.goneAway = true
        this.markUnusable()
        this.failQueued()
        this.maybeRetire()
        return
      case FrameType.Settings:
        decodeSettings(payload, (id, value) => {
          if (id === Setting.MaxConcurrentStreams && value > 0) this.maxConcurrentStreams = value
        })
        if (this.queued.size > 0) this.promote()
        return
      default:
        return
    }
  }

  onOversized(_type: number, streamId: number, length: number): void {
    const handlers = this.calls.get(streamId)
    if (handlers === undefined) return
    this.cancel(streamId)
    handlers.onClosed(
      TransportError.of("frame-too-large", this.address, `reply frame of ${length} bytes exceeds the limit`, false)
    )
  }

  onFrameDefect(_type: number, streamId: number, defect: unknown): void {
    const handlers = this.calls.get(streamId)
    if (handlers === undefined) return
    this.cancel(streamId)
    handlers.onClosed(
      TransportError.of("protocol", this.address, `failed to handle a reply frame: ${describeUnknown(defect)}`, false)
    )
  }

  onProtocolError(detail: string): void {
    this.connection.destroy()
    this.failAll(TransportError.of("protocol", this.address, detail, false))
  }

  private markUnusable(): void {
    if (!this.unusable) {
      this.unusable = true
      this.onGone(this)
    }
  }

  // A connection the server asked us to leave is closed once its last call finishes.
  private maybeRetire(): void {
    if (this.unusable && this.calls.size === 0 && !this.closed) {
      this.closed = true
      this.writer.flush()
      this.connection.close()
    }
  }

  private onConnectionClosed(error: Error | undefined): void {
    this.closed = true
    this.deadlines.remove(this.probeDeadline)
    this.probeDeadline = undefined
    this.markUnusable()
    this.failAll(
      TransportError.of(
        error === undefined ? "closed" : "reset",
        this.address,
        error === undefined ? "connection closed by peer" : `connection lost: ${error.message}`,
        false
      )
    )
  }

  private failAll(error: TransportError): void {
    this.failQueued()
    const calls = [...this.calls.values()]
    this.calls.clear()
    for (const handlers of calls) handlers.onClosed(error)
  }

  /** Queued calls never left this process: they fail as not delivered, so they are retried elsewhere. */
  private failQueued(): void {
    if (this.queued.size === 0) return
    const error = TransportError.of("closed", this.address, "connection closed before the call was sent", true)
    const ids = [...this.queued.keys()]
    this.queued.clear()
    for (const id of ids) {
      const handlers = this.calls.get(id)
      this.calls.delete(id)
      handlers?.onClosed(error)
    }
  }
}
