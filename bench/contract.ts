/**
 * The effect-micro contracts the benchmark serves: one unary endpoint echoing an `Item` (`Bench`), one
 * bidirectional stream echoing every `Item` it receives (`BenchStream`), and the `large` group's echoes of
 * raw bytes and of a `{ data: string }` message (`BenchLarge`).
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Schema from "effect/Schema"
import * as Contract from "../src/Contract.js"

export const Item = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  tags: Schema.Array(Schema.String),
  active: Schema.Boolean,
  score: Schema.Number,
  created: Schema.String
})

export const Bench = RpcGroup.make(
  Rpc.make("Echo", { payload: Item, success: Item })
)

export const BenchStream = RpcGroup.make(
  Contract.bidi("Chat", { payload: Item, success: Item })
)

export const serviceName = "bench"

/**
 * The gRPC group's contract: unary `Echo` and bidi `Chat` over the same `Item`, served as the gRPC service
 * `bench.Bench` its `.proto` describes (`grpcProto`), by `GrpcServer` and by a grpc-js + proto-loader server.
 */
export const GrpcBench = RpcGroup.make(
  Rpc.make("Echo", { payload: Item, success: Item }),
  Contract.bidi("Chat", { payload: Item, success: Item })
)

export const grpcProtoOptions = { package: "bench", serviceName: "Bench" } as const

/**
 * The `large` group's contract: unary echoes of raw bytes (`application/octet-stream`, the body is the bytes)
 * and of `{ data: string }` (JSON), and a bidi stream echoing raw-bytes messages.
 */
export const BenchLarge = RpcGroup.make(
  Rpc.make("EchoBytes", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf }),
  Rpc.make("EchoText", { payload: { data: Schema.String }, success: Schema.Struct({ data: Schema.String }) }),
  Contract.bidi("ChatBytes", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf })
)
