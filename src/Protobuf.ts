/**
 * `application/protobuf`: a protobuf (proto3) codec derived from Effect Schemas, no code generation.
 *
 * `compile(schema)` walks the Schema AST once into an encoder/decoder plan (cached per Schema);
 * `toProto(group)` prints the matching `.proto` file for a contract so other languages can talk to it.
 * Mapping, field numbers and names are described in `docs/protobuf.md`.
 *
 * @since 0.1.0
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Data from "effect/Data"
import * as Either from "effect/Either"
import type * as Schema from "effect/Schema"
import type { Codec, SchemaCodec } from "./Codec.js"
import { CodecError } from "./Errors.js"
import { Builder, type Root } from "./internal/codec/protobuf/builder.js"
import { planContract } from "./internal/codec/protobuf/contract.js"
import { emit } from "./internal/codec/protobuf/emit.js"
import { rootName } from "./internal/codec/protobuf/names.js"
import { FieldNumberId, PlanError, type ScalarName, ScalarTypeId } from "./internal/codec/protobuf/types.js"
import { Reader, Writer } from "./internal/codec/protobuf/wire.js"
import { errorMessage } from "./internal/common/text.js"

/**
 * The content-type of this codec.
 * @since 0.1.0
 * @category constants
 */
export const contentType = "application/protobuf"

/**
 * The alias content-type some clients send.
 * @since 0.1.0
 * @category constants
 */
export const contentTypeAlias = "application/x-protobuf"

/**
 * A proto3 scalar type name, for `scalarType`.
 * @since 0.1.0
 * @category models
 */
export type ScalarType = ScalarName

/**
 * Annotation key of a field number (see `fieldNumber`).
 * @since 0.1.0
 * @category annotations
 */
export const FieldNumberAnnotationId: typeof FieldNumberId = FieldNumberId

/**
 * Annotation key of a scalar wire type (see `scalarType`).
 * @since 0.1.0
 * @category annotations
 */
export const ScalarTypeAnnotationId: typeof ScalarTypeId = ScalarTypeId

/**
 * Field number annotation, on a field's Schema or its property signature:
 * `Schema.Number.annotations(Protobuf.fieldNumber(3))`.
 * @since 0.1.0
 * @category annotations
 */
export const fieldNumber = (n: number): { readonly [FieldNumberId]: number } => ({ [FieldNumberId]: n })

/**
 * Scalar type annotation: `Schema.Number.annotations(Protobuf.scalarType("sint32"))`.
 * Numbers default to `double` (`int64` for `Schema.Int`), bigints to `int64`.
 * @since 0.1.0
 * @category annotations
 */
export const scalarType = (type: ScalarType): { readonly [ScalarTypeId]: ScalarType } => ({ [ScalarTypeId]: type })

/**
 * A Schema that has no protobuf mapping (or conflicting field numbers).
 * @since 0.1.0
 * @category errors
 */
export class ProtobufSchemaError extends Data.TaggedError("ProtobufSchemaError")<{
  readonly reason: "Unsupported" | "FieldNumber"
  /** Where in the Schema, e.g. `user.tags[]`. */
  readonly path: string
  readonly message: string
}> {}

const toSchemaError = (cause: unknown): ProtobufSchemaError =>
  cause instanceof PlanError
    ? new ProtobufSchemaError({ reason: cause.reason, path: cause.path, message: cause.message })
    : new ProtobufSchemaError({ reason: "Unsupported", path: "", message: errorMessage(cause) })

const plans = new WeakMap<object, Either.Either<Root, ProtobufSchemaError>>()

const plan = (schema: Schema.Schema.All): Either.Either<Root, ProtobufSchemaError> => {
  const cached = plans.get(schema)
  if (cached !== undefined) return cached
  let result: Either.Either<Root, ProtobufSchemaError>
  if (RpcSchema.isStreamSchema(schema)) {
    result = Either.left(
      new ProtobufSchemaError({
        reason: "Unsupported",
        path: "",
        message: "a stream Schema: compile its element Schema (RpcSchema.getStreamSchemas)"
      })
    )
  } else {
    try {
      result = Either.right(new Builder().root(schema.ast, rootName(schema.ast)))
    } catch (cause) {
      result = Either.left(toSchemaError(cause))
    }
  }
  plans.set(schema, result)
  return result
}

