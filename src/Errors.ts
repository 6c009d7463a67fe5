/**
 * Framework errors. Every error carries go-micro's fields (`id`, `code`, `detail`, `status`) and is a
 * `Schema.TaggedError`, so it crosses the wire in any codec and is decoded back into its own class.
 *
 * Server-side errors use HTTP-like status codes; client-side errors (raised before or after the wire)
 * use codes in the same space so callers can branch on `code` alone if they want to.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"
import { MessageNameId } from "./internal/codec/protobuf/names.js"

const fields = {
  /** Who raised it: usually the service name, or `effect-micro.client`. */
  id: Schema.String,
  /**
   * HTTP-like status code: an integer in the int32 range, as in go-micro's `errors.proto`, and an
   * `int32` on the protobuf wire (a varint; it was a `double` before, see docs/protobuf.md). The
   * annotation key is `Protobuf.ScalarTypeAnnotationId`, spelled out because Protobuf imports this module.
   */
  code: Schema.Int.pipe(Schema.between(-2147483648, 2147483647)).annotations({
    [Symbol.for("effect-micro/Protobuf/Type")]: "int32"
  }),
  detail: Schema.String,
  status: Schema.String
}

/**
 * Which call failed, filled in by the client when a call gives up (absent on errors raised elsewhere). They
 * come after each error's own fields, so adding them kept every earlier protobuf field number.
 */
const target = {
  /** The service called. */
  service: Schema.optional(Schema.String),
  /** The endpoint called (the Rpc's tag). */
  endpoint: Schema.optional(Schema.String),
  /** Address of the last node tried. */
  node: Schema.optional(Schema.String),
  /** Attempts made (retries and hedges included; 0 when no node could be picked). */
  attempts: Schema.optional(
    Schema.Int.pipe(Schema.between(0, 2147483647)).annotations({
      [Symbol.for("effect-micro/Protobuf/Type")]: "int32"
    })
  ),
  /** Distinct nodes those attempts went to. */
  nodes: Schema.optional(
    Schema.Int.pipe(Schema.between(0, 2147483647)).annotations({
      [Symbol.for("effect-micro/Protobuf/Type")]: "int32"
    })
  )
}
const statusFields = { ...fields, ...target }

// Each class is declared via `Schema.TaggedError` so that it is a Schema and an Error at once.

/** `of(detail, id?)` of an error whose code and status are fixed by its class. */
const statusOf = <E>(
  make: (error: { id: string; code: number; detail: string; status: string }) => E,
  code: number,
  status: string,
  defaultId = "effect-micro"
) =>
(detail: string, id = defaultId): E => make({ id, code, detail, status })
/**
 * 400: the request is malformed (undecodable payload, unknown content-type, bad frame).
 * @since 0.1.0
 * @category errors
 */
export class BadRequest extends Schema.TaggedError<BadRequest>()("BadRequest", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new BadRequest(error), 400, "Bad Request")
}
/**
 * 401: no credentials or invalid/expired credentials.
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new Unauthorized(error), 401, "Unauthorized")
}
/**
 * 403: authenticated but not allowed.
 * @since 0.1.0
 * @category errors
 */
export class Forbidden extends Schema.TaggedError<Forbidden>()("Forbidden", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new Forbidden(error), 403, "Forbidden")
}
/**
 * 404: the service exists but the endpoint (or resource) does not.
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new NotFound(error), 404, "Not Found")
}
/**
 * 408: the call's deadline passed (on the client, or on the server which then stopped the handler).
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Schema.TaggedError<Timeout>()("Timeout", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new Timeout(error), 408, "Request Timeout")
}
/**
 * 409: conflicting state.
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends Schema.TaggedError<Conflict>()("Conflict", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new Conflict(error), 409, "Conflict")
}
/**
 * 500: a handler died (defect) or the server failed in an unexpected way.
 * @since 0.1.0
 * @category errors
 */
export class InternalServerError
  extends Schema.TaggedError<InternalServerError>()("InternalServerError", statusFields)
{
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new InternalServerError(error), 500, "Internal Server Error")
}
/**
 * 503: the server is draining or overloaded; the call was not run, so it is always safe to retry.
 * @since 0.1.0
 * @category errors
 */
export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()("ServiceUnavailable", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new ServiceUnavailable(error), 503, "Service Unavailable")
}

// ----- client-side errors -----

/**
 * The registry knows no node of this service.
 * @since 0.1.0
 * @category errors
 */
export class ServiceNotFound extends Schema.TaggedError<ServiceNotFound>()("ServiceNotFound", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new ServiceNotFound(error), 404, "Service Not Found", "effect-micro.client")
}
/**
 * The service has nodes but none passes the selector's filters (version, metadata, already tried).
 * @since 0.1.0
 * @category errors
 */
