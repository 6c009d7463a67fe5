/**
 * The `large` group's grpc-js service, without proto-loader: unary `Echo` and bidi `Chat` whose messages are
 * raw bytes (identity serializers: grpc-js adds its 5-byte message prefix and HTTP/2 framing, nothing else).
 * Message size limits are raised to 8 MiB on both sides (grpc-js receives 4 MiB by default).
 */
import type * as grpc from "@grpc/grpc-js"

const identity = (bytes: Buffer): Buffer => bytes

export const largeDefinition = {
  Echo: {
    path: "/bench.Large/Echo",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: "echo"
  },
  Chat: {
    path: "/bench.Large/Chat",
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
    originalName: "chat"
  }
} satisfies grpc.ServiceDefinition

export const largeChannelOptions = {
  "grpc.max_receive_message_length": 8 * 1024 * 1024,
  "grpc.max_send_message_length": 8 * 1024 * 1024
} as const
