/**
 * The gRPC group's `.proto` (emitted from `GrpcBench`) loaded with proto-loader, as a plain grpc-js service
 * built from that file would load it: the reference side of the gRPC comparison uses protobufjs codecs.
 */
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Protobuf from "../src/Protobuf.js"
import { GrpcBench, grpcProtoOptions } from "./contract.js"

export const loadBench = (): any => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-bench-grpc-"))
  try {
    const file = path.join(dir, "bench.proto")
    fs.writeFileSync(file, Protobuf.toProto(GrpcBench, grpcProtoOptions))
    const definition = protoLoader.loadSync(file, { keepCase: true, longs: Number, defaults: true })
    return (grpc.loadPackageDefinition(definition) as any).bench.Bench
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}
