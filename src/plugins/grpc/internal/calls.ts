/**
 * One gRPC call on the server: the handler runs as in the native server (same routes, middleware,
 * current call, deadlines from the timing wheel), and its outcome is written to the grpc-js call object.
 * Plain callbacks around `Runtime.runFork`, as internal/rpc/serverConnection.ts, since this is per call.
 *
 * @internal
 */
import * as Rpc from "@effect/rpc/Rpc"
import type * as grpc from "@grpc/grpc-js"
import { Metadata as GrpcMetadata } from "@grpc/grpc-js"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { EndpointSchemas } from "../../../Contract.js"
import type { MicroError } from "../../../Errors.js"
import {
  BadRequest,
  InternalServerError,
  isMicroError,
  ServiceUnavailable,
  StreamClosed,
  Timeout
} from "../../../Errors.js"
import { describeDefect } from "../../../internal/codec/inputLimits.js"
import type { DeadlineEntry, DeadlineWheel } from "../../../internal/rpc/deadlines.js"
import type { CompiledEndpoint } from "../../../internal/rpc/endpoint.js"
import type { HandlerPool, PooledJob } from "../../../internal/rpc/handlerPool.js"
import { Inbox } from "../../../internal/rpc/inbox.js"
import type { ServerWrapper } from "../../../internal/rpc/serverConnection.js"
import type { IncomingCall, Metadata } from "../../../Metadata.js"
import { codeOfFramework, DETAILS_TRAILER, encodeStatus, ENDPOINT_ERROR_CODE, ERROR_KIND_TRAILER } from "./status.js"

/** The content-type handlers see in `IncomingCall` for gRPC calls. */
export const GRPC_CONTENT_TYPE = "application/grpc+proto"

/** Inbound messages buffered for a streaming request before the HTTP/2 stream is paused (flow control). */
const INBOX_HIGH_WATER = 32

/** One endpoint as served over gRPC. */
export interface GrpcRoute {
  /** The Rpc's tag (what handlers, middleware and metadata name). */
  readonly tag: string
  /** The `.proto` method name. */
  readonly method: string
  readonly schemas: EndpointSchemas
  readonly compiled: CompiledEndpoint
  readonly handler: (payload: unknown, options: { readonly clientId: number; readonly headers: any }) => object
  /** Fibers that run this endpoint's calls, with `currentCallRef` set per call. */
  readonly pool: HandlerPool<IncomingCall | undefined>
  /** `type_url` of the endpoint's error message, when it has errors. */
  readonly errorUrl: string | undefined
}

/** What every call of one gRPC server shares. */
export interface GrpcShared {
  readonly service: string
  readonly wrappers: ReadonlyArray<ServerWrapper>
  readonly deadlines: DeadlineWheel
  /** `type_url` of `MicroError`. */
  readonly frameworkUrl: string
  /** Calls running, for the graceful stop. */
  readonly running: Set<RunningCall>
  /** Called when `running` becomes empty. */
  onIdle: (() => void) | undefined
  draining: boolean
}

/** Keys grpc-js or HTTP/2 own, not forwarded to handlers as metadata. */
const reserved = (key: string): boolean =>
  key.startsWith(":") || key.startsWith("grpc-") || key === "content-type" || key === "te"

/** gRPC request metadata as effect-micro metadata (binary `-bin` values as base64). */
export const fromGrpcMetadata = (metadata: grpc.Metadata): Metadata => {
  const map = metadata.getMap()
  const out: Record<string, string> = {}
  for (const key in map) {
    if (reserved(key)) continue
    const value = map[key]!
    out[key] = typeof value === "string" ? value : value.toString("base64")
  }
  return out
}

