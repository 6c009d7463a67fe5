/**
 * The client side of gRPC: one HTTP/2 session (`node:http2`) per node, speaking gRPC's framing directly,
 * behind the same callback interface as the native protocol's connection (`CallConnection`), so
 * `Client.make` calls a gRPC node with its usual selection, retries, deadlines and typed errors. Messages are
 * already encoded by the endpoint's protobuf codec when they get here.
 *
 * Why not grpc-js's client: measured in the `grpc` bench group (64 in flight, 109-byte payload), its channel,
 * filter stack and per-message promises cost ≈175 µs of client CPU per unary call and ≈20 µs per bidi
 * message, and it hands each reply message over in its own tick (so the caller's reply Stream woke once per
 * message). Here a call is one `session.request`, replies are parsed straight from the DATA chunks, and
 * stream messages reach the caller in batches (see `deliver`).
 *
 * Wire (https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md): request headers `:path
 * /<grpc.service>/<Method>`, `content-type: application/grpc`, `te: trailers`, `grpc-timeout` from the call's
 * timeout, metadata as headers (`-bin` values base64); messages are a 1-byte compressed flag and a 4-byte
 * big-endian length before the bytes; the status is `grpc-status` / `grpc-message` in the trailers (or in the
 * headers of a trailers-only response). A failed status becomes the typed error of `grpc-status-details-bin`
 * when an effect-micro server sent one (trailer `effect-micro-error`), else the framework error of its code.
 * Cancelling a call resets its stream (RST_STREAM CANCEL). A session that cannot connect fails its calls with
 * `TransportError` (`refused`, retried anywhere) and is retired, so the next attempt dials afresh.
 *
 * Flow control: replies of a streaming call are handed to the caller within its window (`credit`); beyond
 * it they wait here and the HTTP/2 stream is paused, so the server's HTTP/2 window closes. Request messages
 * get credit back while the HTTP/2 stream takes them without buffering (`write` returns true); once it
 * buffers, credit waits for `drain`.
 *
 * @internal
 */
import * as http2 from "node:http2"
import * as net from "node:net"
import * as tls from "node:tls"
import * as zlib from "node:zlib"
import type { CallShape } from "../../../Contract.js"
import { TransportError } from "../../../Errors.js"
import { pascal } from "../../../internal/codec/protobuf/names.js"
import type { CallConnection, CallHandlers } from "../../../internal/rpc/clientConnection.js"
import type { DeadlineEntry, DeadlineWheel } from "../../../internal/rpc/deadlines.js"
import { decodeCallHeader } from "../../../internal/rpc/wire.js"
import * as Protobuf from "../../../Protobuf.js"
import {
  badRequest,
  codeOfHttpStatus,
  codeOfReset,
  decodeGrpcMessage,
  deliverStatus,
  firstString,
  grpcTimeout,
  toGrpcHeaders,
  USER_AGENT
} from "./clientStatus.js"
import { Code } from "./status.js"

const { NGHTTP2_CANCEL, NGHTTP2_REFUSED_STREAM } = http2.constants

/** A gRPC message's prefix: the compressed flag (1 byte) and the length (u32, big-endian). */
const MESSAGE_PREFIX = 5
/** Request messages queued in one tick up to this many bytes get their credit back at once. */
const BATCH_BYTES = 64 * 1024
interface ParsedHeader {
  /** The request headers without `grpc-timeout`. */
  readonly headers: Readonly<Record<string, string>> | undefined
  /** Why the call cannot be made over gRPC. */
  readonly error: string | undefined
  /** The headers with the `grpc-timeout` of the last call (calls of one endpoint mostly share a timeout). */
  timed: { readonly millis: number; readonly headers: Readonly<Record<string, string>> } | undefined
}

