/**
 * Streamed replies over HTTP and calls over WebSocket.
 *
 * - SSE (`text/event-stream`): one `data: <json>` event per message; a failure ends the stream with
 *   `event: error` whose data is the error body (see errors.ts) — the HTTP status is already 200 by then.
 * - NDJSON (`application/x-ndjson`): one JSON value per line; a failure ends it with `{"$error": <body>}`.
 * - WebSocket: one JSON message per text frame both ways. For streaming input, an empty text frame ends the
 *   client's side (half-close: no JSON text is empty); unary and server-stream calls take the first frame as
 *   the payload. The server closes with 1000 when the call completed, or sends the error body as a last frame
 *   and closes with 4000 + the HTTP status (4422, 4404, 4503 …) and the error's `_tag` as the reason. A client
 *   that closes first cancels the call.
 *
 * When the gateway starts to close (`closing`), open streams and sockets end at once instead of holding its
 * shutdown: SSE and NDJSON with their error event / line for 503 `ServiceUnavailable` ("the gateway is shutting
 * down"), a WebSocket with that error frame and close code 1001 (going away). The calls are cancelled.
 */
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Socket from "@effect/platform/Socket"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { badRequest, Failure, httpError, shuttingDown } from "./errors.js"
import { invalidJson, parseJson } from "./request.js"

const encoder = new TextEncoder()

const sseHeaders = { "cache-control": "no-cache", "x-accel-buffering": "no" }

const ping = encoder.encode(": ping\n\n")

/**
 * Replies as Server-Sent Events. Every `heartbeatMillis` (0: never) an SSE comment (`: ping`) goes out, so
 * proxies that close quiet connections keep a slow stream open; clients ignore comments.
 */
export const sse = (
  replies: Stream.Stream<unknown, unknown>,
  failure: (error: unknown) => Failure,
  heartbeatMillis: number,
  closing: Effect.Effect<void>
): HttpServerResponse.HttpServerResponse => {
  const events = untilClosing(replies, closing).pipe(
    Stream.map((value) => encoder.encode(`data: ${JSON.stringify(value) ?? "null"}\n\n`)),
    Stream.catchAll((error) =>
      Stream.succeed(encoder.encode(`event: error\ndata: ${JSON.stringify(asFailure(error, failure).body)}\n\n`))
    )
  )
  return HttpServerResponse.stream(
    heartbeatMillis > 0
      ? Stream.merge(
        events,
        Stream.tick(Duration.millis(heartbeatMillis)).pipe(Stream.drop(1), Stream.as(ping)),
        { haltStrategy: "left" }
      )
      : events,
    { contentType: "text/event-stream", headers: sseHeaders }
  )
}

/** Replies as newline-delimited JSON. */
export const ndjson = (
  replies: Stream.Stream<unknown, unknown>,
  failure: (error: unknown) => Failure,
  closing: Effect.Effect<void>
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    untilClosing(replies, closing).pipe(
      Stream.map((value) => encoder.encode(`${JSON.stringify(value) ?? "null"}\n`)),
      Stream.catchAll((error) =>
        Stream.succeed(encoder.encode(`${JSON.stringify({ $error: asFailure(error, failure).body })}\n`))
      )
    ),
    { contentType: "application/x-ndjson", headers: { "cache-control": "no-cache" } }
  )

/** The replies, failing with `shuttingDown` (and cancelling the call) once `closing` completes. */
const untilClosing = (replies: Stream.Stream<unknown, unknown>, closing: Effect.Effect<void>) =>
  Stream.interruptWhen(replies, Effect.zipRight(closing, Effect.fail(shuttingDown())))

const asFailure = (error: unknown, failure: (error: unknown) => Failure): Failure =>
  error instanceof Failure ? error : failure(error)

/** Whether the client asked for NDJSON rather than SSE. */
export const wantsNdjson = (accept: string | undefined): boolean =>
  accept !== undefined && accept.includes("application/x-ndjson")

