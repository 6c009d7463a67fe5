/**
 * One accepted connection on the server: parses frames, routes OPENs to handlers, runs one fiber per
 * call, and writes replies. Plain callbacks around `Runtime.runFork`, because this is the per-request hot
 * path (PERF-NOTES.md: a fiber per request is cheap, a stream pipeline per connection is not).
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRefs from "effect/FiberRefs"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import type { Codecs } from "../Codec.js"
import type { CallShape, EndpointSchemas } from "../Contract.js"
import type { MicroError } from "../Errors.js"
import { BadRequest, InternalServerError, NotFound, ServiceUnavailable, StreamClosed, Timeout } from "../Errors.js"
import type { IncomingCall } from "../Metadata.js"
import { currentCallRef } from "../Metadata.js"
import type { Connection } from "../Transport.js"
import type { DeadlineEntry, DeadlineWheel } from "./deadlines.js"
import type { CompiledEndpoint, EndpointCodecs } from "./endpoint.js"
import { describe, encodeFailure, encodeFramework, encodeFrameworkErrorJson, ERROR_JSON } from "./endpoint.js"
import type { OpenFrame } from "./wire.js"
import {
  BatchWriter,
  DEFAULT_WINDOW,
  decodeOpen,
  encodeBody,
  encodeEmpty,
  encodeError,
  encodeU32,
  ErrorKind,
  FrameDecoder,
  FrameType
} from "./wire.js"

/** A middleware as the server applies it: wraps the effect that runs one call. */
export type ServerWrapper = (
  call: IncomingCall,
  next: Effect.Effect<unknown, unknown>
) => Effect.Effect<unknown, unknown>

export interface Route {
  readonly name: string
  readonly schemas: EndpointSchemas
  readonly codecs: EndpointCodecs
  readonly handler: (payload: unknown, options: { readonly clientId: number; readonly headers: any }) => object
  readonly runtime: Runtime.Runtime<never>
  /** `Runtime.runFork(runtime)`, built once. */
  readonly fork: ReturnType<typeof Runtime.runFork<never>>
}

/** What all connections of one server share. */
export interface ServerShared {
  readonly service: string
  readonly routes: ReadonlyMap<string, Route>
  readonly codecs: Codecs.Service
  readonly wrappers: ReadonlyArray<ServerWrapper>
  readonly maxFrameSize: number
  draining: boolean
  inFlight: number
  /** Called whenever inFlight drops to zero (drain waits on it). */
  onIdle: (() => void) | undefined
  nextClientId: number
  readonly deadlines: DeadlineWheel
}

interface CallState {
  fiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  /** Set when the peer cancelled or went away: no reply is written. */
  done: boolean
  /** Outbound credit (server → client DATA frames). */
  credit: number
  creditWaiter: (() => void) | undefined
  /** Inbound messages for client-streaming and bidi calls. */
  inbox: Mailbox.Mailbox<unknown> | undefined
  compiled: CompiledEndpoint | undefined
  readonly shape: CallShape
  /** Inbound DATA frames received, and how many the window allows so far. */
  received: number
  allowed: number
  deadline: DeadlineEntry | undefined
}

export class ServerConnection {
  private readonly calls = new Map<number, CallState>()
  private readonly writer: BatchWriter
  private readonly decoder: FrameDecoder
  private readonly clientId: number
  private closed = false

  constructor(private readonly shared: ServerShared, private readonly connection: Connection) {
    this.clientId = shared.nextClientId++
    this.writer = new BatchWriter((data) => connection.write(data))
    this.decoder = new FrameDecoder(this, shared.maxFrameSize, true)
    connection.onData((chunk) => this.decoder.push(chunk))
    connection.onClose(() => this.onConnectionClosed())
  }

  /** Stop taking new calls on this connection; calls in flight continue. */
  goAway(): void {
    if (!this.closed) this.writer.write(encodeEmpty(FrameType.GoAway, 0))
  }

