/**
 * grpc-js reference server of the `large` group: `Echo` answers each request with its bytes, `Chat` echoes
 * every message of the bidi stream (raw-bytes serializers, no proto-loader), insecure on 127.0.0.1:0.
 * Prints `READY host:port`.
 */
import * as grpc from "@grpc/grpc-js"
import { largeChannelOptions, largeDefinition } from "../grpcLargeDefinition.js"

const server = new grpc.Server(largeChannelOptions)
server.addService(largeDefinition, {
  Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
    callback(null, call.request)
  },
  Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
    call.on("data", (message: Buffer) => call.write(message))
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
