/**
 * Server-sent events (the `text/event-stream` format of the HTML standard) for the dashboard's live views:
 * one event per `event:`/`data:` block, JSON data on one line (JSON.stringify never emits a raw newline), and
 * comment lines as keep-alives so proxies and the browser do not close an idle stream.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { ServerClosing } from "../common/serverClosing.js"

const encoder = new TextEncoder()

/** One event, encoded. `retry` (ms) tells EventSource how long to wait before reconnecting. */
export const event = (name: string, data: unknown): Uint8Array =>
  encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

const keepAlive = encoder.encode(": keep-alive\n\n")
/** Sent first: how long EventSource waits before it reconnects after the stream ended or broke. */
const retry = encoder.encode("retry: 2000\n\n")

/**
 * `events` as an SSE response, with a keep-alive comment every `heartbeat`; the response ends when `events`
 * ends (the keep-alives stop with it), or when the server serving it starts to close (`ServerClosing`).
 */
export const response = (
  events: Stream.Stream<Uint8Array>,
  heartbeat: Duration.DurationInput
): Effect.Effect<HttpServerResponse.HttpServerResponse> =>
  Effect.map(ServerClosing, (closing) =>
    HttpServerResponse.stream(
      Stream.concat(
        Stream.make(retry),
        Stream.merge(events, Stream.as(Stream.fromSchedule(Schedule.spaced(heartbeat)), keepAlive), {
          haltStrategy: "left"
        })
      ).pipe(Stream.interruptWhen(closing)),
      {
        contentType: "text/event-stream",
        // `connection: close`: once the stream ends, its socket closes too instead of idling as keep-alive, so a
        // closing server is not left waiting for it.
        headers: Headers.fromInput({ "cache-control": "no-cache", "x-accel-buffering": "no", connection: "close" })
      }
    ))
