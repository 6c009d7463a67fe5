/**
 * Server-sent events (the `text/event-stream` format of the HTML standard) for the dashboard's live views:
 * one event per `event:`/`data:` block, JSON data on one line (JSON.stringify never emits a raw newline), and
 * comment lines as keep-alives so proxies and the browser do not close an idle stream.
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"

const encoder = new TextEncoder()

/** One event, encoded. `retry` (ms) tells EventSource how long to wait before reconnecting. */
export const event = (name: string, data: unknown): Uint8Array =>
  encoder.encode(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`)

const keepAlive = encoder.encode(": keep-alive\n\n")
/** Sent first: how long EventSource waits before it reconnects after the stream ended or broke. */
const retry = encoder.encode("retry: 2000\n\n")

/**
 * `events` as an SSE response, with a keep-alive comment every `heartbeat`; the response ends when `events`
 * ends (the keep-alives stop with it).
 */
export const response = (
  events: Stream.Stream<Uint8Array>,
  heartbeat: Duration.DurationInput
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.stream(
    Stream.concat(
      Stream.make(retry),
      Stream.merge(events, Stream.as(Stream.fromSchedule(Schedule.spaced(heartbeat)), keepAlive), {
        haltStrategy: "left"
      })
    ),
    {
      contentType: "text/event-stream",
      headers: Headers.fromInput({ "cache-control": "no-cache", "x-accel-buffering": "no" })
    }
  )
