/**
 * One accepted connection on the server: parses frames, routes OPENs to handlers, runs each call on a
 * pooled handler fiber (handlerPool.ts), and writes replies. Plain callbacks around the pool, because this
 * is the per-request hot path (PERF-NOTES.md: a stream pipeline per connection is not cheap).
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { Codecs } from "../../Codec.js"
import type { CallShape, EndpointSchemas } from "../../Contract.js"
import type { MicroError } from "../../Errors.js"
import { BadRequest, InternalServerError, NotFound, ServiceUnavailable, StreamClosed, Timeout } from "../../Errors.js"
import type { IncomingCall } from "../../Metadata.js"
import type { Connection } from "../../Transport.js"
import { describeDefect } from "../codec/inputLimits.js"
import { frameworkCode } from "./callTarget.js"
import type { DeadlineEntry, DeadlineWheel } from "./deadlines.js"
import type { CompiledEndpoint, EndpointCodecs } from "./endpoint.js"
import { encodeFailure, encodeFramework, encodeFrameworkErrorJson, ERROR_JSON } from "./endpoint.js"
import type { HandlerPool, PooledJob } from "./handlerPool.js"
import { Inbox } from "./inbox.js"
import type { ConnectionStats, EndpointStats } from "./serverStats.js"
import { Outcome } from "./serverStats.js"
import { StreamTable } from "./streamTable.js"
import type { OpenFrame } from "./wire.js"
import {
  BatchWriter,
  decodeOpen,
  DEFAULT_WINDOW,
  encodeBody,
  encodeEmpty,
  encodeError,
  encodeSettings,
  encodeU32,
  errorFrame,
  ErrorKind,
  FrameDecoder,
  FrameType,
  Setting
} from "./wire.js"

/** A middleware as the server applies it: wraps the effect that runs one call. */
export type ServerWrapper = (
  call: IncomingCall,
  next: Effect.Effect<unknown, unknown>
) => Effect.Effect<unknown, unknown>

export interface Route {
  readonly name: string
  /** Counted per call (Debug.Stats, /metrics). */
  readonly stats: EndpointStats
  readonly schemas: EndpointSchemas
  readonly codecs: EndpointCodecs
  readonly handler: (payload: unknown, options: { readonly clientId: number; readonly headers: any }) => object
  /** Fibers that run this endpoint's calls, with `currentCallRef` set per call. */
  readonly pool: HandlerPool<IncomingCall | undefined>
}

/** Limits that bound what one peer can make the server hold (docs/protocol.md, "Limits"). */
export interface ConnectionLimits {
  readonly maxFrameSize: number
  readonly maxConcurrentStreams: number
  /** Largest server → client DATA window honoured; larger OPEN windows are clamped to it. */
  readonly maxWindow: number
  readonly handshakeTimeoutMillis: number
  readonly frameTimeoutMillis: number
  readonly idleTimeoutMillis: number
  readonly streamIdleTimeoutMillis: number
  readonly writeHighWater: number
  /** How long a GOAWAY waits for the client's acknowledgement (its PONG) before the connection may close. */
  readonly goAwayGraceMillis: number
}

/** What all connections of one server share. */
export interface ServerShared {
  readonly service: string
  readonly routes: ReadonlyMap<string, Route>
  readonly codecs: Codecs.Service
  readonly wrappers: ReadonlyArray<ServerWrapper>
  readonly limits: ConnectionLimits
  draining: boolean
  nextClientId: number
  readonly deadlines: DeadlineWheel
  readonly connectionStats: ConnectionStats
  /** Reports a defect caught on the socket path (logged; the process keeps serving). */
  readonly reportDefect: (message: string, defect: unknown) => void
}

/** The 8 bytes of the PING that follows GOAWAY: its PONG proves the client has seen the GOAWAY. */
const GOAWAY_ACK = Buffer.from("GOAWAY\0\0", "latin1")

