/**
 * Reading an HTTP request into a call: the body (bounded), the JSON payload, the deadline and the metadata.
 * Plain functions over the request; the only Effect is the body read.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { IncomingMessage } from "node:http"
import type { ClientOptions } from "../../Client.js"
import type { Failure } from "./errors.js"
import { badRequest, httpError } from "./errors.js"

export const tooLarge = (limit: number): Failure =>
  httpError(413, "Payload Too Large", `request body larger than ${limit} bytes`)

/**
 * The body as text, refused (413) past `limit` bytes: at once when `Content-Length` says so, else as soon as
 * the bytes read pass it. Read straight from Node's request (one listener per request, no Stream).
 */
export const readBody = (
  request: HttpServerRequest.HttpServerRequest,
  limit: number
): Effect.Effect<string, Failure> => {
  const source = (request as unknown as { readonly source?: unknown }).source
  if (!(source instanceof IncomingMessage)) {
    const declared = request.headers["content-length"]
    if (declared !== undefined && Number(declared) > limit) return Effect.fail(tooLarge(limit))
    // Not Node's request (another platform's server): its own reader, with the same limit.
    return Effect.mapError(request.text, () => badRequest("request body could not be read")).pipe(
      Effect.filterOrFail((text) => Buffer.byteLength(text) <= limit, () => tooLarge(limit))
    )
  }
  // Node's own header object: `request.headers` would copy every header.
  const declared = source.headers["content-length"]
  if (declared !== undefined && Number(declared) > limit) return Effect.fail(tooLarge(limit))
  if (source.readableEnded) return Effect.succeed("")
  return Effect.async<string, Failure>((resume) => {
    const cancel = collectBody(
      source,
      limit,
      (failure, text) => resume(failure === undefined ? Effect.succeed(text) : Effect.fail(failure))
    )
    return Effect.sync(cancel)
  })
}

/**
 * Reads a Node request's body as text, calling `done` once: with a `Failure` past `limit` bytes (413) or on a
 * stream error (400). Returns a function that stops listening.
 */
export const collectBody = (
  source: IncomingMessage,
  limit: number,
  done: (failure: Failure | undefined, text: string) => void
): () => void => {
  const chunks: Array<Buffer> = []
  let size = 0
  const cleanup = () => {
    source.off("data", onData)
    source.off("end", onEnd)
    source.off("error", onError)
  }
  function onData(chunk: Buffer) {
    size += chunk.length
    if (size > limit) {
      cleanup()
      done(tooLarge(limit), "")
      return
    }
    chunks.push(chunk)
  }
  function onEnd() {
    cleanup()
    done(undefined, chunks.length === 1 ? chunks[0]!.toString("utf8") : Buffer.concat(chunks).toString("utf8"))
  }
  function onError(error: Error) {
    cleanup()
    done(badRequest(`request body could not be read: ${error.message}`), "")
  }
  source.on("data", onData)
  source.on("end", onEnd)
  source.on("error", onError)
  return cleanup
}

/** Sentinel of a body that is not JSON (no allocation of an Either per request). */
export const invalidJson: unique symbol = Symbol("invalidJson")

/** The JSON payload of a body; an empty body is `{}` (an endpoint without fields). */
export const parseJson = (text: string): unknown => {
  if (text.length === 0) return {}
  try {
    return JSON.parse(text)
  } catch {
    return invalidJson
  }
}

const durationPattern = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/

/** `500ms`, `2s`, `1m` or milliseconds; `undefined` when malformed. */
export const parseTimeout = (text: string): number | undefined => {
  const match = durationPattern.exec(text.trim())
  if (match === null) return undefined
  const value = Number(match[1])
  const unit = match[2]
  const millis = unit === "s" ? value * 1000 : unit === "m" ? value * 60_000 : value
  return millis > 0 ? millis : undefined
}

/** Request headers by lower-case name: the platform's `Headers` or Node's own object (arrays for repeats). */
export type HeaderLookup = { readonly [name: string]: string | ReadonlyArray<string> | undefined }

const headerText = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  value === undefined || typeof value === "string" ? value : value[0]

export interface CallSettings {
  /** Header names (lower case) copied into metadata. */
  readonly metadataHeaders: ReadonlyArray<string>
  readonly forwardAuthorization: boolean
  readonly client: ClientOptions | undefined
  readonly maxTimeoutMillis: number
}

/**
 * The call options of a request: the gateway's defaults, the deadline it asks for (capped) and its metadata.
 * `Failure` for a malformed timeout. `token`: a bearer token from elsewhere (a WebSocket's `access_token`).
 */
export const callOptions = (
  settings: CallSettings,
  headers: HeaderLookup,
  queryTimeout: string | undefined,
  token?: string | undefined
): ClientOptions | undefined | Failure => {
  let metadata: Record<string, string> | undefined
  for (const name of settings.metadataHeaders) {
    const value = headerText(headers[name])
    if (value !== undefined) (metadata ??= {})[name] = value
  }
  if (settings.forwardAuthorization) {
    const authorization = headerText(headers["authorization"]) ?? (token === undefined ? undefined : `Bearer ${token}`)
    if (authorization !== undefined) (metadata ??= {})["authorization"] = authorization
  }
  const timeoutText = headerText(headers["x-micro-timeout"]) ?? queryTimeout
  let timeout: Duration.Duration | undefined
  if (timeoutText !== undefined) {
    const millis = parseTimeout(timeoutText)
    if (millis === undefined) return badRequest(`bad timeout "${timeoutText}" (use 500ms, 2s, 1m or milliseconds)`)
    timeout = Duration.millis(Math.min(millis, settings.maxTimeoutMillis))
  }
  if (metadata === undefined && timeout === undefined) return settings.client
  const base = settings.client
  return {
    ...base,
    ...(timeout === undefined ? {} : { timeout }),
    ...(metadata === undefined
      ? {}
      : { metadata: base?.metadata === undefined ? metadata : { ...base.metadata, ...metadata } })
  }
}

/** The first value of a query parameter. */
export const firstQueryValue = (value: string | ReadonlyArray<string> | undefined): string | undefined =>
  value === undefined ? undefined : typeof value === "string" ? value : value[0]