/** One call: its stream, the reply messages not yet handed over, and both directions' flow control. */
interface Call {
  readonly id: number
  readonly handlers: CallHandlers
  readonly stream: http2.ClientHttp2Stream
  /** One reply message (unary, client-stream) rather than a stream of them. */
  readonly single: boolean
  /** Unary reply, once received. */
  reply: Buffer | undefined
  replies: number
  /** `grpc-encoding` of the replies. */
  encoding: string | undefined
  /** Bytes of an incomplete message, and how many bytes the message needs (prefix included; 0: unknown yet). */
  partial: Array<Buffer> | undefined
  partialLength: number
  needed: number
  /** Reply messages decoded but not handed over (beyond the caller's window, or awaiting the batch). */
  inbox: Array<Buffer>
  delivered: number
  allowed: number
  paused: boolean
  scheduled: boolean
  /** Trailers (or the headers of a trailers-only response): the status. */
  trailers: http2.IncomingHttpHeaders | undefined
  /** The outcome, once the stream closed, handed over after the inbox. */
  ended: (() => void) | undefined
  /** Request messages framed in this tick, not yet written. */
  outbox: Array<Uint8Array>
  /** Bytes of `outbox` framed (prefixes included). */
  outBytes: number
  /** Credit held back until the HTTP/2 stream drains. */
  owed: number
  endRequested: boolean
}

export class GrpcConnection implements CallConnection {
  private readonly calls = new Map<number, Call>()
  private readonly headers = new WeakMap<Buffer, ParsedHeader>()
  private readonly session: http2.ClientHttp2Session
  /** Calls with reply messages to hand over at the next `setImmediate`. */
  private readonly toDeliver: Array<Call> = []
  /** Calls with request messages to write at the end of this tick. */
  private readonly toWrite: Array<Call> = []
  private writeScheduled = false
  private probeDeadline: DeadlineEntry | undefined = undefined
  private nextId = 1
  private connected = false
  private closed = false
  unusable = false
  received = 0

  constructor(
    readonly address: string,
    /** Full gRPC service name (`package.Service`) of the node. */
    private readonly service: string,
    /** Largest message accepted from the server. */
    private readonly maxMessageSize: number,
    private readonly deadlines: DeadlineWheel,
    options: http2.ClientSessionOptions | http2.SecureClientSessionOptions,
    secure: boolean,
    private readonly onGone: (self: GrpcConnection) => void
  ) {
    const colon = address.lastIndexOf(":")
    const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1")
    const port = Number(address.slice(colon + 1))
    this.session = http2.connect(`${secure ? "https" : "http"}://${address}`, {
      ...options,
      // Our own socket, as grpc-js does, to turn Nagle's algorithm off: small messages go out at once
      // instead of waiting for the ACK of the previous ones.
      createConnection: () => {
        const socket = secure
          ? tls.connect({
            ...(options as http2.SecureClientSessionOptions),
            host,
            port,
            ALPNProtocols: ["h2"],
            servername: (options as http2.SecureClientSessionOptions).servername ??
              (net.isIP(host) === 0 ? host : undefined)
          } as tls.ConnectionOptions)
          : net.connect({ host, port })
        return socket.setNoDelay(true)
      }
    })
    this.session.on("connect", () => {
      this.connected = true
    })
    this.session.on("error", () => {}) // `close` follows and fails the calls left.
    this.session.on("goaway", () => this.retire())
    this.session.on("close", () => this.onSessionClosed())
  }

  /** The request headers of a call header, built once per header Buffer (the client reuses them). */
  private parse(header: Buffer): ParsedHeader {
    let parsed = this.headers.get(header)
    if (parsed !== undefined) return parsed
    const call = decodeCallHeader(header, 0, header.length)
    if (call === undefined) parsed = { headers: undefined, error: "malformed call header", timed: undefined }
    else if (call.contentType !== Protobuf.contentType && call.contentType !== Protobuf.contentTypeAlias) {
      parsed = {
        headers: undefined,
        timed: undefined,
        error: `gRPC carries protobuf: call with contentType "${Protobuf.contentType}" ` +
          `(GrpcClient.layer makes it the default), not "${call.contentType}"`
      }
    } else {
      const metadata = toGrpcHeaders(call.metadata)
      parsed = typeof metadata === "string" ? { headers: undefined, error: metadata, timed: undefined } : {
        headers: {
          ...metadata,
          ":method": "POST",
          ":path": `/${this.service}/${pascal(call.endpoint)}`,
          "content-type": "application/grpc",
          te: "trailers",
          "user-agent": USER_AGENT
        },
        error: undefined,
        timed: undefined
      }
    }
    this.headers.set(header, parsed)
    return parsed
  }