/** A failure as the status object grpc-js sends (code, message, and the typed error in the details trailer). */
export const statusOf = (
  shared: GrpcShared,
  route: GrpcRoute,
  failure: unknown
): grpc.StatusObject => {
  const compiled = route.compiled
  if (route.errorUrl !== undefined && compiled.isEndpointError(failure)) {
    const encoded = compiled.error.encode(failure)
    if (Either.isRight(encoded)) {
      // A framework error the contract declares (e.g. `error: Errors.Unauthorized`) keeps its status code.
      if (isMicroError(failure)) {
        return withDetails(codeOfFramework(failure), failure.detail, "endpoint", route.errorUrl, encoded.right)
      }
      const tag = (failure as { readonly _tag?: unknown })._tag
      const message = typeof tag === "string" ? tag : "endpoint error"
      return withDetails(ENDPOINT_ERROR_CODE, message, "endpoint", route.errorUrl, encoded.right)
    }
    return frameworkStatus(
      shared,
      compiled,
      InternalServerError.of(`cannot encode endpoint error: ${encoded.left.detail}`, shared.service)
    )
  }
  if (isMicroError(failure)) return frameworkStatus(shared, compiled, failure)
  return frameworkStatus(
    shared,
    compiled,
    InternalServerError.of(`unexpected failure: ${describeDefect(failure)}`, shared.service)
  )
}

export const frameworkStatus = (
  shared: GrpcShared,
  compiled: CompiledEndpoint,
  error: MicroError,
  /** `not-started`: the handler never ran (the client may retry any endpoint elsewhere). */
  kind: "framework" | "not-started" = "framework"
): grpc.StatusObject => {
  const code = codeOfFramework(error)
  const encoded = compiled.framework.encode(error)
  if (Either.isLeft(encoded)) return { code, details: error.detail, metadata: new GrpcMetadata() }
  return withDetails(code, error.detail, kind, shared.frameworkUrl, encoded.right)
}

const withDetails = (
  code: number,
  message: string,
  kind: "endpoint" | "framework" | "not-started",
  url: string,
  value: Uint8Array
): grpc.StatusObject => {
  const metadata = new GrpcMetadata()
  metadata.set(DETAILS_TRAILER, encodeStatus(code, message, url, value))
  metadata.set(ERROR_KIND_TRAILER, kind)
  return { code, details: message, metadata }
}

/** A status as the error object grpc-js's callbacks and `emit("error")` take. */
const asError = (status: grpc.StatusObject): grpc.ServerErrorResponse =>
  Object.assign(new Error(status.details), { code: status.code, details: status.details, metadata: status.metadata })

type AnyCall =
  | grpc.ServerUnaryCall<Buffer, Uint8Array>
  | grpc.ServerReadableStream<Buffer, Uint8Array>
  | grpc.ServerWritableStream<Buffer, Uint8Array>
  | grpc.ServerDuplexStream<Buffer, Uint8Array>

/** Epoch millis of a call's deadline, undefined when it has none. */
const deadlineOf = (call: AnyCall): number | undefined => {
  const deadline = call.getDeadline()
  const millis = deadline instanceof Date ? deadline.getTime() : deadline
  return Number.isFinite(millis) ? millis : undefined
}

/**
 * A call in flight: its handler's job, deadline and how its outcome is written. `settle` writes the outcome
 * once; later outcomes (the handler's exit after a deadline or a cancel) are dropped.
 */
export class RunningCall {
  job: PooledJob | undefined = undefined
  done = false
  deadline: DeadlineEntry | undefined = undefined
  inbox: Inbox<unknown> | undefined = undefined

  constructor(
    readonly shared: GrpcShared,
    readonly route: GrpcRoute,
    readonly call: AnyCall,
    /** Writes a success (unary reply, or the end of a reply stream). */
    private readonly succeed: (value: unknown) => void,
    /** Writes a failure status. */
    private readonly failWith: (status: grpc.StatusObject) => void
  ) {}

  /** Stops the call with `error` (written at once) and interrupts its handler. */
  abort(error: MicroError): void {
    if (this.done) return
    this.settle(Exit.fail(error))
    this.job?.interrupt()
  }

