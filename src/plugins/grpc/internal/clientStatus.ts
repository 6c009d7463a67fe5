/**
 * What the gRPC client puts in request headers and reads from responses: metadata as gRPC headers,
 * `grpc-timeout`, and a call's status (trailers, HTTP status, stream reset) as the client's error callbacks.
 *
 * @internal
 */
import * as http2 from "node:http2"
import { BadRequest } from "../../../Errors.js"
import type { CallHandlers } from "../../../internal/rpc/clientConnection.js"
import { encodeFrameworkErrorJson, ERROR_JSON } from "../../../internal/rpc/endpoint.js"
import { ErrorKind } from "../../../internal/rpc/wire.js"
import type { Metadata } from "../../../Metadata.js"
import { Code, decodeStatusDetails, DETAILS_TRAILER, ERROR_KIND_TRAILER, frameworkOfCode } from "./status.js"

const { NGHTTP2_CANCEL, NGHTTP2_ENHANCE_YOUR_CALM, NGHTTP2_INADEQUATE_SECURITY } = http2.constants

/** Largest `grpc-timeout` value (at most 8 digits). */
const MAX_TIMEOUT_VALUE = 99_999_999
export const USER_AGENT = "effect-micro-grpc/0.1"

/** Metadata keys gRPC allows (lowercase); values of other keys must be printable ASCII. */
const LEGAL_KEY = /^[0-9a-z_.-]+$/
const LEGAL_VALUE = /^[\x20-\x7e]*$/
/** Headers this connection writes itself. */
const OWN_HEADERS = new Set([
  "content-type",
  "te",
  "user-agent",
  "grpc-timeout",
  "grpc-encoding",
  "grpc-accept-encoding"
])

/**
 * effect-micro metadata as gRPC request headers (keys lowercased; `-bin` values are already base64, as on
 * the wire). Returns a message naming the first key gRPC cannot carry.
 */
export const toGrpcHeaders = (metadata: Metadata): Record<string, string> | string => {
  const out: Record<string, string> = {}
  for (const key in metadata) {
    const name = key.toLowerCase()
    const value = metadata[key]!
    if (!LEGAL_KEY.test(name) || OWN_HEADERS.has(name) || (!name.endsWith("-bin") && !LEGAL_VALUE.test(value))) {
      return `metadata key "${key.slice(0, 64)}" (or its value) cannot be sent as gRPC metadata`
    }
    out[name] = value
  }
  return out
}

/** `grpc-timeout` for a timeout in milliseconds (milliseconds while they fit in 8 digits, else seconds). */
export const grpcTimeout = (millis: number): string =>
  millis <= MAX_TIMEOUT_VALUE ? `${Math.ceil(millis)}m` : `${Math.min(MAX_TIMEOUT_VALUE, Math.ceil(millis / 1000))}S`

/** `grpc-message` is percent-encoded. */
export const decodeGrpcMessage = (raw: string | Array<string> | undefined): string => {
  const value = Array.isArray(raw) ? raw.join(",") : raw ?? ""
  if (!value.includes("%")) return value
  try {
    return decodeURIComponent(value)
  } catch {
    return value
  }
}

export const firstString = (value: string | Array<string> | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value

/** The gRPC code of an HTTP response status without a gRPC status (the spec's table). */
export const codeOfHttpStatus = (status: number): number => {
  switch (status) {
    case 400:
      return Code.INTERNAL
    case 401:
      return Code.UNAUTHENTICATED
    case 403:
      return Code.PERMISSION_DENIED
    case 404:
      return Code.UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE
    default:
      return Code.UNKNOWN
  }
}

/** The gRPC code of a stream reset by the server without a status (as grpc-js maps them). */
export const codeOfReset = (rstCode: number): number => {
  switch (rstCode) {
    case NGHTTP2_CANCEL:
      return Code.CANCELLED
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return Code.RESOURCE_EXHAUSTED
    case NGHTTP2_INADEQUATE_SECURITY:
      return Code.PERMISSION_DENIED
    default:
      return Code.INTERNAL
  }
}

/** A status as the client's error callbacks: the typed error from our details trailer, else by code. */
export const deliverStatus = (
  address: string,
  handlers: CallHandlers,
  code: number,
  message: string,
  trailers: http2.IncomingHttpHeaders | undefined
): void => {
  const kind = firstString(trailers?.[ERROR_KIND_TRAILER])
  const details = firstString(trailers?.[DETAILS_TRAILER])
  if ((kind === "endpoint" || kind === "framework" || kind === "not-started") && details !== undefined) {
    const value = decodeStatusDetails(Buffer.from(details, "base64"))?.[0]?.value
    if (value !== undefined) {
      return handlers.onError(
        kind === "endpoint" ? ErrorKind.Endpoint : kind === "framework" ? ErrorKind.Framework : ErrorKind.NotStarted,
        Buffer.from(value)
      )
    }
  }
  handlers.onError(
    ErrorKind.Framework | ERROR_JSON,
    Buffer.from(encodeFrameworkErrorJson(frameworkOfCode(code, message, address)))
  )
}

export const badRequest = (handlers: CallHandlers, detail: string): void =>
  handlers.onError(
    ErrorKind.Framework | ERROR_JSON,
    Buffer.from(encodeFrameworkErrorJson(BadRequest.of(detail, "effect-micro.client")))
  )
