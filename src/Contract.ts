/**
 * Contracts are `@effect/rpc` `RpcGroup`s of `Rpc`s. This module adds what @effect/rpc cannot express:
 * client-streaming and bidirectional endpoints (a request that is a `Stream`), and the `Idempotent`
 * annotation that lets the client retry a call that may already have reached a node.
 *
 * ```ts
 * const Calc = RpcGroup.make(
 *   Rpc.make("Add", { payload: { a: Schema.Number, b: Schema.Number }, success: Schema.Number })
 *     .annotate(Contract.Idempotent, true),
 *   Rpc.make("Count", { payload: { to: Schema.Number }, success: Schema.Number, stream: true }),
 *   Contract.clientStream("Sum", { payload: Schema.Number, success: Schema.Number }),
 *   Contract.bidi("Chat", { payload: Message, success: Message })
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { endpointMessage } from "./internal/codec/protobuf/names.js"

/**
 * The four call shapes.
 * @since 0.1.0
 * @category models
 */
export type CallShape = "unary" | "server-stream" | "client-stream" | "bidi"

/**
 * Marks an endpoint as safe to run twice: the client may then retry it on another node after a failure
 * that does not prove the request was never delivered (timeout, connection reset).
 * @since 0.1.0
 * @category annotations
 */
export class Idempotent extends Context.Reference<Idempotent>()("effect-micro/Contract/Idempotent", {
  defaultValue: () => false
}) {}

/**
 * The Schema of a request that is a stream of `element`s (client-streaming and bidi payloads).
 * @since 0.1.0
 * @category schemas
 */
export const streamOf = <A extends Schema.Schema.Any>(element: A): RpcSchema.Stream<A, typeof Schema.Never> =>
  RpcSchema.Stream({ success: element, failure: Schema.Never })

/**
 * A client-streaming endpoint: the caller sends a `Stream` of `payload`s, the handler returns one reply.
 * @since 0.1.0
 * @category constructors
 */
export const clientStream = <
  const Tag extends string,
  Payload extends Schema.Schema.Any,
  Success extends Schema.Schema.Any = typeof Schema.Void,
  Error extends Schema.Schema.All = typeof Schema.Never
>(tag: Tag, options: {
  readonly payload: Payload
  readonly success?: Success
  readonly error?: Error
}): Rpc.Rpc<Tag, RpcSchema.Stream<Payload, typeof Schema.Never>, Success, Error> =>
  // Rpc.make types a Schema payload as a struct of fields; ours is one Schema (the stream), which it accepts.
  Rpc.make(tag, {
    payload: streamOf(options.payload),
    success: (options.success ?? Schema.Void) as Success,
    error: (options.error ?? Schema.Never) as Error
  }) as unknown as Rpc.Rpc<Tag, RpcSchema.Stream<Payload, typeof Schema.Never>, Success, Error>

/**
 * A bidirectional endpoint: a `Stream` of `payload`s in, a `Stream` of `success`es out. Either side may
 * end its direction first (half-close); the call is over when the server's stream ends.
 * @since 0.1.0
 * @category constructors
 */
export const bidi = <
  const Tag extends string,
  Payload extends Schema.Schema.Any,
  Success extends Schema.Schema.Any,
  Error extends Schema.Schema.All = typeof Schema.Never
>(tag: Tag, options: {
  readonly payload: Payload
  readonly success: Success
  readonly error?: Error
}): Rpc.Rpc<
  Tag,
  RpcSchema.Stream<Payload, typeof Schema.Never>,
  RpcSchema.Stream<Success, Error>,
  typeof Schema.Never
> =>
  // As in clientStream; `stream: true` makes the success a stream (the type Rpc.make infers differently).
  Rpc.make(tag, {
    payload: streamOf(options.payload),
    success: options.success,
    error: (options.error ?? Schema.Never) as Error,
    stream: true
  }) as unknown as Rpc.Rpc<
    Tag,
    RpcSchema.Stream<Payload, typeof Schema.Never>,
    RpcSchema.Stream<Success, Error>,
    typeof Schema.Never
  >

/**
 * The Schemas an endpoint puts on the wire, per message.
 * @since 0.1.0
 * @category models
 */
export interface EndpointSchemas {
  readonly shape: CallShape
  /** One request message (the stream element for streaming requests). */
  readonly request: Schema.Schema<any, any, never>
  /** One reply message (the stream element for streaming replies). */
  readonly response: Schema.Schema<any, any, never>
  /** The endpoint's typed errors (stream failure and endpoint error together). */
  readonly error: Schema.Schema<any, any, never>
  readonly idempotent: boolean
}

type WireSchema = Schema.Schema<any, any, never>

/**
 * Reads an Rpc's call shape and per-message Schemas.
 * @since 0.1.0
 * @category utils
 */
export const schemasOf = (rpc: Rpc.AnyWithProps): EndpointSchemas => {
  const requestStream = RpcSchema.getStreamSchemas(rpc.payloadSchema.ast)
  const responseStream = RpcSchema.getStreamSchemas(rpc.successSchema.ast)
  const shape: CallShape = Option.isSome(requestStream)
    ? (Option.isSome(responseStream) ? "bidi" : "client-stream")
    : (Option.isSome(responseStream) ? "server-stream" : "unary")
  const errors: Array<Schema.Schema.All> = []
  if (Option.isSome(responseStream)) errors.push(responseStream.value.failure)
  errors.push(rpc.errorSchema)
  const errorMembers = errors.filter((schema) => schema.ast._tag !== "NeverKeyword")
  // Each Schema carries the name `Protobuf.toProto` gives its message (`HelloRequest`, ...), so protobuf
  // error details name what a peer reading the .proto sees (no effect on other codecs).
  return {
    shape,
    // Contracts carry no Schema requirements (an Rpc's Schemas are context-free here).
    request: endpointMessage(
      (Option.isSome(requestStream) ? requestStream.value.success : rpc.payloadSchema) as WireSchema,
      rpc._tag,
      "Request"
    ),
    response: endpointMessage(
      (Option.isSome(responseStream) ? responseStream.value.success : rpc.successSchema) as WireSchema,
      rpc._tag,
      "Response"
    ),
    error: endpointMessage(
      (errorMembers.length === 0
        ? Schema.Never
        : errorMembers.length === 1
        ? errorMembers[0]
        : Schema.Union(...errorMembers)) as WireSchema,
      rpc._tag,
      "Error"
    ),
    idempotent: Context.get(rpc.annotations, Idempotent)
  }
}
