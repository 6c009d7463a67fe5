/**
 * The client side of gRPC: one grpc-js `Client` (an HTTP/2 channel) per node, behind the same callback
 * interface as the native protocol's connection (`CallConnection`), so `Client.make` calls a gRPC node with
 * its usual selection, retries, deadlines and typed errors. Messages are already encoded by the endpoint's
 * protobuf codec when they get here: grpc-js's serializers pass bytes through.
 *
 * Mapping (docs/grpc.md): the call's endpoint → `/<grpc.service>/<Method>`; metadata → gRPC metadata;
 * the timeout → the gRPC deadline (`grpc-timeout`); a failed status → the typed error from
 * `grpc-status-details-bin` when an effect-micro server sent one (trailer `effect-micro-error`), else the
 * framework error of its code; a channel that cannot connect → `TransportError` (`refused`, retried anywhere).
 *
 * @internal
 */
import { Client as GrpcJsClient, connectivityState } from "@grpc/grpc-js"
import type * as grpc from "@grpc/grpc-js"
import type { CallShape } from "../../../Contract.js"
import { BadRequest, TransportError } from "../../../Errors.js"
import { pascal } from "../../../internal/codec/protobuf/names.js"
import type { CallConnection, CallHandlers } from "../../../internal/rpc/clientConnection.js"
import { encodeFrameworkErrorJson, ERROR_JSON } from "../../../internal/rpc/endpoint.js"
import { decodeCallHeader, ErrorKind } from "../../../internal/rpc/wire.js"
import * as Protobuf from "../../../Protobuf.js"
import { toGrpcMetadata } from "./calls.js"
import { Code, decodeStatusDetails, DETAILS_TRAILER, ERROR_KIND_TRAILER, frameworkOfCode } from "./status.js"

const passThrough = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
const asBuffer = (bytes: Buffer): Buffer => bytes

interface GrpcCall {
  readonly handlers: CallHandlers
  call: grpc.ClientUnaryCall | grpc.ClientReadableStream<Buffer> | grpc.ClientWritableStream<Uint8Array> | undefined
  /** Reply messages delivered, and how many the caller's window allows so far. */
  received: number
  allowed: number
  paused: boolean
}

/**
 * A grpc-js status as the client's error callbacks. Returns true when the channel could not connect: the
 * connection is then retired, so the next attempt dials afresh instead of waiting out grpc-js's reconnect
 * backoff (which grows to 2 minutes) while the node may be back.
 */
const deliverStatus = (address: string, handlers: CallHandlers, error: grpc.ServiceError): boolean => {
  const kind = error.metadata?.get(ERROR_KIND_TRAILER)[0]
  const details = error.metadata?.get(DETAILS_TRAILER)[0]
  if ((kind === "endpoint" || kind === "framework" || kind === "not-started") && Buffer.isBuffer(details)) {
    const value = decodeStatusDetails(details)?.[0]?.value
    if (value !== undefined) {
      handlers.onError(
        kind === "endpoint" ? ErrorKind.Endpoint : kind === "framework" ? ErrorKind.Framework : ErrorKind.NotStarted,
        Buffer.from(value)
      )
      return false
    }
  }
  const message = error.details ?? error.message
  if (error.code === Code.UNAVAILABLE && kind === undefined) {
    // grpc-js's own UNAVAILABLE: the channel could not connect (nothing was sent), or it broke mid-call.
    if (message.startsWith("No connection established")) {
      handlers.onClosed(TransportError.of("refused", address, message, true))
      return true
    }
    if (message.startsWith("Connection dropped") || message.includes("ECONNRESET")) {
      handlers.onClosed(TransportError.of("reset", address, message, false))
      return false
    }
  }
  const framework = frameworkOfCode(error.code, message, address)
  handlers.onError(ErrorKind.Framework | ERROR_JSON, Buffer.from(encodeFrameworkErrorJson(framework)))
  return false
}

const badRequest = (handlers: CallHandlers, detail: string): void =>
  handlers.onError(
    ErrorKind.Framework | ERROR_JSON,
    Buffer.from(encodeFrameworkErrorJson(BadRequest.of(detail, "effect-micro.client")))
  )

interface ParsedHeader {
  /** `/<package.Service>/<Method>`. */
  readonly path: string
  readonly metadata: Readonly<Record<string, string>>
  /** Why the call cannot be made over gRPC. */
  readonly error: string | undefined
}

export class GrpcConnection implements CallConnection {
  private readonly calls = new Map<number, GrpcCall>()
  private readonly headers = new WeakMap<Buffer, ParsedHeader>()
  private readonly client: GrpcJsClient
  private nextId = 1
  unusable = false
  received = 0
  private closed = false

  constructor(
    readonly address: string,
    /** Full gRPC service name (`package.Service`) of the node. */
    private readonly service: string,
    credentials: grpc.ChannelCredentials,
    options: grpc.ChannelOptions,
    private readonly onGone: (self: GrpcConnection) => void
  ) {
    this.client = new GrpcJsClient(address, credentials, options)
  }