  get activeCalls(): number {
    return this.calls.size
  }

  open(
    header: Buffer,
    timeoutMillis: number,
    window: number,
    body: Uint8Array | undefined,
    handlers: CallHandlers,
    shape?: CallShape
  ): number {
    const id = this.nextId++
    if (this.unusable) {
      handlers.onClosed(TransportError.of("closed", this.address, "connection already closed", true))
      return id
    }
    const parsed = this.parse(header)
    if (parsed.error !== undefined) {
      badRequest(handlers, parsed.error)
      return id
    }
    const resolvedShape = shape ?? (body !== undefined ? "unary" : "bidi")
    let headers = parsed.headers!
    if (timeoutMillis > 0) {
      if (parsed.timed?.millis !== timeoutMillis) {
        parsed.timed = { millis: timeoutMillis, headers: { ...headers, "grpc-timeout": grpcTimeout(timeoutMillis) } }
      }
      headers = parsed.timed.headers
    }
    let stream: http2.ClientHttp2Stream
    try {
      stream = this.session.request(headers, { endStream: false })
    } catch (error) {
      // The session is closing (GOAWAY) or out of stream ids: nothing was sent, retry elsewhere.
      this.retire()
      handlers.onClosed(TransportError.of("closed", this.address, `cannot open a stream: ${String(error)}`, true))
      return id
    }
    const call: Call = {
      id,
      handlers,
      stream,
      single: resolvedShape === "unary" || resolvedShape === "client-stream",
      reply: undefined,
      replies: 0,
      encoding: undefined,
      partial: undefined,
      partialLength: 0,
      needed: 0,
      inbox: [],
      delivered: 0,
      allowed: window,
      paused: false,
      scheduled: false,
      trailers: undefined,
      ended: undefined,
      outbox: [],
      outBytes: 0,
      owed: 0,
      endRequested: false
    }
    this.calls.set(id, call)
    stream.on("response", (responseHeaders) => this.onResponse(id, call, responseHeaders))
    stream.on("data", (chunk: Buffer) => this.onChunk(id, call, chunk))
    stream.on("trailers", (trailers) => {
      call.trailers = trailers
    })
    stream.on("error", () => {}) // `close` follows, with `rstCode`.
    stream.on("close", () => this.onStreamClosed(id, call))
    if (body !== undefined) stream.end(frame(body))
    else {
      stream.on("drain", () => {
        const owed = call.owed
        call.owed = 0
        if (owed > 0 && this.calls.get(id) === call) handlers.onCredit(owed)
      })
    }
    return id
  }

  // ----- replies -----

  private onResponse(id: number, call: Call, headers: http2.IncomingHttpHeaders): void {
    this.received++
    if (this.calls.get(id) !== call) return
    const status = Number(headers[":status"] ?? 0)
    const contentType = headers["content-type"] ?? ""
    if (headers["grpc-status"] !== undefined) {
      // Trailers-only response: the status is in these headers.
      call.trailers = headers
      return
    }
    if (status !== 200 || !contentType.startsWith("application/grpc")) {
      this.failCall(
        id,
        call,
        status !== 200 ? codeOfHttpStatus(status) : Code.UNKNOWN,
        status !== 200 ? `HTTP status ${status} without a gRPC status` : `unexpected content-type "${contentType}"`
      )
      return
    }
    const encoding = firstString(headers["grpc-encoding"])
    call.encoding = encoding === undefined || encoding === "identity" ? undefined : encoding
  }