export class NoAvailableNodes extends Schema.TaggedError<NoAvailableNodes>()("NoAvailableNodes", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf(
    (error) => new NoAvailableNodes(error),
    503,
    "No Available Nodes",
    "effect-micro.client"
  )
}

/**
 * A retryable failure was not retried because the client's retry budget is spent (too many retries
 * lately for the calls made: the cluster is sick and retrying would amplify the load). `detail` names the
 * failure that would have been retried.
 * @since 0.1.0
 * @category errors
 */
export class RetryBudgetExhausted
  extends Schema.TaggedError<RetryBudgetExhausted>()("RetryBudgetExhausted", statusFields)
{
  /** @since 0.1.0 */
  static readonly of = statusOf(
    (error) => new RetryBudgetExhausted(error),
    503,
    "Retry Budget Exhausted",
    "effect-micro.client"
  )
}

/**
 * Why a transport failed. `refused` and `dial` prove the request never reached the peer; `listen` is a
 * server that could not listen (the address is in use or not local), never a call's failure.
 * @since 0.1.0
 * @category models
 */
export const TransportReason = Schema.Literal(
  "dial",
  "refused",
  "reset",
  "closed",
  "protocol",
  "frame-too-large",
  "listen"
)
/** @since 0.1.0 */
export type TransportReason = typeof TransportReason.Type

/**
 * A connection could not be made, broke, or the peer violated the protocol.
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Schema.TaggedError<TransportError>()("TransportError", {
  ...fields,
  reason: TransportReason,
  address: Schema.String,
  /** true when the request provably never reached the peer (safe to retry any endpoint). */
  notDelivered: Schema.Boolean,
  ...target
}) {
  /** @since 0.1.0 */
  static of(
    reason: TransportReason,
    address: string,
    detail: string,
    notDelivered = reason === "dial" || reason === "refused"
  ): TransportError {
    return new TransportError({
      id: "effect-micro.transport",
      code: 503,
      detail,
      status: "Transport Error",
      reason,
      address,
      notDelivered
    })
  }
}
/**
 * A value could not be encoded or decoded by a codec.
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends Schema.TaggedError<CodecError>()("CodecError", {
  ...fields,
  contentType: Schema.String,
  ...target
}) {
  /** @since 0.1.0 */
  static of(contentType: string, detail: string): CodecError {
    return new CodecError({ id: "effect-micro.codec", code: 400, detail, status: "Codec Error", contentType })
  }
}
/**
 * A stream was closed (by the peer, a cancel, or a connection loss) before it completed.
 * @since 0.1.0
 * @category errors
 */
export class StreamClosed extends Schema.TaggedError<StreamClosed>()("StreamClosed", statusFields) {
  /** @since 0.1.0 */
  static readonly of = statusOf((error) => new StreamClosed(error), 499, "Stream Closed")
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`

/**
 * The message of every framework error: the detail, prefixed by the call it ended when the client filled in
 * the target (`inventory.Get: connection refused by 127.0.0.1:37215 after 3 attempts on 1 node`).
 */
function describeError(this: typeof MicroError.Type): string {
  const call = this.service === undefined
    ? ""
    : `${this.service}${this.endpoint === undefined ? "" : `.${this.endpoint}`}: `
  const tried = this.attempts === undefined || this.attempts === 0
    ? ""
    : ` after ${plural(this.attempts, "attempt")} on ${plural(this.nodes ?? 1, "node")}`
  return `${call}${this.detail}${tried}`
}

/**
 * Every framework error, as one Schema: the wire decodes error frames of kind "framework" with it.
 * In protobuf it is the `MicroError` oneof message (the name also used in codec error details).
 * @since 0.1.0
 * @category schemas
 */
export const MicroError = Schema.Union(
  BadRequest,
  Unauthorized,
  Forbidden,
  NotFound,
  Timeout,
  Conflict,
  InternalServerError,
  ServiceUnavailable,
  ServiceNotFound,
  NoAvailableNodes,
  TransportError,
  CodecError,
  StreamClosed,
  RetryBudgetExhausted
).annotations({ [MessageNameId]: "MicroError" })
/**
 * @since 0.1.0
 * @category models
 */
export type MicroError = typeof MicroError.Type

// The Schema base class's message is the JSON of the fields; ours reads as a sentence (see describeError).
for (const member of MicroError.members) {
  Object.defineProperty(member.prototype, "message", { get: describeError, configurable: true })
}

/**
 * What a client call can fail with besides the endpoint's own errors.
 * @since 0.1.0
 * @category models
 */
export type CallError = MicroError

/**
 * True for any framework error.
 * @since 0.1.0
 * @category guards
 */
export const isMicroError: (u: unknown) => u is MicroError = Schema.is(MicroError)
