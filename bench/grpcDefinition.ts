/**
 * The grpc-js reference service, without proto-loader: one bidirectional method `Chat` whose messages are
 * the benchmark `Item` as JSON bytes (the same encoding effect-micro's default codec puts on the wire).
 */
import type * as grpc from "@grpc/grpc-js"

const serialize = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), "utf8")
const deserialize = (bytes: Buffer): any => JSON.parse(bytes.toString("utf8"))

export const definition = {
  Chat: {
    path: "/bench.Bench/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: serialize,
    requestDeserialize: deserialize,
    responseSerialize: serialize,
    responseDeserialize: deserialize,
    originalName: "chat"
  }
} satisfies grpc.ServiceDefinition
