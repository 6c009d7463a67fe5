/**
 * A contract laid out as one protobuf file: the messages and enums its endpoints use and one `service`
 * with an `rpc` per endpoint. `Protobuf.toProto` prints it; the gRPC plugin serves it (method paths,
 * error detail type names) and encodes it as a `FileDescriptorProto` for server reflection, so the three
 * always agree.
 *
 * @internal
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { MicroError } from "../../../Errors.js"
import { Builder } from "./builder.js"
import type { RpcLine } from "./emit.js"
import { pascal } from "./names.js"
import { type EnumType, type MessageType, PlanError } from "./types.js"

/** @internal */
export interface ContractPlan {
  readonly package: string | undefined
  readonly serviceName: string
  readonly named: ReadonlyArray<MessageType | EnumType>
  /** One per endpoint, in contract order; `tag` is the Rpc's `_tag`. */
  readonly rpcs: ReadonlyArray<RpcLine & { readonly tag: string }>
  /** The framework error message (`MicroError`), when emitted. */
  readonly frameworkError: string | undefined
}

/** @internal */
export interface ContractPlanOptions {
  readonly package?: string | undefined
  readonly serviceName?: string | undefined
  readonly frameworkErrors?: boolean | undefined
}

const isNever = (schema: Schema.Schema.All): boolean => AST.isNeverKeyword(schema.ast)

/** Plans a contract; throws `PlanError` (or the Schema walk's error) when a Schema has no mapping. */
export const planContract = <R extends Rpc.Any>(
  group: RpcGroup.RpcGroup<R>,
  options?: ContractPlanOptions | undefined
): ContractPlan => {
  const builder = new Builder()
  const rpcs: Array<RpcLine & { readonly tag: string }> = []
  for (const rpc of group.requests.values() as Iterable<Rpc.AnyWithProps>) {
    const name = pascal(rpc._tag)
    let payload: Schema.Schema.All = rpc.payloadSchema
    let clientStream = false
    if (RpcSchema.isStreamSchema(payload)) {
      payload = RpcSchema.getStreamSchemas(payload.ast).pipe(Option.getOrThrow).success
      clientStream = true
    }
    let success: Schema.Schema.All = rpc.successSchema
    let error: Schema.Schema.All = rpc.errorSchema
    let serverStream = false
    if (RpcSchema.isStreamSchema(success)) {
      const streams = RpcSchema.getStreamSchemas(success.ast).pipe(Option.getOrThrow)
      success = streams.success
      if (isNever(error)) error = streams.failure
      serverStream = true
    }
    const request = builder.root(payload.ast, `${name}Request`).message.name
    const response = builder.root(success.ast, `${name}Response`).message.name
    const errorName = isNever(error) ? undefined : builder.root(error.ast, `${name}Error`).message.name
    rpcs.push({ tag: rpc._tag, name, request, response, clientStream, serverStream, error: errorName })
  }
  const frameworkError = options?.frameworkErrors !== false
    ? builder.root(MicroError.ast, "MicroError").message.name
    : undefined
  if (options?.package !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(options.package)) {
    throw new PlanError("Unsupported", "", `invalid package name "${options.package}"`)
  }
  return {
    package: options?.package,
    serviceName: options?.serviceName ?? "Service",
    named: builder.named,
    rpcs,
    frameworkError
  }
}