interface CallState {
  job: PooledJob | undefined
  /** Set when the peer cancelled or went away: no reply is written. */
  done: boolean
  /** Outbound credit (server → client DATA frames). */
  credit: number
  creditWaiter: (() => void) | undefined
  /** Inbound messages for client-streaming and bidi calls. */
  inbox: Inbox<unknown> | undefined
  compiled: CompiledEndpoint | undefined
  readonly shape: CallShape
  /** Inbound DATA frames received, and how many the window allows so far. */
  received: number
  allowed: number
  deadline: DeadlineEntry | undefined
  /** Armed while the reply stream waits for the peer (credit or a congested socket). */
  stall: DeadlineEntry | undefined
  /** The endpoint's counters, and when the call started (`performance.now()`), for its duration. */
  stats: EndpointStats | undefined
  startedAt: number
  /** How the call ended, set before `finish`; a call finished without one was cancelled. */
  outcome: Outcome
  /** A failed call's code: the framework error's (`408`, `500` …) or `error` for the endpoint's own. */
  failCode: string
}

export class ServerConnection {
  private readonly calls = new StreamTable<CallState>()
  private readonly writer: BatchWriter
  private readonly decoder: FrameDecoder
  private readonly clientId: number
  private readonly limits: ConnectionLimits
  private closed = false
  /** GOAWAY sent: new OPENs are refused (retryable); closes once acknowledged and idle. */
  private goingAway = false
  private goAwayAcked = false
  /** Pending output above the high-water mark: reading is paused and reply streams wait. */
  private congested = false
  private readonly drainWaiters: Array<() => void> = []
  private handshakeTimer: DeadlineEntry | undefined
  private frameTimer: DeadlineEntry | undefined = undefined
  private idleTimer: DeadlineEntry | undefined = undefined
  private graceTimer: DeadlineEntry | undefined = undefined
  /** Calls opened since the idle timer was last armed. */
  private opened = 0

  constructor(
    private readonly shared: ServerShared,
    private readonly connection: Connection,
    /** Over the server's connection cap: every call is refused (retryable) and the connection closes. */
    private readonly refuse = false
  ) {
    this.clientId = shared.nextClientId++
    this.limits = shared.limits
    const connectionStats = shared.connectionStats
    connectionStats.open++
    if (refuse) connectionStats.refused++
    else connectionStats.accepted++
    const writev = connection.writev
    this.writer = new BatchWriter(
      (data) => {
        connectionStats.bytesOut += data.length
        connection.write(data)
        if (!this.congested && connection.pendingBytes() > this.limits.writeHighWater) this.onCongested()
      },
      writev === undefined ? undefined : (pieces, size) => {
        connectionStats.bytesOut += size
        writev(pieces)
        if (!this.congested && connection.pendingBytes() > this.limits.writeHighWater) this.onCongested()
      }
    )
    this.decoder = new FrameDecoder(this, this.limits.maxFrameSize, true)
    connection.onData((chunk) => this.onChunk(chunk))
    connection.onClose(() => this.onConnectionClosed())
    // A peer that never completes the preface (a port scan, a stalled socket) holds nothing for long.
    this.handshakeTimer = shared.deadlines.add(this.limits.handshakeTimeoutMillis, () => {
      this.handshakeTimer = undefined
      if (!this.decoder.prefaceReceived) connection.destroy()
    })
    this.armIdleTimer()
  }

  /**
   * Stop taking new calls on this connection: GOAWAY, then a PING whose PONG proves the client has seen
   * it. OPENs that arrive before that PONG crossed the GOAWAY on the wire: they are answered with a
   * retryable 503 ("not started") instead of a reset, and the connection closes once the client has
   * acknowledged (or `goAwayGrace` passed) and the calls in flight are done.
   */
  goAway(): void {
    if (this.closed || this.goingAway) return
    this.goingAway = true
    this.writer.write(encodeEmpty(FrameType.GoAway, 0))
    this.writer.write(encodeBody(FrameType.Ping, 0, GOAWAY_ACK))
    this.graceTimer = this.shared.deadlines.add(this.limits.goAwayGraceMillis, () => {
      this.graceTimer = undefined
      this.goAwayAcked = true
      this.maybeRetire()
    })
  }