  /** Cuts a DATA chunk into messages (a message may span chunks). */
  private onChunk(id: number, call: Call, chunk: Buffer): void {
    this.received++
    if (this.calls.get(id) !== call) return
    let buffer = chunk
    if (call.partial !== undefined) {
      call.partial.push(chunk)
      call.partialLength += chunk.length
      if (call.needed === 0 && call.partialLength >= MESSAGE_PREFIX) {
        const head = Buffer.concat(call.partial)
        call.partial = [head]
        call.needed = MESSAGE_PREFIX + head.readUInt32BE(1)
        if (call.needed - MESSAGE_PREFIX > this.maxMessageSize) return this.tooLarge(id, call, call.needed)
      }
      if (call.needed === 0 || call.partialLength < call.needed) return
      buffer = Buffer.concat(call.partial, call.partialLength)
      call.partial = undefined
      call.partialLength = 0
      call.needed = 0
    }
    let offset = 0
    while (buffer.length - offset >= MESSAGE_PREFIX) {
      const length = buffer.readUInt32BE(offset + 1)
      if (length > this.maxMessageSize) return this.tooLarge(id, call, length)
      const end = offset + MESSAGE_PREFIX + length
      if (end > buffer.length) break
      const compressed = buffer[offset] !== 0
      const message = buffer.subarray(offset + MESSAGE_PREFIX, end)
      offset = end
      if (compressed) {
        const inflated = this.inflate(call, message)
        if (inflated === undefined) {
          return this.failCall(
            id,
            call,
            Code.INTERNAL,
            `compressed message with grpc-encoding "${call.encoding ?? "identity"}"`
          )
        }
        this.onMessage(call, inflated)
      } else this.onMessage(call, message)
      if (this.calls.get(id) !== call) return
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset)
      call.partial = [rest]
      call.partialLength = rest.length
      call.needed = rest.length >= MESSAGE_PREFIX ? MESSAGE_PREFIX + rest.readUInt32BE(1) : 0
    }
  }

  private inflate(call: Call, message: Buffer): Buffer | undefined {
    try {
      const options = { maxOutputLength: Math.max(1, this.maxMessageSize) }
      switch (call.encoding) {
        case "gzip":
          return zlib.gunzipSync(message, options)
        case "deflate":
          return zlib.inflateSync(message, options)
        default:
          return undefined
      }
    } catch {
      return undefined
    }
  }

  private onMessage(call: Call, message: Buffer): void {
    if (call.single) {
      call.replies++
      call.reply = message
      return
    }
    call.inbox.push(message)
    if (call.delivered + call.inbox.length > call.allowed && !call.paused) {
      // Beyond the caller's window: stop reading, so the server's HTTP/2 window closes.
      call.paused = true
      call.stream.pause()
    }
    this.scheduleDelivery(call)
  }

  /**
   * Stream replies reach the caller at `setImmediate`, all that arrived meanwhile at once: node:http2 calls
   * back once per DATA frame (a server writes a frame per message) with microtasks run in between, so
   * handing each over at once woke the caller's reply Stream once per message.
   */
  private scheduleDelivery(call: Call): void {
    if (call.scheduled) return
    call.scheduled = true
    this.toDeliver.push(call)
    if (this.toDeliver.length === 1) setImmediate(this.deliverAll)
  }

  private readonly deliverAll = (): void => {
    const calls = this.toDeliver.splice(0)
    for (const call of calls) {
      call.scheduled = false
      this.deliver(call)
    }
  }

  /** Hands over the messages the caller's window allows, then the end once nothing is left. */
  private deliver(call: Call): void {
    if (this.calls.get(call.id) !== call) return
    const inbox = call.inbox
    let index = 0
    while (index < inbox.length && call.delivered < call.allowed) {
      call.delivered++
      call.handlers.onData(inbox[index++]!)
    }
    if (index > 0) inbox.splice(0, index)
    if (inbox.length === 0) {
      if (call.paused) {
        call.paused = false
        call.stream.resume()
      }
      const ended = call.ended
      if (ended !== undefined) {
        call.ended = undefined
        ended()
      }
    }
  }

  private tooLarge(id: number, call: Call, length: number): void {
    this.failCall(
      id,
      call,
      Code.RESOURCE_EXHAUSTED,
      `received a message of ${length} bytes, larger than the limit of ${this.maxMessageSize}`
    )
  }

  /** Ends a call with a status of our own (the server's answer is unusable) and resets its stream. */
  private failCall(id: number, call: Call, code: number, message: string): void {
    this.calls.delete(id)
    call.stream.close(NGHTTP2_CANCEL)
    deliverStatus(this.address, call.handlers, code, message, undefined)
    this.closeIfRetired()
  }

  private onStreamClosed(id: number, call: Call): void {
    if (this.calls.get(id) !== call) return
    const trailers = call.trailers
    let outcome: () => void
    if (trailers === undefined) {
      const rstCode = call.stream.rstCode ?? 0
      if (rstCode === NGHTTP2_REFUSED_STREAM) {
        // Not processed by the server (GOAWAY, stream limit): safe to retry anywhere.
        const error = TransportError.of("refused", this.address, "stream refused by the server", true)
        outcome = () => call.handlers.onClosed(error)
      } else if (this.session.destroyed || this.session.closed) {
        const error = this.brokenError()
        outcome = () => call.handlers.onClosed(error)
      } else {
        const code = rstCode === 0 ? Code.INTERNAL : codeOfReset(rstCode)
        const message = rstCode === 0
          ? "stream ended without a gRPC status"
          : `stream reset by the server (RST_STREAM code ${rstCode})`
        outcome = () => deliverStatus(this.address, call.handlers, code, message, undefined)
      }
    } else {
      const parsed = Number(firstString(trailers["grpc-status"]))
      const code = Number.isInteger(parsed) ? parsed : Code.UNKNOWN
      if (code !== Code.OK) {
        const message = decodeGrpcMessage(trailers["grpc-message"])
        outcome = () => deliverStatus(this.address, call.handlers, code, message, trailers)
      } else if (!call.single) outcome = () => call.handlers.onEnd()
      else if (call.replies === 1) {
        const reply = call.reply!
        outcome = () => call.handlers.onReply(reply)
      } else {
        const message = `expected one reply message, received ${call.replies}`
        outcome = () => deliverStatus(this.address, call.handlers, Code.UNIMPLEMENTED, message, undefined)
      }
    }
    const finish = () => {
      this.calls.delete(id)
      outcome()
      this.closeIfRetired()
    }
    // A stream's outcome comes after the messages still waiting for the batch or the caller's window.
    if (call.single || (call.inbox.length === 0 && !call.scheduled)) return finish()
    call.ended = finish
  }

  // ----- requests -----

  data(id: number, body: Uint8Array): void {
    const call = this.calls.get(id)
    if (call === undefined) return
    call.outbox.push(body)
    call.outBytes += MESSAGE_PREFIX + body.byteLength
    if (call.outBytes <= BATCH_BYTES && !call.stream.writableNeedDrain) call.handlers.onCredit(1)
    else call.owed++
    if (call.outbox.length === 1) {
      this.toWrite.push(call)
      if (!this.writeScheduled) {
        this.writeScheduled = true
        process.nextTick(this.writeAll)
      }
    }
  }

  /** Writes each call's request messages of this tick as one chunk (one DATA frame for small messages). */
  private readonly writeAll = (): void => {
    this.writeScheduled = false
    const calls = this.toWrite.splice(0)
    for (const call of calls) {
      const outbox = call.outbox
      if (outbox.length === 0) continue
      const bytes = frameAll(outbox, call.outBytes)
      call.outbox = []
      call.outBytes = 0
      if (call.stream.destroyed) continue
      const flowing = call.stream.write(bytes)
      if (call.endRequested) call.stream.end()
      else if (flowing && call.owed > 0) {
        const owed = call.owed
        call.owed = 0
        call.handlers.onCredit(owed)
      }
    }
  }

  end(id: number): void {
    const call = this.calls.get(id)
    if (call === undefined) return
    if (call.outbox.length > 0) call.endRequested = true
    else call.stream.end()
  }

  credit(id: number, credit: number): void {
    const call = this.calls.get(id)
    if (call === undefined) return
    call.allowed += credit
    if (call.inbox.length > 0 || call.ended !== undefined) this.deliver(call)
  }

  cancel(id: number): void {
    const call = this.calls.get(id)
    if (call === undefined) return
    this.calls.delete(id)
    if (!call.stream.destroyed) call.stream.close(NGHTTP2_CANCEL)
    this.closeIfRetired()
  }

  release(id: number): void {
    this.calls.delete(id)
    this.closeIfRetired()
  }

  // ----- the session -----

  private brokenError(): TransportError {
    return this.connected
      ? TransportError.of("reset", this.address, "connection dropped", false)
      : TransportError.of("refused", this.address, "no connection established", true)
  }

  private onSessionClosed(): void {
    this.closed = true
    this.deadlines.remove(this.probeDeadline)
    this.probeDeadline = undefined
    this.markUnusable()
    this.failAll(this.brokenError())
  }

  private failAll(error: TransportError): void {
    const calls = [...this.calls.values()]
    this.calls.clear()
    for (const call of calls) {
      if (!call.stream.destroyed) call.stream.close(NGHTTP2_CANCEL)
      call.handlers.onClosed(error)
    }
  }

  private markUnusable(): void {
    if (!this.unusable) {
      this.unusable = true
      this.onGone(this)
    }
  }

  /** No new calls here (the pool forgets it); the session closes once the calls on it are done. */
  private retire(): void {
    this.markUnusable()
    this.closeIfRetired()
  }

  private closeIfRetired(): void {
    if (this.unusable && this.calls.size === 0 && !this.closed) {
      this.closed = true
      this.session.close()
    }
  }

  /** Checks the peer answers a PING within `timeoutMillis` after a call timed out; destroys the session if not. */
  probe(timeoutMillis = 2000): void {
    if (this.closed || this.probeDeadline !== undefined) return
    const sent = this.ping()
    if (!sent) return
    this.probeDeadline = this.deadlines.add(timeoutMillis, () => {
      this.probeDeadline = undefined
      if (this.closed) return
      this.markUnusable()
      this.failAll(
        TransportError.of("reset", this.address, `no PING answer within ${timeoutMillis} ms: peer unreachable`, false)
      )
      this.closed = true
      this.session.destroy()
    })
  }

  /** An HTTP/2 PING; its answer counts in `received` (hung-node check) and ends a pending probe. */
  ping(): boolean {
    if (this.closed || this.session.destroyed) return false
    try {
      return this.session.ping((error) => {
        if (error !== null) return
        this.received++
        this.deadlines.remove(this.probeDeadline)
        this.probeDeadline = undefined
      })
    } catch {
      return false
    }
  }

  close(): void {
    if (this.unusable && this.closed) return
    this.markUnusable()
    this.failAll(TransportError.of("closed", this.address, "client is closed", false))
    if (!this.closed) {
      this.closed = true
      this.session.close()
    }
  }
}

/** Messages with their gRPC prefixes (uncompressed), in one buffer of `size` bytes. */
const frameAll = (messages: ReadonlyArray<Uint8Array>, size: number): Buffer => {
  const framed = Buffer.allocUnsafe(size)
  let offset = 0
  for (const message of messages) {
    framed[offset] = 0
    framed.writeUInt32BE(message.byteLength, offset + 1)
    framed.set(message, offset + MESSAGE_PREFIX)
    offset += MESSAGE_PREFIX + message.byteLength
  }
  return framed
}

/** A message with its gRPC prefix (uncompressed). */
const frame = (body: Uint8Array): Buffer => {
  const framed = Buffer.allocUnsafe(MESSAGE_PREFIX + body.byteLength)
  framed[0] = 0
  framed.writeUInt32BE(body.byteLength, 1)
  framed.set(body, MESSAGE_PREFIX)
  return framed
}
