/**
 * Calls without the TypeScript contract: a contract rebuilt from a `Debug.Describe` answer whose messages are
 * any JSON value (the server validates them against its real Schemas, as always). What the CLI and the HTTP
 * gateway use. JSON by default, or MessagePack (`contentType`); protobuf needs the real Schemas.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Client, ClientOptions } from "../../Client.js"
import * as Contract from "../../Contract.js"
import * as Debug from "../../Debug.js"
import type { CallError } from "../../Errors.js"
import { make } from "./client.js"

/** One endpoint of a dynamic client; its shape says which of `input`/result is a Stream. */
export type DynamicMethod = (input: unknown, options?: ClientOptions) => unknown

export interface DynamicClient {
  readonly description: Debug.Description
  /** Methods by endpoint name: unary `(json) => Effect`, server-stream `(json) => Stream`, client-stream
   * `(Stream) => Effect`, bidi `(Stream) => Stream`. Endpoint errors arrive as their JSON value. */
  readonly methods: Readonly<Record<string, DynamicMethod>>
}

const rpcOf = (endpoint: Debug.EndpointDescription): Rpc.Any => {
  const error = Schema.Unknown
  switch (endpoint.shape) {
    case "unary":
      return Rpc.make(endpoint.name, { payload: Schema.Unknown, success: Schema.Unknown, error })
    case "server-stream":
      return Rpc.make(endpoint.name, { payload: Schema.Unknown, success: Schema.Unknown, error, stream: true })
    case "client-stream":
      return Contract.clientStream(endpoint.name, { payload: Schema.Unknown, success: Schema.Unknown, error })
    case "bidi":
      return Contract.bidi(endpoint.name, { payload: Schema.Unknown, success: Schema.Unknown, error })
  }
}

/** A client for `description`'s endpoints. */
export const fromDescription = (
  description: Debug.Description,
  options?: ClientOptions
): Effect.Effect<DynamicClient, never, Client> => {
  const endpoints = description.endpoints.map(rpcOf)
  const group = RpcGroup.make(...endpoints) as RpcGroup.RpcGroup<Rpc.Any>
  return Effect.map(
    // Schema-less codecs only: the messages are plain values (protobuf needs the real Schemas).
    make(group, { ...options, contentType: options?.contentType ?? "application/json", service: description.service }),
    (typed) => ({ description, methods: typed as Record<string, DynamicMethod> })
  )
}

/** Asks the service to describe itself, then builds its client. */
export const dynamic = (
  service: string,
  options?: ClientOptions
): Effect.Effect<DynamicClient, CallError, Client> =>
  Effect.flatMap(
    Effect.flatMap(
      make(Debug.Contract, { retry: false, ...options, service }),
      (debug) => debug["Debug.Describe"]() as Effect.Effect<Debug.Description, CallError>
    ),
    (description) => fromDescription(description, options)
  )