  /** Interrupt every call (after the drain deadline) and close. */
  close(): void {
    for (const [id, state] of this.calls) {
      if (!state.done) {
        this.writeFrameworkError(id, state.compiled, ServiceUnavailable.of("server stopped", this.shared.service))
      }
      this.finish(id, state)
      state.job?.interrupt()
    }
    this.writer.flush()
    this.clearTimers()
    this.connection.close()
  }

  private maybeRetire(): void {
    if (this.goingAway && this.goAwayAcked && this.calls.size === 0 && !this.closed) {
      this.writer.flush()
      this.clearTimers()
      this.connection.close()
    }
  }

  private onChunk(chunk: Buffer): void {
    this.shared.connectionStats.bytesIn += chunk.length
    try {
      this.decoder.push(chunk)
    } catch (defect) {
      // The decoder guards every frame; reaching here is a bug. Drop this peer, keep the process.
      this.shared.reportDefect("frame decoder failed; connection closed", defect)
      this.connection.destroy()
      return
    }
    if (this.handshakeTimer !== undefined && this.decoder.prefaceReceived) {
      this.shared.deadlines.remove(this.handshakeTimer)
      this.handshakeTimer = undefined
      // Only an effect-micro peer hears anything from us (a wrong preface is closed without an answer).
      this.writer.write(encodeSettings([
        [Setting.MaxConcurrentStreams, this.limits.maxConcurrentStreams],
        [Setting.MaxFrameSize, this.limits.maxFrameSize],
        [Setting.MaxWindow, this.limits.maxWindow]
      ]))
      if (this.refuse) this.goAway()
    }
    // A frame that has started must complete in time: a peer dribbling a large frame, or stalling halfway
    // through one, would otherwise hold its partial buffer (up to maxFrameSize) forever.
    const midFrame = this.decoder.midFrame
    if (midFrame && this.frameTimer === undefined) {
      this.frameTimer = this.shared.deadlines.add(this.limits.frameTimeoutMillis, () => {
        this.frameTimer = undefined
        if (this.decoder.midFrame) this.connection.destroy()
      })
    } else if (!midFrame && this.frameTimer !== undefined) {
      this.shared.deadlines.remove(this.frameTimer)
      this.frameTimer = undefined
    }
  }

  /**
   * One timer per connection, re-armed rather than reset per call (free on the hot path): a connection
   * with no call open and none opened for a whole period is asked to go away, so it closes between one
   * and two `idleTimeout`s after its last call.
   */
  private armIdleTimer(): void {
    this.idleTimer = this.shared.deadlines.add(this.limits.idleTimeoutMillis, () => {
      this.idleTimer = undefined
      if (this.closed || this.goingAway) return
      if (this.calls.size > 0 || this.opened > 0) {
        this.opened = 0
        this.armIdleTimer()
      } else this.goAway()
    })
  }

  private onCongested(): void {
    this.congested = true
    // Stop reading: no new requests are taken from a peer that does not read its replies, so what it can
    // make us buffer is bounded by the calls already running (at most maxConcurrentStreams).
    this.connection.pause()
    this.connection.whenDrained(() => {
      this.congested = false
      if (!this.closed) this.connection.resume()
      const waiters = this.drainWaiters.splice(0)
      for (const waiter of waiters) waiter()
    })
  }

  private clearTimers(): void {
    const deadlines = this.shared.deadlines
    deadlines.remove(this.handshakeTimer)
    deadlines.remove(this.frameTimer)
    deadlines.remove(this.idleTimer)
    deadlines.remove(this.graceTimer)
    this.handshakeTimer =
      this.frameTimer =
      this.idleTimer =
      this.graceTimer =
        undefined
  }