  /** Interrupt every call (after the drain deadline) and close. */
  close(): void {
    for (const [id, state] of this.calls) {
      if (!state.done) this.writeFrameworkError(id, state.compiled, ServiceUnavailable.of("server stopped", this.shared.service))
      this.finish(id, state)
      state.fiber?.unsafeInterruptAsFork(FiberId.none)
    }
    this.writer.flush()
    this.connection.close()
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
        state?.inbox?.unsafeDone(Exit.void)
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
      case FrameType.GoAway:
        return
      default:
        // Unknown frame types are ignored (forward compatibility), as HTTP/2 does.
        return
    }
  }

  onOversized(type: number, streamId: number, length: number): void {
    const error = BadRequest.of(
      `frame of ${length} bytes exceeds the limit of ${this.shared.maxFrameSize}`,
      this.shared.service
    )
    const state = this.calls.get(streamId)
    if (type === FrameType.Open || state !== undefined) {
      this.writeFrameworkError(streamId, state?.compiled, error)
      if (state !== undefined) {
        this.finish(streamId, state)
        state.fiber?.unsafeInterruptAsFork(FiberId.none)
      }
    }
  }

  onProtocolError(_detail: string): void {
    this.connection.destroy()
  }

  // ----- calls -----

  private onOpen(streamId: number, payload: Buffer): void {
    const shared = this.shared
    if (this.calls.has(streamId)) {
      return this.writeFrameworkError(streamId, undefined, BadRequest.of(`stream ${streamId} is already open`, shared.service))
    }
    const open = decodeOpen(payload)
    if (open === undefined) {
      return this.writeFrameworkError(streamId, undefined, BadRequest.of("malformed OPEN frame", shared.service))
    }
    if (shared.draining) {
      // Marked "not started": the one 503 a client may retry for any endpoint.
      return this.writeFrameworkError(
        streamId,
        undefined,
        ServiceUnavailable.of("server is shutting down", shared.service),
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
      fiber: undefined,
      done: false,
      credit: open.window,
      creditWaiter: undefined,
      inbox: undefined,
      compiled,
      shape,
      received: 0,
      allowed: DEFAULT_WINDOW,
      deadline: undefined
    }

    let request: unknown
    if (shape === "unary" || shape === "server-stream") {
      const decoded = compiled.request.decode(open.body)
      if (Either.isLeft(decoded)) {
        return this.writeFrameworkError(streamId, compiled, BadRequest.of(decoded.left.detail, shared.service))
      }
      request = decoded.right
    } else {
      state.inbox = Effect.runSync(Mailbox.make<unknown>())
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
    shared.inFlight++
    if (open.timeoutMillis > 0) {
      const timeout = open.timeoutMillis
      state.deadline = shared.deadlines.add(timeout, () => {
        if (state.done) return
        this.writeFrameworkError(
          streamId,
          compiled,
          Timeout.of(`deadline of ${timeout} ms exceeded; handler stopped`, shared.service)
        )
        this.finish(streamId, state)
        state.fiber?.unsafeInterruptAsFork(FiberId.none)
      })
    }
    // The current call is set in the new fiber's refs at fork time (cheaper than Effect.locally).
    const fiber = route.fork(effect, {
      updateRefs: (refs, fiberId) => FiberRefs.updateAs(refs, { fiberId, fiberRef: currentCallRef, value: call })
    })
    state.fiber = fiber
    fiber.addObserver((exit) => this.onCallExit(streamId, state, exit))
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
        ? Stream.unwrap(Effect.map(result as Effect.Effect<Mailbox.ReadonlyMailbox<unknown, unknown>>, Mailbox.toStream))
        : result as Stream.Stream<unknown, unknown>
      return Stream.runForEachChunk(stream, (chunk) => this.sendChunk(streamId, state, chunk))
    })
  }

  /** Writes DATA frames while credit lasts, then waits for CREDIT (backpressure on the handler's stream). */
  private sendChunk(streamId: number, state: CallState, chunk: Chunk.Chunk<unknown>): Effect.Effect<void, unknown> {
    const compiled = state.compiled!
    const items = Chunk.toReadonlyArray(chunk)
    let index = 0
    const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
      while (index < items.length) {
        if (state.done) return Effect.interrupt
        if (state.credit <= 0) {
          return Effect.zipRight(
            Effect.async<void>((resume) => {
              // Credit (or cancellation) may have arrived between the check above and this registration.
              if (state.credit > 0 || state.done) return resume(Effect.void)
              state.creditWaiter = () => resume(Effect.void)
              return Effect.sync(() => {
                state.creditWaiter = undefined
              })
            }),
            loop
          )
        }
        const encoded = compiled.response.encode(items[index++])
        if (Either.isLeft(encoded)) {
          return Effect.fail(InternalServerError.of(`cannot encode stream item: ${encoded.left.detail}`, this.shared.service))
        }
        state.credit--
        this.writer.write(encodeBody(FrameType.Data, streamId, encoded.right))
      }
      return Effect.void
    })
    return loop
  }

  /** The request Stream handed to client-streaming and bidi handlers; grants credit as it is consumed. */
  private inboundStream(streamId: number, state: CallState): Stream.Stream<unknown> {
    let consumed = 0
    return Mailbox.toStream(state.inbox!).pipe(
      Stream.mapChunks((chunk) => {
        consumed += chunk.length
        if (consumed >= DEFAULT_WINDOW / 2 && !state.done) {
          state.allowed += consumed
          this.writer.write(encodeU32(FrameType.Credit, streamId, consumed))
          consumed = 0
        }
        return chunk
      })
    )
  }

  private onData(streamId: number, payload: Buffer): void {
    const state = this.calls.get(streamId)
    if (state === undefined || state.inbox === undefined || state.done) return
    const decoded = state.compiled!.request.decode(payload)
    if (Either.isLeft(decoded)) {
      this.writeFrameworkError(streamId, state.compiled, BadRequest.of(decoded.left.detail, this.shared.service))
      this.finish(streamId, state)
      state.fiber?.unsafeInterruptAsFork(FiberId.none)
      return
    }
    if (++state.received > state.allowed) {
      // The peer ignored flow control: fail the call rather than buffer without bound.
      this.writeFrameworkError(streamId, state.compiled, BadRequest.of("flow-control window exceeded", this.shared.service))
      this.finish(streamId, state)
      state.fiber?.unsafeInterruptAsFork(FiberId.none)
      return
    }
    state.inbox.unsafeOffer(decoded.right)
  }

  private onCancel(streamId: number): void {
    const state = this.calls.get(streamId)
    if (state === undefined) return
    this.finish(streamId, state)
    state.fiber?.unsafeInterruptAsFork(FiberId.none)
  }

  private onCallExit(streamId: number, state: CallState, exit: Exit.Exit<unknown, unknown>): void {
    if (state.done) return
    this.finish(streamId, state)
    const compiled = state.compiled!
    if (Exit.isSuccess(exit)) {
      if (state.shape === "server-stream" || state.shape === "bidi") {
        this.writer.write(encodeEmpty(FrameType.End, streamId))
        return
      }
      const encoded = compiled.response.encode(exit.value)
      if (Either.isRight(encoded)) {
        this.writer.write(encodeBody(FrameType.Reply, streamId, encoded.right))
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
      this.writer.write(encodeError(streamId, kind, body))
      return
    }
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect)) {
      this.writeFrameworkError(
        streamId,
        compiled,
        InternalServerError.of(`handler died: ${describe(defect.value)}`, this.shared.service)
      )
      return
    }
    this.writeFrameworkError(streamId, compiled, StreamClosed.of("handler was interrupted", this.shared.service))
  }

  private finish(streamId: number, state: CallState): void {
    if (state.done) return
    state.done = true
    this.calls.delete(streamId)
    this.shared.deadlines.remove(state.deadline)
    state.inbox?.unsafeDone(Exit.void)
    const waiter = state.creditWaiter
    state.creditWaiter = undefined
    waiter?.()
    const shared = this.shared
    shared.inFlight--
    if (shared.inFlight === 0) shared.onIdle?.()
  }

  private writeFrameworkError(
    streamId: number,
    compiled: CompiledEndpoint | undefined,
    error: MicroError,
    kind: number = ErrorKind.Framework
  ): void {
    if (compiled !== undefined) {
      const encoded = encodeFramework(compiled, error)
      this.writer.write(encodeError(streamId, (encoded.kind & ERROR_JSON) | kind, encoded.body))
    } else {
      this.writer.write(encodeError(streamId, kind | ERROR_JSON, encodeFrameworkErrorJson(error)))
    }
  }

  private onConnectionClosed(): void {
    this.closed = true
    for (const [id, state] of this.calls) {
      this.finish(id, state)
      state.fiber?.unsafeInterruptAsFork(FiberId.none)
    }
  }
}

