/**
 * The HTTP broker's wire format (documented in docs/broker.md, "HTTP format"):
 *
 * - `POST <path>` where `path` is the subscription's advertised path (`/broker/<subscription id>`).
 * - Single message: the body is the message, `content-type` its content-type (default
 *   application/octet-stream), message headers are HTTP headers `micro-header-<key>`. Reply: 204, or a
 *   status with a JSON body `{"reason","detail"}`.
 * - Batch: `content-type: application/x-micro-batch`, body = messages one after another, each
 *   `u16 contentTypeLength | contentType (UTF-8) | u32 headersLength | headers JSON object (UTF-8, 0 = none) |
 *   u32 bodyLength | body` (big-endian). Reply: 200 with a JSON array, one entry per message in order:
 *   `null` when delivered, else `{"reason","detail"}`. With the request header `micro-batch-results: compact`
 *   the reply is `204` (no body) when every message was delivered.
 */
import type { Metadata } from "../../Metadata.js"
import type { LocalFailure } from "./core.js"
import { emptyHeaders } from "./core.js"

export const BATCH_CONTENT_TYPE = "application/x-micro-batch"
export const PATH_PREFIX = "/broker/"
export const HEADER_PREFIX = "micro-header-"
/**
 * Request header of a batch: `compact` asks for `204 No Content` (no body) when every message of the batch
 * was delivered; otherwise (or without the header) the reply is the JSON array.
 */
export const BATCH_RESULTS_HEADER = "micro-batch-results"
export const BATCH_RESULTS_COMPACT = "compact"

export interface WireMessage {
  readonly contentType: string
  readonly headers: Metadata
  readonly body: Uint8Array
}

const contentTypeBytes = new Map<string, Buffer>()
let lastContentType = ""
let lastContentTypeBytes: Buffer = Buffer.alloc(0)
const contentTypeOf = (contentType: string): Buffer => {
  // A batch almost always carries one content-type: remember the last one (no Map lookup per message).
  if (contentType === lastContentType) return lastContentTypeBytes
  let bytes = contentTypeBytes.get(contentType)
  if (bytes === undefined) {
    bytes = Buffer.from(contentType, "utf8")
    if (bytes.length > 0xffff) throw new Error("content-type longer than 65535 bytes")
    if (contentTypeBytes.size < 256) contentTypeBytes.set(contentType, bytes)
  }
  lastContentType = contentType
  lastContentTypeBytes = bytes
  return bytes
}

const hasKeys = (headers: Metadata): boolean => {
  for (const _ in headers) return true
  return false
}

/** Encodes the messages of queued entries into one batch body (one allocation, no per-batch arrays without headers). */
export const encodeBatch = (entries: ReadonlyArray<{ readonly message: WireMessage }>): Buffer => {
  let size = 0
  // Headers JSON per message, only when some message has headers.
  let headers: Array<Buffer | undefined> | undefined
  for (let i = 0; i < entries.length; i++) {
    const message = entries[i]!.message
    size += 10 + contentTypeOf(message.contentType).length + message.body.byteLength
    if (message.headers !== emptyHeaders && hasKeys(message.headers)) {
      const header = Buffer.from(JSON.stringify(message.headers), "utf8")
      ;(headers ??= new Array(entries.length))[i] = header
      size += header.length
    }
  }
  const out = Buffer.allocUnsafe(size)
  let offset = 0
  for (let i = 0; i < entries.length; i++) {
    const message = entries[i]!.message
    const type = contentTypeOf(message.contentType)
    const header = headers?.[i]
    const body = message.body
    out.writeUInt16BE(type.length, offset)
    offset += 2
    type.copy(out, offset)
    offset += type.length
    out.writeUInt32BE(header?.length ?? 0, offset)
    offset += 4
    if (header !== undefined) {
      header.copy(out, offset)
      offset += header.length
    }
    out.writeUInt32BE(body.byteLength, offset)
    offset += 4
    out.set(body, offset)
    offset += body.byteLength
  }
  return out
}

/** Decodes a batch body; throws an Error naming the problem when it is malformed. */
export const decodeBatch = (bytes: Uint8Array): Array<WireMessage> => {
  const buffer = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const messages: Array<WireMessage> = []
  let offset = 0
  const need = (n: number, what: string) => {
    if (offset + n > buffer.length) throw new Error(`truncated batch: ${what} at byte ${offset}`)
  }
  while (offset < buffer.length) {
    need(2, "content-type length")
    const typeLength = buffer.readUInt16BE(offset)
    offset += 2
    need(typeLength, "content-type")
    const contentType = buffer.toString("utf8", offset, offset + typeLength)
    offset += typeLength
    need(4, "headers length")
    const headersLength = buffer.readUInt32BE(offset)
    offset += 4
    need(headersLength, "headers")
    let headers: Metadata = empty
    if (headersLength > 0) {
      const parsed: unknown = JSON.parse(buffer.toString("utf8", offset, offset + headersLength))
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
        throw new Error("headers must be a JSON object")
      }
      const out: Record<string, string> = {}
      for (const [key, value] of Object.entries(parsed)) {
        if (typeof value !== "string") throw new Error(`header ${key} must be a string`)
        out[key.toLowerCase()] = value
      }
      headers = out
    }
    offset += headersLength
    need(4, "body length")
    const bodyLength = buffer.readUInt32BE(offset)
    offset += 4
    need(bodyLength, "body")
    messages.push({
      contentType: contentType === "" ? "application/octet-stream" : contentType,
      headers,
      body: buffer.subarray(offset, offset + bodyLength)
    })
    offset += bodyLength
  }
  return messages
}

const empty: Metadata = Object.freeze({})

/** True when every message of a batch was delivered. */
export const allDelivered = (results: ReadonlyArray<LocalFailure | undefined>): boolean => {
  for (let i = 0; i < results.length; i++) if (results[i] !== undefined) return false
  return true
}

/** The JSON reply to a batch: `null` per delivered message. */
export const encodeResults = (results: ReadonlyArray<LocalFailure | undefined>): string => {
  let out = "["
  for (let i = 0; i < results.length; i++) {
    if (i > 0) out += ","
    const result = results[i]
    out += result === undefined ? "null" : JSON.stringify({ reason: result.reason, detail: result.detail })
  }
  return out + "]"
}

/** HTTP status for a single-message delivery failure. */
export const statusOf = (failure: LocalFailure): number => {
  switch (failure.reason) {
    case "Rejected":
      return 400
    case "Unauthorized":
      return 401
    case "Forbidden":
      return 403
    case "Timeout":
      return 504
    default:
      return 500
  }
}
