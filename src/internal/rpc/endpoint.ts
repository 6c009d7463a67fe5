import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Codec, SchemaCodec } from "../../Codec.js"
import { json } from "../../Codec.js"
import type { EndpointSchemas } from "../../Contract.js"
import type { MicroError } from "../../Errors.js"
import { CodecError, InternalServerError, isMicroError, MicroError as MicroErrorSchema } from "../../Errors.js"
import { describeUnknown } from "../codec/inputLimits.js"
import { ErrorKind } from "./wire.js"

/** An endpoint's encoders/decoders for one content-type, compiled once. */
export interface CompiledEndpoint {
  readonly contentType: string
  readonly request: SchemaCodec<any>
  readonly response: SchemaCodec<any>
  /** Typed endpoint errors (in the call's codec, or JSON for unstructured codecs). */
  readonly error: SchemaCodec<any>
  /** The same errors in JSON, for ERROR frames flagged as JSON. */
  readonly errorJson: SchemaCodec<any>
  readonly framework: SchemaCodec<MicroError>
  /** ERROR-frame kind flag added when errors travel as JSON. */
  readonly errorJsonFlag: number
  readonly isEndpointError: (u: unknown) => boolean
}

/** Set in an ERROR frame's kind byte when the body is JSON whatever the call's content-type. */
export const ERROR_JSON = 0x80

export const compileEndpoint = (schemas: EndpointSchemas, codec: Codec): CompiledEndpoint => {
  const errorCodec = codec.structured ? codec : json
  const hasErrors = schemas.error.ast._tag !== "NeverKeyword"
  return {
    contentType: codec.contentType,
    request: codec.compile(schemas.request),
    response: codec.compile(schemas.response),
    error: errorCodec.compile(schemas.error),
    errorJson: json.compile(schemas.error),
    framework: errorCodec.compile(MicroErrorSchema),
    errorJsonFlag: codec.structured ? 0 : ERROR_JSON,
    isEndpointError: hasErrors ? Schema.is(schemas.error) : () => false
  }
}

/** Per-endpoint cache of compiled codecs by content-type. */
export class EndpointCodecs {
  private readonly byType = new Map<string, CompiledEndpoint>()
  constructor(readonly schemas: EndpointSchemas) {}
  get(codec: Codec): CompiledEndpoint {
    let compiled = this.byType.get(codec.contentType)
    if (compiled === undefined) {
      compiled = compileEndpoint(this.schemas, codec)
      this.byType.set(codec.contentType, compiled)
    }
    return compiled
  }
}

/** JSON-encoded framework error, for failures that happen before a codec is known. */
const jsonFramework = json.compile(MicroErrorSchema)
export const encodeFrameworkErrorJson = (error: MicroError): Uint8Array => {
  const encoded = jsonFramework.encode(error)
  return Either.isRight(encoded) ? encoded.right : Buffer.from(JSON.stringify({ _tag: "InternalServerError" }))
}

/**
 * Encodes a handler failure for an ERROR frame: the endpoint's own error if it is one, a framework
 * error as itself, anything else as InternalServerError (never leaking a non-contract type).
 */
export const encodeFailure = (
  compiled: CompiledEndpoint,
  failure: unknown,
  serviceId: string
): { readonly kind: number; readonly body: Uint8Array } => {
  if (compiled.isEndpointError(failure)) {
    const encoded = compiled.error.encode(failure)
    if (Either.isRight(encoded)) return { kind: ErrorKind.Endpoint | compiled.errorJsonFlag, body: encoded.right }
    return encodeFramework(
      compiled,
      InternalServerError.of(`cannot encode endpoint error: ${encoded.left.detail}`, serviceId)
    )
  }
  if (isMicroError(failure)) return encodeFramework(compiled, failure)
  return encodeFramework(compiled, InternalServerError.of(`unexpected failure: ${describe(failure)}`, serviceId))
}

export const encodeFramework = (
  compiled: CompiledEndpoint,
  error: MicroError
): { readonly kind: number; readonly body: Uint8Array } => {
  const encoded = compiled.framework.encode(error)
  return Either.isRight(encoded)
    ? { kind: ErrorKind.Framework | compiled.errorJsonFlag, body: encoded.right }
    : { kind: ErrorKind.Framework | ERROR_JSON, body: encodeFrameworkErrorJson(error) }
}

// Where a client-side error came from decides whether a retry is safe (internal/rpc/client.ts isRetryable):
// an error a server sent back may come from a handler that already ran (even a 503 or a TransportError it
// got from a service of its own), unless the server marked it "not started".
const fromServer = new WeakSet<object>()
const notStarted = new WeakSet<object>()

/** The error came in an ERROR frame (the handler may have run). */
export const isFromServer = (error: unknown): boolean =>
  typeof error === "object" && error !== null && fromServer.has(error)
/** The server said the call never started (draining): safe to retry anywhere. */
export const isNotStarted = (error: unknown): boolean =>
  typeof error === "object" && error !== null && notStarted.has(error)

/** Decodes an ERROR frame body on the client: the endpoint's typed error or a framework error. */
export const decodeError = (compiled: CompiledEndpoint, kindByte: number, body: Uint8Array): unknown => {
  const isJson = (kindByte & ERROR_JSON) !== 0
  const kind = kindByte & ~ERROR_JSON
  let error: unknown
  if (kind === ErrorKind.Endpoint) {
    const decoded = (isJson ? compiled.errorJson : compiled.error).decode(body)
    error = Either.isRight(decoded) ? decoded.right : decoded.left
  } else {
    const decoded = (isJson ? jsonFramework : compiled.framework).decode(body)
    error = Either.isRight(decoded)
      ? decoded.right
      : CodecError.of(compiled.contentType, `undecodable error frame: ${decoded.left.detail}`)
  }
  if (typeof error === "object" && error !== null) (kind === ErrorKind.NotStarted ? notStarted : fromServer).add(error)
  return error
}

/** A bounded description of a defect or an unexpected failure (it may carry a peer's input). */
export const describe = (u: unknown): string => describeUnknown(u)