  settle(exit: Exit.Exit<unknown, unknown>): void {
    if (this.done) return
    this.finish()
    if (Exit.isSuccess(exit)) return this.succeed(exit.value)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isSome(failure)) return this.failWith(statusOf(this.shared, this.route, failure.value))
    const defect = Cause.dieOption(exit.cause)
    const error = Option.isSome(defect)
      ? InternalServerError.of(`handler died: ${describeDefect(defect.value)}`, this.shared.service)
      : StreamClosed.of("handler was interrupted", this.shared.service)
    this.failWith(frameworkStatus(this.shared, this.route.compiled, error))
  }

  /** Forgets the call (its outcome has been written, or the peer is gone). */
  finish(): void {
    if (this.done) return
    this.done = true
    this.shared.deadlines.remove(this.deadline)
    this.deadline = undefined
    this.inbox?.done(Exit.void)
    const running = this.shared.running
    running.delete(this)
    if (running.size === 0) this.shared.onIdle?.()
  }
}

/** The handler's effect for `request`, wrapped in the server's middleware. */
const handlerEffect = (
  shared: GrpcShared,
  route: GrpcRoute,
  incoming: IncomingCall,
  request: unknown,
  toStream: ((stream: Stream.Stream<unknown, unknown>) => Effect.Effect<unknown, unknown>) | undefined
): Effect.Effect<unknown, unknown> => {
  let effect: Effect.Effect<unknown, unknown>
  if (toStream === undefined) {
    try {
      const result = route.handler(request, { clientId: 0, headers: incoming.metadata })
      effect = (Rpc.isWrapper(result) ? result.value : result) as Effect.Effect<unknown, unknown>
    } catch (defect) {
      effect = Effect.die(defect)
    }
  } else {
    effect = Effect.suspend(() => {
      const raw = route.handler(request, { clientId: 0, headers: incoming.metadata })
      const result = Rpc.isWrapper(raw) ? raw.value : raw
      return toStream(
        Effect.isEffect(result)
          ? Stream.unwrap(
            Effect.map(result as Effect.Effect<Mailbox.ReadonlyMailbox<unknown, unknown>>, Mailbox.toStream)
          )
          : result as Stream.Stream<unknown, unknown>
      )
    })
  }
  for (let i = shared.wrappers.length - 1; i >= 0; i--) {
    try {
      effect = shared.wrappers[i]!(incoming, effect)
    } catch (defect) {
      effect = Effect.die(defect)
    }
  }
  return effect
}

/** Starts `running`'s handler: deadline, cancellation, the current call, and the exit observer. */
const start = (
  running: RunningCall,
  request: unknown,
  toStream: ((stream: Stream.Stream<unknown, unknown>) => Effect.Effect<unknown, unknown>) | undefined
): void => {
  const { call, route, shared } = running
  const deadline = deadlineOf(call)
  const incoming: IncomingCall = {
    service: shared.service,
    endpoint: route.tag,
    contentType: GRPC_CONTENT_TYPE,
    metadata: fromGrpcMetadata(call.metadata),
    deadline,
    peer: { address: call.getPeer(), identity: undefined }
  }
  shared.running.add(running)
  if (deadline !== undefined) {
    const timeout = Math.max(0, deadline - Date.now())
    running.deadline = shared.deadlines.add(timeout, () => {
      running.deadline = undefined
      running.abort(Timeout.of(`deadline of ${timeout} ms exceeded; handler stopped`, shared.service))
    })
  }
  // The peer cancelled (or the deadline grpc-js enforces passed): stop the handler, write nothing. grpc-js
  // 1.14 also emits `cancelled` after every call it sent a status for: then the handler is over already, and
  // interrupting its finished fiber would only schedule work for nothing (≈8 µs of server CPU per unary call).
  const emitter: NodeJS.EventEmitter = call
  emitter.on("cancelled", () => {
    if (running.done) return
    running.finish()
    running.job?.interrupt()
  })
  running.job = route.pool.run(
    handlerEffect(shared, route, incoming, request, toStream),
    incoming,
    (exit) => running.settle(exit)
  )
}