  // ----- FrameHandler -----

  onFrame(type: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FrameType.Open:
        return this.onOpen(streamId, payload)
      case FrameType.Data:
        return this.onData(streamId, payload)
      case FrameType.End: {
        const state = this.calls.get(streamId)
        state?.inbox?.done(Exit.void)
        return
      }
      case FrameType.Cancel:
        return this.onCancel(streamId)
      case FrameType.Credit: {
        const state = this.calls.get(streamId)
        if (state === undefined || payload.byteLength < 4) return
        state.credit += payload.readUInt32BE(0)
        const waiter = state.creditWaiter
        state.creditWaiter = undefined
        waiter?.()
        return
      }
      case FrameType.Ping:
        this.writer.write(encodeBody(FrameType.Pong, streamId, payload))
        return
      case FrameType.Pong:
        if (this.goingAway && !this.goAwayAcked && payload.equals(GOAWAY_ACK)) {
          this.goAwayAcked = true
          this.shared.deadlines.remove(this.graceTimer)
          this.graceTimer = undefined
          this.maybeRetire()
        }
        return
      case FrameType.GoAway:
        return
      default:
        // Unknown frame types are ignored (forward compatibility), as HTTP/2 does.
        return
    }
  }

  onOversized(type: number, streamId: number, length: number): void {
    const error = BadRequest.of(
      `frame of ${length} bytes exceeds the limit of ${this.limits.maxFrameSize}`,
      this.shared.service
    )
    const state = this.calls.get(streamId)
    if (type === FrameType.Open || state !== undefined) {
      this.writeFrameworkError(streamId, state?.compiled, error)
      if (state !== undefined) {
        state.outcome = Outcome.Failed
        this.finish(streamId, state)
        state.job?.interrupt()
      }
    }
  }

  onProtocolError(_detail: string): void {
    this.connection.destroy()
  }

  onFrameDefect(_type: number, streamId: number, defect: unknown): void {
    this.shared.reportDefect(`failed to handle a frame on stream ${streamId}`, defect)
    const state = this.calls.get(streamId)
    if (state !== undefined) {
      this.writeFrameworkError(
        streamId,
        state.compiled,
        InternalServerError.of("failed to handle a frame", this.shared.service)
      )
      state.outcome = Outcome.Failed
      this.finish(streamId, state)
      state.job?.interrupt()
    }
  }

  // ----- calls -----

  private onOpen(streamId: number, payload: Buffer): void {
    const shared = this.shared
    if (this.calls.has(streamId)) {
      return this.writeFrameworkError(
        streamId,
        undefined,
        BadRequest.of(`stream ${streamId} is already open`, shared.service)
      )
    }
    const open = decodeOpen(payload)
    if (open === undefined) {
      return this.writeFrameworkError(streamId, undefined, BadRequest.of("malformed OPEN frame", shared.service))
    }
    if (shared.draining || this.goingAway || this.refuse) {
      // Marked "not started": the one 503 a client may retry for any endpoint.
      return this.writeFrameworkError(
        streamId,
        undefined,
        ServiceUnavailable.of(
          shared.draining
            ? "server is shutting down"
            : this.refuse
            ? "server is at its connection limit"
            : "connection is going away",
          shared.service
        ),
        ErrorKind.NotStarted
      )
    }
    if (this.calls.size >= this.limits.maxConcurrentStreams) {
      // The limit is advertised in SETTINGS; a client that ignores it has its extra calls refused, retryably.
      return this.writeFrameworkError(
        streamId,
        undefined,
        ServiceUnavailable.of(
          `too many concurrent calls on one connection (limit ${this.limits.maxConcurrentStreams})`,
          shared.service
        ),
        ErrorKind.NotStarted
      )
    }
    const route = shared.routes.get(open.header.endpoint)
    if (route === undefined || (open.header.service !== "" && open.header.service !== shared.service)) {
      return this.writeFrameworkError(
        streamId,
        undefined,
        NotFound.of(
          route === undefined
            ? `unknown endpoint "${open.header.endpoint}" on service "${shared.service}"`
            : `service "${open.header.service}" is not served here (this is "${shared.service}")`,
          shared.service
        )
      )
    }
    const codec = shared.codecs.get(open.header.contentType)
    if (Either.isLeft(codec)) return this.writeFrameworkError(streamId, undefined, codec.left)
    const compiled = route.codecs.get(codec.right)
    const shape = route.schemas.shape
    const state: CallState = {
      job: undefined,
      done: false,
      credit: Math.min(open.window, this.limits.maxWindow),
      creditWaiter: undefined,
      inbox: undefined,
      compiled,
      shape,
      received: 0,
      allowed: DEFAULT_WINDOW,
      deadline: undefined,
      stall: undefined,
      stats: undefined,
      startedAt: 0,
      outcome: Outcome.Cancelled,
      failCode: "error"
    }

    let request: unknown
    if (shape === "unary" || shape === "server-stream") {
      const decoded = compiled.request.decode(open.body)
      if (Either.isLeft(decoded)) {
        return this.writeFrameworkError(streamId, compiled, BadRequest.of(decoded.left.detail, shared.service))
      }
      request = decoded.right
    } else {
      state.inbox = new Inbox<unknown>()
      request = this.inboundStream(streamId, state)
    }

    const call: IncomingCall = {
      service: shared.service,
      endpoint: route.name,
      contentType: compiled.contentType,
      metadata: open.header.metadata,
      deadline: open.timeoutMillis > 0 ? Date.now() + open.timeoutMillis : undefined,
      peer: { address: this.connection.remoteAddress, identity: this.connection.peerIdentity }
    }
    let effect = this.runHandler(streamId, state, route, request, open)
    for (let i = shared.wrappers.length - 1; i >= 0; i--) {
      // Middleware is user code running on the socket path: a throw is a defect of this call only.
      try {
        effect = shared.wrappers[i]!(call, effect)
      } catch (defect) {
        effect = Effect.die(defect)
      }
    }

    this.calls.set(streamId, state)
    this.opened++
    state.stats = route.stats
    state.startedAt = performance.now()
    route.stats.start()
    if (open.timeoutMillis > 0) {
      const timeout = open.timeoutMillis
      state.deadline = shared.deadlines.add(timeout, () => {
        if (state.done) return
        state.outcome = Outcome.Failed
        this.writeFrameworkError(
          streamId,
          compiled,
          Timeout.of(`deadline of ${timeout} ms exceeded; handler stopped`, shared.service)
        )
        this.finish(streamId, state)
        state.job?.interrupt()
      })
    }
    // May run (and even finish) the call before returning: `onCallExit` must not need `state.job`.
    state.job = route.pool.run(effect, call, (exit) => this.onCallExit(streamId, state, exit))
  }

  /** The effect that runs one call: handler + reply for unary, the whole stream for streaming replies. */
  private runHandler(
    streamId: number,
    state: CallState,
    route: Route,
    request: unknown,
    _open: OpenFrame
  ): Effect.Effect<unknown, unknown> {
    const shape = route.schemas.shape
    if (shape === "unary" || shape === "client-stream") {
      // Called directly (no suspend) on the hot path; a handler that throws while building its Effect is
      // a defect of that call, not of the connection.
      try {
        const result = route.handler(request, { clientId: this.clientId, headers: _open.header.metadata })
        return (Rpc.isWrapper(result) ? result.value : result) as Effect.Effect<unknown, unknown>
      } catch (defect) {
        return Effect.die(defect)
      }
    }
    return Effect.suspend(() => {
      const raw = route.handler(request, { clientId: this.clientId, headers: _open.header.metadata })
      const result = Rpc.isWrapper(raw) ? raw.value : raw
      const stream: Stream.Stream<unknown, unknown> = Effect.isEffect(result)
        ? Stream.unwrap(
          Effect.map(result as Effect.Effect<Mailbox.ReadonlyMailbox<unknown, unknown>>, Mailbox.toStream)
        )
        : result as Stream.Stream<unknown, unknown>
      return Stream.runForEachChunk(stream, (chunk) => this.sendChunk(streamId, state, chunk))
    })
  }

  /**
   * Writes DATA frames while the peer's credit lasts and the socket keeps up, then waits (backpressure on
   * the handler's stream). A stream that waits longer than `streamIdleTimeout` fails with Timeout: a peer
   * that opens streams and never reads them holds nothing for long.
   */
  private sendChunk(streamId: number, state: CallState, chunk: Chunk.Chunk<unknown>): Effect.Effect<void, unknown> {
    const compiled = state.compiled!
    const items = Chunk.toReadonlyArray(chunk)
    let index = 0
    const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
      while (index < items.length) {
        if (state.done) return Effect.interrupt
        if (state.credit <= 0 || this.congested) return Effect.zipRight(this.waitForPeer(streamId, state), loop)
        const encoded = compiled.response.encode(items[index++])
        if (Either.isLeft(encoded)) {
          return Effect.fail(
            InternalServerError.of(`cannot encode stream item: ${encoded.left.detail}`, this.shared.service)
          )
        }
        state.credit--
        this.writer.writeBody(FrameType.Data, streamId, encoded.right)
      }
      return Effect.void
    })
    return loop
  }

  /** Resumes when the stream has credit and the socket has drained (or the call is over). */
  private waitForPeer(streamId: number, state: CallState): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      // Credit, a drain or cancellation may have come between the caller's check and this registration.
      if ((state.credit > 0 && !this.congested) || state.done) return resume(Effect.void)
      let resumed = false
      const wake = () => {
        if (resumed) return
        if (state.done || (state.credit > 0 && !this.congested)) {
          resumed = true
          state.creditWaiter = undefined
          this.shared.deadlines.remove(state.stall)
          state.stall = undefined
          resume(Effect.void)
        } else if (this.congested) this.drainWaiters.push(wake)
      }
      if (this.congested) this.drainWaiters.push(wake)
      state.creditWaiter = wake
      const limit = this.limits.streamIdleTimeoutMillis
      state.stall = this.shared.deadlines.add(limit, () => {
        state.stall = undefined
        if (state.done) return
        this.writeFrameworkError(
          streamId,
          state.compiled,
          Timeout.of(`the caller took no stream data for ${limit} ms; stream stopped`, this.shared.service)
        )
        state.outcome = Outcome.Failed
        this.finish(streamId, state)
        state.job?.interrupt()
      })
      return Effect.sync(() => {
        state.creditWaiter = undefined
        this.shared.deadlines.remove(state.stall)
        state.stall = undefined
      })
    })
  }

  /** The request Stream handed to client-streaming and bidi handlers; grants credit as it is consumed. */
  private inboundStream(streamId: number, state: CallState): Stream.Stream<unknown> {
    let consumed = 0
    return state.inbox!.stream((size) => {
      consumed += size
      if (consumed >= DEFAULT_WINDOW / 2 && !state.done) {
        state.allowed += consumed
        this.writer.write(encodeU32(FrameType.Credit, streamId, consumed))
        consumed = 0
      }
    })
  }

  private onData(streamId: number, payload: Buffer): void {
    const state = this.calls.get(streamId)
    if (state === undefined || state.inbox === undefined || state.done) return
    const decoded = state.compiled!.request.decode(payload)
    if (Either.isLeft(decoded)) {
      this.writeFrameworkError(streamId, state.compiled, BadRequest.of(decoded.left.detail, this.shared.service))
      state.outcome = Outcome.Failed
      this.finish(streamId, state)
      state.job?.interrupt()
      return
    }
    if (++state.received > state.allowed) {
      // The peer ignored flow control: fail the call rather than buffer without bound.
      this.writeFrameworkError(
        streamId,
        state.compiled,
        BadRequest.of("flow-control window exceeded", this.shared.service)
      )
      state.outcome = Outcome.Failed
      this.finish(streamId, state)
      state.job?.interrupt()
      return
    }
    state.inbox.offer(decoded.right)
  }

  private onCancel(streamId: number): void {
    const state = this.calls.get(streamId)
    if (state === undefined) return
    this.finish(streamId, state)
    state.job?.interrupt()
  }

  private onCallExit(streamId: number, state: CallState, exit: Exit.Exit<unknown, unknown>): void {
    if (state.done) return
    if (Exit.isSuccess(exit)) state.outcome = Outcome.Succeeded
    else {
      // The code is counted by `finish`, before the error frame is written.
      state.outcome = Outcome.Failed
      const failed = Cause.failureOption(exit.cause)
      state.failCode = Option.isSome(failed)
        ? frameworkCode(failed.value) ?? "error"
        : Option.isSome(Cause.dieOption(exit.cause))
        ? "500"
        : "499"
    }
    this.finish(streamId, state)
    const compiled = state.compiled!
    if (Exit.isSuccess(exit)) {
      if (state.shape === "server-stream" || state.shape === "bidi") {
        this.writer.write(encodeEmpty(FrameType.End, streamId))
        return
      }
      const encoded = compiled.response.encode(exit.value)
      if (Either.isRight(encoded)) {
        this.writer.writeBody(FrameType.Reply, streamId, encoded.right)
      } else {
        this.writeFrameworkError(
          streamId,
          compiled,
          InternalServerError.of(`cannot encode reply: ${encoded.left.detail}`, this.shared.service)
        )
      }
      return
    }
    const cause = exit.cause
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure)) {
      const { body, kind } = encodeFailure(compiled, failure.value, this.shared.service)
      this.writer.writeFrame(errorFrame(streamId, kind, body))
      return
    }
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect)) {
      this.writeFrameworkError(
        streamId,
        compiled,
        InternalServerError.of(`handler died: ${describeDefect(defect.value)}`, this.shared.service)
      )
      return
    }
    this.writeFrameworkError(streamId, compiled, StreamClosed.of("handler was interrupted", this.shared.service))
  }

  private finish(streamId: number, state: CallState): void {
    if (state.done) return
    state.done = true
    state.stats?.end(state.outcome, performance.now() - state.startedAt, state.failCode)
    this.calls.delete(streamId)
    this.shared.deadlines.remove(state.deadline)
    this.shared.deadlines.remove(state.stall)
    state.inbox?.done(Exit.void)
    const waiter = state.creditWaiter
    state.creditWaiter = undefined
    waiter?.()
    // Retire after the caller has written this call's last frame (finish runs before the reply is written).
    if (this.goingAway && this.calls.size === 0) queueMicrotask(this.retireIfDone)
  }

  private readonly retireIfDone = (): void => this.maybeRetire()

  private writeFrameworkError(
    streamId: number,
    compiled: CompiledEndpoint | undefined,
    error: MicroError,
    kind: number = ErrorKind.Framework
  ): void {
    const state = this.calls.get(streamId)
    if (state !== undefined && !state.done) state.failCode = String(error.code)
    if (compiled !== undefined) {
      const encoded = encodeFramework(compiled, error)
      this.writer.write(encodeError(streamId, (encoded.kind & ERROR_JSON) | kind, encoded.body))
    } else {
      this.writer.write(encodeError(streamId, kind | ERROR_JSON, encodeFrameworkErrorJson(error)))
    }
  }

  private onConnectionClosed(): void {
    this.closed = true
    this.shared.connectionStats.open--
    this.clearTimers()
    for (const [id, state] of this.calls) {
      this.finish(id, state)
      state.job?.interrupt()
    }
    const waiters = this.drainWaiters.splice(0)
    for (const waiter of waiters) waiter()
  }
}