/**
 * Checks that a Schema maps to protobuf (the same check `compile` does once).
 * @since 0.1.0
 * @category constructors
 */
export const validate = (schema: Schema.Schema.All): Either.Either<void, ProtobufSchemaError> =>
  Either.map(plan(schema), () => undefined)

// One shared writer: encode is synchronous, so it is reused unless a nested encode (a transformation
// that itself encodes protobuf) is running.
const shared = new Writer(8192)
let sharedBusy = false

const makeCodec = (type: string): Codec => {
  const cache = new WeakMap<object, SchemaCodec<any>>()
  const compile = <A, I>(schema: Schema.Schema<A, I, never>): SchemaCodec<A> => {
    const cached = cache.get(schema)
    if (cached !== undefined) return cached
    const planned = plan(schema)
    let codec: SchemaCodec<A>
    if (Either.isLeft(planned)) {
      const error = Either.left(CodecError.of(type, `unsupported schema: ${planned.left.message}`))
      codec = { encode: () => error, decode: () => error }
    } else {
      const { readBody, writeBody } = planned.right
      codec = {
        encode: (value) => {
          const writer = sharedBusy ? new Writer(256) : shared
          if (writer === shared) sharedBusy = true
          try {
            writer.reset()
            writeBody(writer, value)
            return Either.right(writer.finish())
          } catch (cause) {
            return Either.left(CodecError.of(type, `encode: ${errorMessage(cause)}`))
          } finally {
            if (writer === shared) {
              sharedBusy = false
              // Don't keep a huge buffer alive after one large message.
              if (shared.buf.length > 1 << 20) shared.buf = new Uint8Array(8192)
            }
          }
        },
        decode: (bytes) => {
          if (!(bytes instanceof Uint8Array)) return Either.left(CodecError.of(type, "decode: expected bytes"))
          try {
            return Either.right(readBody(new Reader(bytes, 0, bytes.length), bytes.length))
          } catch (cause) {
            return Either.left(CodecError.of(type, `decode: ${errorMessage(cause)}`))
          }
        }
      }
    }
    cache.set(schema, codec)
    return codec
  }
  return { contentType: type, structured: true, compile }
}

/**
 * The protobuf codec (`application/protobuf`). Unsupported Schemas compile to a codec whose encode and
 * decode return a `CodecError` naming the problem (use `validate` to find out earlier).
 * @since 0.1.0
 * @category codecs
 */
export const codec: Codec = makeCodec(contentType)

/**
 * The same codec under `application/x-protobuf`.
 * @since 0.1.0
 * @category codecs
 */
export const codecAlias: Codec = makeCodec(contentTypeAlias)

/**
 * Compiles (once per Schema) a protobuf encoder/decoder.
 * @since 0.1.0
 * @category constructors
 */
export const compile: <A, I>(schema: Schema.Schema<A, I, never>) => SchemaCodec<A> = codec.compile

/**
 * Options of `toProto`.
 * @since 0.1.0
 * @category models
 */
export interface ToProtoOptions {
  /** `package` line; none by default. */
  readonly package?: string | undefined
  /** Name of the `service` block; default `"Service"`. */
  readonly serviceName?: string | undefined
  /** Emit the framework errors as `message MicroError { oneof ... }`; default true. */
  readonly frameworkErrors?: boolean | undefined
}

/**
 * Prints the proto3 definition of a contract: every message its endpoints use and a `service` block.
 * Deterministic for a given contract. Throws `ProtobufSchemaError` if a Schema has no protobuf mapping.
 * @since 0.1.0
 * @category constructors
 */
export const toProto = <R extends Rpc.Any>(
  group: RpcGroup.RpcGroup<R>,
  options?: ToProtoOptions | undefined
): string => {
  try {
    const plan = planContract(group, options)
    return emit({ package: plan.package, serviceName: plan.serviceName, named: plan.named, rpcs: plan.rpcs })
  } catch (cause) {
    throw toSchemaError(cause)
  }
}