  /**
   * What a call header says, parsed once per header: the client reuses one header Buffer per endpoint and
   * content-type for calls without metadata, so the common call skips the parse.
   */
  private parse(header: Buffer): ParsedHeader {
    let parsed = this.headers.get(header)
    if (parsed !== undefined) return parsed
    const call = decodeCallHeader(header, 0, header.length)
    parsed = call === undefined
      ? { path: "", metadata: {}, error: "malformed call header" }
      : call.contentType !== Protobuf.contentType && call.contentType !== Protobuf.contentTypeAlias
      ? {
        path: "",
        metadata: {},
        error: `gRPC carries protobuf: call with contentType "${Protobuf.contentType}" ` +
          `(GrpcClient.layer makes it the default), not "${call.contentType}"`
      }
      : { path: `/${this.service}/${pascal(call.endpoint)}`, metadata: call.metadata, error: undefined }
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
    const metadata = toGrpcMetadata(parsed.metadata)
    if (typeof metadata === "string") {
      badRequest(handlers, metadata)
      return id
    }
    const path = parsed.path
    const options: grpc.CallOptions = timeoutMillis > 0 ? { deadline: Date.now() + timeoutMillis } : {}
    const state: GrpcCall = { handlers, call: undefined, received: 0, allowed: window, paused: false }
    this.calls.set(id, state)
    const resolvedShape = shape ?? (body !== undefined ? "unary" : "bidi")
    const onStatusError = (error: grpc.ServiceError) => {
      if (this.calls.get(id) !== state) return
      this.calls.delete(id)
      this.received++
      if (deliverStatus(this.address, handlers, error)) this.retire()
      else this.closeIfRetired()
    }
    const onUnary = (error: grpc.ServiceError | null, value?: Buffer) => {
      if (error !== null) return onStatusError(error)
      if (this.calls.get(id) !== state) return
      this.calls.delete(id)
      this.received++
      handlers.onReply(value!)
      this.closeIfRetired()
    }
    switch (resolvedShape) {
      case "unary":
        state.call = this.client.makeUnaryRequest(path, passThrough, asBuffer, body!, metadata, options, onUnary)
        break
      case "client-stream":
        state.call = this.client.makeClientStreamRequest(path, passThrough, asBuffer, metadata, options, onUnary)
        break
      case "server-stream":
      case "bidi": {
        const stream: grpc.ClientReadableStream<Buffer> = resolvedShape === "server-stream"
          ? this.client.makeServerStreamRequest(path, passThrough, asBuffer, body!, metadata, options)
          : this.client.makeBidiStreamRequest(path, passThrough, asBuffer, metadata, options)
        state.call = stream
        stream.on("data", (message: Buffer) => {
          if (this.calls.get(id) !== state) return
          this.received++
          handlers.onData(message)
          // Within the caller's window only: pause the HTTP/2 stream until it grants credit.
          if (++state.received >= state.allowed && !state.paused) {
            state.paused = true
            stream.pause()
          }
        })
        stream.on("error", onStatusError)
        stream.on("status", (status: grpc.StatusObject) => {
          if (status.code !== Code.OK || this.calls.get(id) !== state) return
          this.calls.delete(id)
          this.received++
          handlers.onEnd()
          this.closeIfRetired()
        })
        break
      }
    }
    return id
  }

  data(id: number, body: Uint8Array): void {
    const state = this.calls.get(id)
    if (state === undefined) return // Credit back once grpc-js has taken the message (HTTP/2 flow control is the real window).
    ;(state.call as grpc.ClientWritableStream<Uint8Array>).write(body, () => state.handlers.onCredit(1))
  }

  end(id: number): void {
    const state = this.calls.get(id)
    if (state !== undefined) (state.call as grpc.ClientWritableStream<Uint8Array>).end()
  }

  credit(id: number, credit: number): void {
    const state = this.calls.get(id)
    if (state === undefined) return
    state.allowed += credit
    if (state.paused && state.received < state.allowed) {
      state.paused = false
      ;(state.call as grpc.ClientReadableStream<Buffer>).resume()
    }
  }

  cancel(id: number): void {
    const state = this.calls.get(id)
    if (state === undefined) return
    this.calls.delete(id)
    state.call?.cancel()
    this.closeIfRetired()
  }

  release(id: number): void {
    this.calls.delete(id)
    this.closeIfRetired()
  }

  /** No new calls here (the pool forgets it); the channel closes once the calls on it are done. */
  private retire(): void {
    if (!this.unusable) {
      this.unusable = true
      this.onGone(this)
    }
    this.closeIfRetired()
  }

  private closeIfRetired(): void {
    if (this.unusable && this.calls.size === 0 && !this.closed) {
      this.closed = true
      this.client.close()
    }
  }

  /** grpc-js keeps the channel alive itself (reconnects, optional keepalive pings): nothing to check here. */
  probe(): void {}

  /**
   * The hung-node check's liveness signal: a channel that is connected (or idle, connecting on demand)
   * counts as an answer; one in TRANSIENT_FAILURE does not. grpc-js does not expose HTTP/2 PINGs; set
   * `grpc.keepalive_time_ms` in the channel options to detect a silently dead peer.
   */
  ping(): void {
    const state = this.client.getChannel().getConnectivityState(false)
    if (state === connectivityState.READY || state === connectivityState.IDLE) this.received++
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    if (!this.unusable) {
      this.unusable = true
      this.onGone(this)
    }
    const calls = [...this.calls.values()]
    this.calls.clear()
    const error = TransportError.of("closed", this.address, "client is closed", false)
    for (const state of calls) {
      state.call?.cancel()
      state.handlers.onClosed(error)
    }
    this.client.close()
  }
}
