/**
 * Message encoding by content-type.
 *
 * A `Codec` turns Schema-typed values into bytes for one content-type. It compiles an encoder/decoder
 * once per Schema (`compile`), so the hot path does no reflection. `Codecs` is the Tag holding every codec
 * a process speaks, looked up by the content-type a request carries.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as ParseResult from "effect/ParseResult"
import type * as Schema from "effect/Schema"
import { Packr } from "msgpackr"
import { BadRequest, CodecError } from "./Errors.js"
import * as InputLimits from "./internal/codec/inputLimits.js"
import * as SchemaValidator from "./internal/codec/schemaValidator.js"
import * as Protobuf from "./Protobuf.js"

/**
 * An encoder/decoder compiled for one Schema. Both directions are synchronous and never throw:
 * failures are `CodecError`s.
 * @since 0.1.0
 * @category models
 */
export interface SchemaCodec<A> {
  readonly encode: (value: A) => Either.Either<Uint8Array, CodecError>
  readonly decode: (bytes: Uint8Array) => Either.Either<A, CodecError>
}

/**
 * A codec for one content-type.
 * @since 0.1.0
 * @category models
 */
export interface Codec {
  readonly contentType: string
  /**
   * Whether arbitrary structured values (errors, records) can be encoded. Raw-bytes codecs are not
   * structured: errors of calls made with them travel as JSON.
   */
  readonly structured: boolean
  /** Compiles (and memoises per Schema) an encoder/decoder. */
  readonly compile: <A, I>(schema: Schema.Schema<A, I, never>) => SchemaCodec<A>
}

/**
 * The codecs a process speaks, by content-type.
 * @since 0.1.0
 * @category tags
 */
export class Codecs extends Context.Tag("effect-micro/Codecs")<Codecs, Codecs.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Codecs {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly default: Codec
    readonly contentTypes: ReadonlyArray<string>
    /** The codec for a content-type, or a BadRequest naming the supported ones. */
    readonly get: (contentType: string) => Either.Either<Codec, BadRequest>
  }
}

/**
 * Builds a codec from a pair of byte functions applied around the Schema's encoded form.
 * `serialize`/`deserialize` may throw; that is turned into a CodecError.
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly contentType: string
  readonly structured?: boolean | undefined
  readonly serialize: (encoded: unknown) => Uint8Array
  readonly deserialize: (bytes: Uint8Array) => unknown
}): Codec => {
  const { contentType, deserialize, serialize } = options
  const cache = new WeakMap<object, SchemaCodec<any>>()
  const compile = <A, I>(schema: Schema.Schema<A, I, never>): SchemaCodec<A> => {
    const cached = cache.get(schema)
    if (cached !== undefined) return cached
    const encodeSchema = ParseResult.encodeEither(schema)
    const decodeSchema = ParseResult.decodeUnknownEither(schema)
    // Fast path (transformation-free Schemas): when a value is already exactly what Schema would return,
    // skip ParseResult and its copy. Anything else (and every failure) takes the ParseResult path, so
    // error messages are unchanged.
    const isExact = SchemaValidator.compile(schema.ast)
    // Only Schemas that do not bound the nesting of what they accept (Unknown fields, recursion) pay for
    // a depth check, and only for messages long enough to nest that deep (each level costs ≥ 1 byte).
    const checkDepth = InputLimits.encodedDepthBound(schema.ast) === undefined
    const failEncode = (detail: string) => Either.left(CodecError.of(contentType, `encode: ${detail}`))
    const failDecode = (detail: string) => Either.left(CodecError.of(contentType, `decode: ${detail}`))
    const codec: SchemaCodec<A> = {
      encode: (value) => {
        try {
          if (isExact !== undefined && isExact(value)) return Either.right(serialize(value))
          const encoded = encodeSchema(value)
          if (Either.isLeft(encoded)) return failEncode(InputLimits.formatIssue(encoded.left))
          return Either.right(serialize(encoded.right))
        } catch (cause) {
          return failEncode(InputLimits.describeUnknown(cause))
        }
      },
      // Never throws, whatever the bytes: decode, validation and the error message are all bounded.
      decode: (bytes) => {
        try {
          const raw = deserialize(bytes)
          if (
            checkDepth && bytes.byteLength > InputLimits.MAX_NESTING_DEPTH &&
            InputLimits.exceedsDepth(raw, InputLimits.MAX_NESTING_DEPTH)
          ) {
            return failDecode(`value nested deeper than ${InputLimits.MAX_NESTING_DEPTH} levels`)
          }
          if (isExact !== undefined && isExact(raw)) return Either.right(raw as A)
          const decoded = decodeSchema(raw)
          return Either.isLeft(decoded)
            ? failDecode(InputLimits.formatIssue(decoded.left))
            : decoded as Either.Either<A, never>
        } catch (cause) {
          return failDecode(InputLimits.describeUnknown(cause))
        }
      }
    }
    cache.set(schema, codec)
    return codec
  }
  return { contentType, structured: options.structured ?? true, compile }
}

const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

/**
 * `application/json`, the default. `undefined` (e.g. `Schema.Void`) travels as an empty body.
 * @since 0.1.0
 * @category codecs
 */