/** Refuses a call on a draining server: UNAVAILABLE, safe to retry elsewhere. */
const refuseIfDraining = (shared: GrpcShared, route: GrpcRoute, fail: (status: grpc.StatusObject) => void): boolean => {
  if (!shared.draining) return false
  fail(
    frameworkStatus(
      shared,
      route.compiled,
      ServiceUnavailable.of("server is shutting down", shared.service),
      "not-started"
    )
  )
  return true
}

/** Decodes one request message; a malformed one fails the call with INVALID_ARGUMENT. */
const decodeRequest = (route: GrpcRoute, shared: GrpcShared, bytes: Buffer): Either.Either<unknown, MicroError> => {
  const decoded = route.compiled.request.decode(bytes)
  return Either.isRight(decoded) ? decoded : Either.left(BadRequest.of(decoded.left.detail, shared.service))
}

/**
 * Unsent reply bytes per call above which a reply stream waits for grpc-js to take them. grpc-js's own
 * `write() === false` (16 messages in its object-mode buffer) is too early: waiting for `drain` there left the
 * stream idle between bursts (measured: a fifth of the throughput of an unbounded grpc-js echo).
 */
const WRITE_HIGH_WATER = 256 * 1024

/**
 * Writes a reply stream's items as gRPC messages, waiting while more than `WRITE_HIGH_WATER` bytes are unsent.
 * grpc-js completes writes in order, so one completion callback per run of writes (the last of a chunk, or
 * the one that crosses the high-water mark) accounts for the bytes of the whole run.
 */
const writeItems = (
  running: RunningCall,
  call: grpc.ServerWritableStream<Buffer, Uint8Array> | grpc.ServerDuplexStream<Buffer, Uint8Array>
) =>
(stream: Stream.Stream<unknown, unknown>): Effect.Effect<unknown, unknown> => {
  let pending = 0
  let waiter: (() => void) | undefined
  const written = (bytes: number) => () => {
    pending -= bytes
    if (waiter !== undefined && pending <= WRITE_HIGH_WATER / 2) {
      const wake = waiter
      waiter = undefined
      wake()
    }
  }
  const drained = Effect.async<void>((resume) => {
    if (pending <= WRITE_HIGH_WATER / 2 || running.done) return resume(Effect.void)
    waiter = () => resume(Effect.void)
    return Effect.sync(() => {
      waiter = undefined
    })
  })
  return Stream.runForEachChunk(stream, (chunk) => {
    const items = Chunk.toReadonlyArray(chunk)
    let index = 0
    const loop: Effect.Effect<void, unknown> = Effect.suspend(() => {
      // Bytes written since the last write with a completion callback (0 whenever `pending` is above the mark).
      let run = 0
      while (index < items.length) {
        if (running.done) return Effect.interrupt
        if (pending > WRITE_HIGH_WATER) return Effect.zipRight(drained, loop)
        const encoded = running.route.compiled.response.encode(items[index++])
        if (Either.isLeft(encoded)) {
          return Effect.fail(
            InternalServerError.of(`cannot encode stream item: ${encoded.left.detail}`, running.shared.service)
          )
        }
        const bytes = encoded.right.byteLength
        pending += bytes
        run += bytes
        if (index === items.length || pending > WRITE_HIGH_WATER) {
          call.write(encoded.right, written(run))
          run = 0
        } else call.write(encoded.right)
      }
      return Effect.void
    })
    return loop
  })
}

/**
 * The request Stream of client-streaming and bidi calls, pausing the HTTP/2 stream while the handler lags.
 * Its reader wakes at `setImmediate` rather than in a microtask: grpc-js hands over request messages one per
 * tick (a promise and a `nextTick` each), so a microtask wake-up ran the handler's Stream pipeline once per
 * message; at `setImmediate`, the messages of one socket read arrive as one chunk (bench `grpc`, bidi at 64
 * in flight: chunks of 1 before).
 */
