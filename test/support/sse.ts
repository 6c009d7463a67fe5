/**
 * A server-sent events client for tests (fetch + the text/event-stream format): every event parsed and kept,
 * and a bounded wait for the next one that matches.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

export interface ServerEvent {
  readonly event: string
  readonly data: unknown
}

export interface EventStream {
  readonly status: number
  readonly contentType: string | null
  /** Every event so far. */
  readonly events: Array<ServerEvent>
  /** The first event (seen so far or to come) after index `from` that matches, within `timeoutMillis`. */
  readonly next: (
    predicate: (event: ServerEvent) => boolean,
    options?: { readonly from?: number; readonly timeoutMillis?: number }
  ) => Effect.Effect<ServerEvent, Error>
  /** Whether the server ended the stream. */
  readonly ended: () => boolean
  /** Closes the connection (as a browser leaving the page). */
  readonly close: Effect.Effect<void>
}

const parse = (block: string): ServerEvent | undefined => {
  let event = "message"
  const data: Array<string> = []
  for (const line of block.split("\n")) {
    if (line.startsWith(":") || line === "") continue
    const colon = line.indexOf(":")
    const field = colon === -1 ? line : line.slice(0, colon)
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "")
    if (field === "event") event = value
    else if (field === "data") data.push(value)
  }
  if (data.length === 0) return undefined
  return { event, data: JSON.parse(data.join("\n")) }
}

/** Opens `url` as an event stream; closed with the scope. */
export const open = (url: string): Effect.Effect<EventStream, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const abort = new AbortController()
        const response = await fetch(url, { signal: abort.signal, headers: { accept: "text/event-stream" } })
        const events: Array<ServerEvent> = []
        const listeners = new Set<() => void>()
        let done = false
        let reader: ReadableStreamDefaultReader<string> | undefined
        if (response.ok && response.body) {
          reader = response.body.pipeThrough(new TextDecoderStream()).getReader()
          const stream = reader
          void (async () => {
            let buffered = ""
            try {
              for (;;) {
                const { done: finished, value } = await stream.read()
                if (finished) break
                buffered += value
                let end: number
                while ((end = buffered.indexOf("\n\n")) !== -1) {
                  const parsed = parse(buffered.slice(0, end))
                  buffered = buffered.slice(end + 2)
                  if (parsed) events.push(parsed)
                }
                for (const listener of listeners) listener()
              }
            } catch {
              // aborted
            }
            done = true
            for (const listener of listeners) listener()
          })()
        } else {
          done = true
          await response.body?.cancel()
        }
        const next: EventStream["next"] = (predicate, options) =>
          Effect.async<ServerEvent, Error>((resume) => {
            const from = options?.from ?? 0
            const check = () => {
              const found = events.slice(from).find(predicate)
              if (found !== undefined) {
                cleanup()
                resume(Effect.succeed(found))
              } else if (done) {
                cleanup()
                resume(Effect.fail(new Error(`event stream ended; got ${JSON.stringify(events).slice(0, 2000)}`)))
              }
            }
            const timer = setTimeout(() => {
              cleanup()
              resume(Effect.fail(new Error(`no matching event in time; got ${JSON.stringify(events).slice(0, 2000)}`)))
            }, options?.timeoutMillis ?? 10_000)
            const cleanup = () => {
              clearTimeout(timer)
              listeners.delete(check)
            }
            listeners.add(check)
            check()
            return Effect.sync(cleanup)
          })
        return {
          status: response.status,
          contentType: response.headers.get("content-type"),
          events,
          next,
          ended: () => done,
          // Cancelling the reader closes the connection even when nothing was read yet (an abort alone may not).
          close: Effect.promise(async () => {
            await reader?.cancel().catch(() => {})
            abort.abort()
          })
        } satisfies EventStream
      },
      catch: (error) => error as Error
    }),
    (stream) => stream.close
  )
