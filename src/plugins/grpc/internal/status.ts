/**
 * gRPC status codes and `google.rpc.Status` details, both ways (docs/grpc.md, "Errors").
 *
 * A failed call carries a status code chosen from the error (table below) and, in the
 * `grpc-status-details-bin` trailer, a `google.rpc.Status` whose one detail is the error itself as a
 * `google.protobuf.Any`: `type.googleapis.com/<package>.<message>`, the message named in the contract's
 * `.proto` (`HelloError`, or `MicroError` for framework errors). An effect-micro client decodes it back
 * into the same class; other clients read the code and message, or decode the detail with the `.proto`.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { MicroError } from "../../../Errors.js"
import {
  BadRequest,
  Conflict,
  Forbidden,
  InternalServerError,
  NotFound,
  ServiceUnavailable,
  StreamClosed,
  Timeout,
  Unauthorized
} from "../../../Errors.js"
import * as Protobuf from "../../../Protobuf.js"

/** gRPC status codes (https://grpc.github.io/grpc/core/md_doc_statuscodes.html). */
export const Code = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16
} as const

/** The trailer that carries the `google.rpc.Status` with the typed error. */
export const DETAILS_TRAILER = "grpc-status-details-bin"

/**
 * The trailer an effect-micro server adds beside the details: `endpoint` (the detail is the endpoint's
 * declared error), `framework` (a `MicroError`), or `not-started` (a `MicroError` sent before the handler
 * ran, e.g. while draining: safe to retry anywhere). Its absence means a foreign server's status.
 */
export const ERROR_KIND_TRAILER = "effect-micro-error"

/** The status code a framework error is sent with. */
export const codeOfFramework = (error: MicroError): number => {
  switch (error._tag) {
    case "NotFound":
      return Code.NOT_FOUND
    case "Timeout":
      return Code.DEADLINE_EXCEEDED
    case "Unauthorized":
      return Code.UNAUTHENTICATED
    case "Forbidden":
      return Code.PERMISSION_DENIED
    case "BadRequest":
      return Code.INVALID_ARGUMENT
    case "ServiceUnavailable":
      return Code.UNAVAILABLE
    default:
      return Code.INTERNAL
  }
}

/** The status code an endpoint's own (typed) error is sent with: an application error. */
export const ENDPOINT_ERROR_CODE = Code.UNKNOWN

/** The framework error a status without our details stands for (a foreign server's status). */
export const frameworkOfCode = (code: number, message: string, id: string): MicroError => {
  switch (code) {
    case Code.INVALID_ARGUMENT:
    case Code.OUT_OF_RANGE:
    case Code.FAILED_PRECONDITION:
      return BadRequest.of(message, id)
    case Code.DEADLINE_EXCEEDED:
      return Timeout.of(message, id)
    case Code.NOT_FOUND:
    case Code.UNIMPLEMENTED:
      return NotFound.of(message, id)
    case Code.PERMISSION_DENIED:
      return Forbidden.of(message, id)
    case Code.UNAUTHENTICATED:
      return Unauthorized.of(message, id)
    case Code.UNAVAILABLE:
    case Code.RESOURCE_EXHAUSTED:
      return ServiceUnavailable.of(message, id)
    case Code.ALREADY_EXISTS:
    case Code.ABORTED:
      return Conflict.of(message, id)
    case Code.CANCELLED:
      return StreamClosed.of(message, id)
    default:
      return InternalServerError.of(message, id)
  }
}

const int32 = Schema.Int.annotations({ ...Protobuf.scalarType("int32"), ...Protobuf.fieldNumber(1) })

/** `google.protobuf.Any`. */
const AnyMessage = Schema.Struct({
  type_url: Schema.String.annotations(Protobuf.fieldNumber(1)),
  value: Schema.Uint8ArrayFromSelf.annotations(Protobuf.fieldNumber(2))
}).annotations({ identifier: "Any" })

/** `google.rpc.Status`. */
const StatusMessage = Schema.Struct({
  code: int32,
  message: Schema.String.annotations(Protobuf.fieldNumber(2)),
  details: Schema.Array(AnyMessage).annotations(Protobuf.fieldNumber(3))
}).annotations({ identifier: "Status" })

const statusCodec = Protobuf.compile(StatusMessage)

/** The `type_url` of a message of the contract's `.proto`. */
export const typeUrl = (protoPackage: string | undefined, message: string): string =>
  `type.googleapis.com/${protoPackage === undefined ? "" : `${protoPackage}.`}${message}`

/** `google.rpc.Status` bytes with one detail. */
export const encodeStatus = (code: number, message: string, url: string, value: Uint8Array): Buffer => {
  const encoded = statusCodec.encode({ code, message, details: [{ type_url: url, value }] })
  // The Schema is fixed and its values are built here: encoding cannot fail.
  return Either.isRight(encoded) ? Buffer.from(encoded.right) : Buffer.alloc(0)
}

/** The details of a `google.rpc.Status`, or undefined when the bytes are not one. */
export const decodeStatusDetails = (
  bytes: Uint8Array
): ReadonlyArray<{ readonly type_url: string; readonly value: Uint8Array }> | undefined => {
  const decoded = statusCodec.decode(bytes)
  return Either.isRight(decoded) ? decoded.right.details : undefined
}