/** What a WebSocket call does with the client's messages. */
export type WebSocketCall =
  /** Unary and server-stream: the first message is the payload. */
  | { readonly input: "single"; readonly run: (payload: unknown) => Stream.Stream<unknown, unknown> }
  /** Client-stream and bidi: every message until the half-close. */
  | { readonly input: "stream"; readonly run: (input: Stream.Stream<unknown>) => Stream.Stream<unknown, unknown> }

const closeFor = (failure: Failure): Socket.CloseEvent => {
  const tag = (failure.body as { _tag?: unknown } | null)?._tag
  return new Socket.CloseEvent(4000 + failure.status, typeof tag === "string" ? tag.slice(0, 120) : "error")
}

/**
 * Runs a call over an upgraded socket until the call ends or the client goes away (which cancels it).
 * Client messages wait in a buffer of `maxPending`; a client that outruns the service past it is closed (1008).
 */
export const runWebSocket = (
  socket: Socket.Socket,
  call: WebSocketCall,
  failure: (error: unknown) => Failure,
  maxPending: number,
  closing: Effect.Effect<void>
): Effect.Effect<void, never> =>
  Effect.scoped(
    Effect.gen(function*() {
      const write = yield* socket.writer
      const inbox = yield* Mailbox.make<unknown, Failure>()
      let overflow = false
      let received = 0
      const onMessage = (data: string | Uint8Array): void => {
        // A unary or server-stream call takes one message; later ones are ignored.
        if (call.input === "single" && received > 0) return
        received++
        const text = typeof data === "string" ? data : Buffer.from(data).toString("utf8")
        if (text.length === 0) {
          inbox.unsafeDone(Exit.void)
          return
        }
        const value = parseJson(text)
        if (value === invalidJson) {
          inbox.unsafeDone(Exit.fail(badRequest("a WebSocket message is not JSON")))
          return
        }
        if (Option.getOrElse(inbox.unsafeSize(), () => 0) >= maxPending) {
          overflow = true
          inbox.unsafeDone(
            Exit.fail(httpError(429, "Too Many Messages", `more than ${maxPending} messages waiting for the service`))
          )
          return
        }
        inbox.unsafeOffer(value)
      }
      const replies: Stream.Stream<unknown, unknown> = call.input === "single"
        ? Stream.unwrap(
          Effect.map(
            Effect.catchTag(inbox.take, "NoSuchElementException", () =>
              Effect.fail(badRequest("the WebSocket ended before the request message"))),
            call.run
          )
        )
        // Failed input never ends the input stream: `inputFailure` below ends the call with the failure.
        : call.run(
          Mailbox.toStream(inbox).pipe(Stream.catchAll(() =>
            Stream.never
          ))
        )
      // An input failure (bad JSON, overflow) ends the call with that failure, not the service's answer.
      const inputFailure = Effect.flatMap(inbox.await, () => Effect.never)
      let closed = false
      const gatewayClosing = Effect.zipRight(
        closing,
        Effect.suspend(() => {
          closed = true
          return Effect.fail(shuttingDown())
        })
      )
      const session = Stream.runForEach(replies, (value) => write(JSON.stringify(value) ?? "null")).pipe(
        Effect.raceFirst(Effect.catchAll(inputFailure, Effect.fail)),
        Effect.raceFirst(gatewayClosing),
        Effect.matchEffect({
          onSuccess: () => write(new Socket.CloseEvent(1000)),
          onFailure: (error) => {
            const answer = asFailure(error, failure)
            return Effect.zipRight(
              write(JSON.stringify(answer.body)),
              write(
                overflow
                  ? new Socket.CloseEvent(1008, "too many messages")
                  : closed
                  ? new Socket.CloseEvent(1001, "gateway shutting down")
                  : closeFor(answer)
              )
            )
          }
        }),
        Effect.ignore
      )
      // The socket's reader ends when the client closes (or after our close): the call is then cancelled.
      yield* Effect.raceFirst(session, Effect.ignore(socket.runRaw(onMessage)))
    })
  )
