/**
 * grpc-js reference server built from the contract's `.proto` with proto-loader (protobufjs codecs): `Echo`
 * answers its request, `Chat` echoes every message of the bidi stream. Prints `READY host:port`.
 */
import * as grpc from "@grpc/grpc-js"
import { loadBench } from "../grpcProto.js"

const server = new grpc.Server()
server.addService(loadBench().service, {
  Echo: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) =>
    callback(null, call.request),
  Chat: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
    call.on("data", (message) => call.write(message))
    call.on("end", () => call.end())
    call.on("error", () => {})
  }
})
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error !== null) {
    process.stderr.write(`grpc server failed: ${error.message}\n`)
    process.exit(1)
  }
  process.stdout.write(`READY 127.0.0.1:${port}\n`)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