export const json: Codec = make({
  contentType: "application/json",
  serialize: (encoded) => encoded === undefined ? new Uint8Array(0) : Buffer.from(JSON.stringify(encoded), "utf8"),
  deserialize: (bytes) => bytes.byteLength === 0 ? undefined : JSON.parse(asBuffer(bytes).toString("utf8"))
})

// Plain MessagePack (no msgpackr records extension) so other languages' msgpack libraries interoperate.
const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: "bigint" })

/**
 * `application/msgpack` (msgpackr, plain MessagePack without extensions).
 * @since 0.1.0
 * @category codecs
 */
export const msgpack: Codec = make({
  contentType: "application/msgpack",
  serialize: (encoded) => packr.pack(encoded),
  deserialize: (bytes) => packr.unpack(bytes)
})

/**
 * `application/octet-stream`: the message is the bytes. Only for Schemas whose encoded form is a
 * `Uint8Array` (e.g. `Schema.Uint8ArrayFromSelf`); anything else is a CodecError at encode time.
 * @since 0.1.0
 * @category codecs
 */
export const bytes: Codec = make({
  contentType: "application/octet-stream",
  structured: false,
  serialize: (encoded) => {
    if (encoded instanceof Uint8Array) return encoded
    if (encoded === undefined) return new Uint8Array(0)
    throw new Error(`application/octet-stream carries only Uint8Array values, got ${typeof encoded}`)
  },
  deserialize: (bytes) => bytes
})

/**
 * A `Codecs` registry from a list (the first is the default).
 * @since 0.1.0
 * @category constructors
 */
export const makeCodecs = (codecs: ReadonlyArray<Codec>): Codecs.Service => {
  if (codecs.length === 0) throw new Error("makeCodecs: at least one codec is required")
  const byType = new Map<string, Codec>()
  for (const codec of codecs) byType.set(normalize(codec.contentType), codec)
  const contentTypes = [...byType.keys()]
  return {
    default: codecs[0]!,
    contentTypes,
    get: (contentType) => {
      const codec = byType.get(contentType) ?? byType.get(normalize(contentType))
      return codec !== undefined
        ? Either.right(codec)
        : Either.left(
          BadRequest.of(`unsupported content-type "${contentType}"; supported: ${contentTypes.join(", ")}`)
        )
    }
  }
}

// "application/json; charset=utf-8" and "Application/JSON" name the same codec.
const normalize = (contentType: string): string => {
  const semicolon = contentType.indexOf(";")
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
}

/**
 * The default codecs: JSON (default), protobuf derived from the Schemas (`application/protobuf`, alias
 * `application/x-protobuf`), MessagePack and raw bytes.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Codecs> = Layer.sync(
  Codecs,
  () => makeCodecs([json, Protobuf.codec, Protobuf.codecAlias, msgpack, bytes])
)

/**
 * Codecs from an explicit list; the first is the default for outgoing calls.
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (codecs: ReadonlyArray<Codec>): Layer.Layer<Codecs> =>
  Layer.succeed(Codecs, makeCodecs(codecs))