const inboundStream = (
  running: RunningCall,
  call: grpc.ServerReadableStream<Buffer, Uint8Array> | grpc.ServerDuplexStream<Buffer, Uint8Array>
): Stream.Stream<unknown> => {
  const inbox = new Inbox<unknown>("immediate")
  running.inbox = inbox
  let buffered = 0
  let paused = false
  call.on("data", (bytes: Buffer) => {
    if (running.done) return
    const decoded = decodeRequest(running.route, running.shared, bytes)
    if (Either.isLeft(decoded)) return running.abort(decoded.left)
    inbox.offer(decoded.right)
    if (++buffered >= INBOX_HIGH_WATER && !paused) {
      paused = true
      call.pause()
    }
  })
  call.on("end", () => inbox.done(Exit.void))
  return inbox.stream((size) => {
    buffered -= size
    if (paused && buffered < INBOX_HIGH_WATER / 2) {
      paused = false
      call.resume()
    }
  })
}

/** The grpc-js handler of one endpoint, by call shape. */
export const grpcHandler = (shared: GrpcShared, route: GrpcRoute): grpc.UntypedHandleCall => {
  switch (route.schemas.shape) {
    case "unary":
      return (call: grpc.ServerUnaryCall<Buffer, Uint8Array>, callback: grpc.sendUnaryData<Uint8Array>) => {
        const fail = (status: grpc.StatusObject) => callback(asError(status), null)
        if (refuseIfDraining(shared, route, fail)) return
        const request = decodeRequest(route, shared, call.request)
        if (Either.isLeft(request)) return fail(frameworkStatus(shared, route.compiled, request.left))
        const running = new RunningCall(shared, route, call, (value) => {
          const encoded = route.compiled.response.encode(value)
          if (Either.isRight(encoded)) callback(null, encoded.right)
          else {
            fail(frameworkStatus(
              shared,
              route.compiled,
              InternalServerError.of(`cannot encode reply: ${encoded.left.detail}`, shared.service)
            ))
          }
        }, fail)
        start(running, request.right, undefined)
      }
    case "client-stream":
      return (call: grpc.ServerReadableStream<Buffer, Uint8Array>, callback: grpc.sendUnaryData<Uint8Array>) => {
        const fail = (status: grpc.StatusObject) => callback(asError(status), null)
        if (refuseIfDraining(shared, route, fail)) return
        const running = new RunningCall(shared, route, call, (value) => {
          const encoded = route.compiled.response.encode(value)
          if (Either.isRight(encoded)) callback(null, encoded.right)
          else {
            fail(frameworkStatus(
              shared,
              route.compiled,
              InternalServerError.of(`cannot encode reply: ${encoded.left.detail}`, shared.service)
            ))
          }
        }, fail)
        start(running, inboundStream(running, call), undefined)
      }
    case "server-stream":
      return (call: grpc.ServerWritableStream<Buffer, Uint8Array>) => {
        const fail = (status: grpc.StatusObject) => {
          call.emit("error", asError(status))
        }
        if (refuseIfDraining(shared, route, fail)) return
        const request = decodeRequest(route, shared, call.request)
        if (Either.isLeft(request)) return fail(frameworkStatus(shared, route.compiled, request.left))
        const running = new RunningCall(shared, route, call, () => call.end(), fail)
        start(running, request.right, writeItems(running, call))
      }
    case "bidi":
      return (call: grpc.ServerDuplexStream<Buffer, Uint8Array>) => {
        const fail = (status: grpc.StatusObject) => {
          call.emit("error", asError(status))
        }
        if (refuseIfDraining(shared, route, fail)) return
        const running = new RunningCall(shared, route, call, () => call.end(), fail)
        start(running, inboundStream(running, call), writeItems(running, call))
      }
  }
}
