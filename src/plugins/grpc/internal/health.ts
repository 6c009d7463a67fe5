/**
 * The standard health service, `grpc.health.v1.Health` (https://github.com/grpc/grpc/blob/master/doc/health-checking.md):
 * `Check` answers SERVING while the server serves and NOT_SERVING once it drains; `Watch` streams the
 * status and its changes. The service names known are "" (the whole server), the contract's full gRPC
 * service name and the effect-micro service name.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Protobuf from "../../../Protobuf.js"
import { Code } from "./status.js"

/** `HealthCheckResponse.ServingStatus`. */
export const ServingStatus = { UNKNOWN: 0, SERVING: 1, NOT_SERVING: 2, SERVICE_UNKNOWN: 3 } as const

const HealthCheckRequest = Schema.Struct({
  service: Schema.String.annotations(Protobuf.fieldNumber(1))
}).annotations({ identifier: "HealthCheckRequest" })
const HealthCheckResponse = Schema.Struct({
  status: Schema.Int.annotations({ ...Protobuf.fieldNumber(1), ...Protobuf.scalarType("int32") })
}).annotations({ identifier: "HealthCheckResponse" })

const requestCodec = Protobuf.compile(HealthCheckRequest)
const responseCodec = Protobuf.compile(HealthCheckResponse)

const encodeResponse = (status: number): Uint8Array => {
  const encoded = responseCodec.encode({ status })
  return Either.isRight(encoded) ? encoded.right : new Uint8Array(0)
}

const passThrough = {
  requestSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  requestDeserialize: (bytes: Buffer) => bytes,
  responseSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  responseDeserialize: (bytes: Buffer) => bytes
}

/** The service definition (paths and pass-through serializers: the messages are encoded here). */
export const definition: grpc.ServiceDefinition = {
  Check: { path: "/grpc.health.v1.Health/Check", requestStream: false, responseStream: false, ...passThrough },
  Watch: { path: "/grpc.health.v1.Health/Watch", requestStream: false, responseStream: true, ...passThrough }
}

/** The health state of one server: its names and whether it serves. */
export class HealthState {
  private serving = false
  private readonly watchers = new Set<grpc.ServerWritableStream<Buffer, Uint8Array>>()

  constructor(private readonly names: ReadonlySet<string>) {}

  /** Sets the status of every name and tells the watchers. */
  set(serving: boolean): void {
    if (this.serving === serving) return
    this.serving = serving
    const bytes = encodeResponse(this.status())
    for (const watcher of this.watchers) watcher.write(bytes)
  }

  /** Ends every Watch stream (the server is stopping). */
  close(): void {
    for (const watcher of this.watchers) watcher.end()
    this.watchers.clear()
  }

  private status(): number {
    return this.serving ? ServingStatus.SERVING : ServingStatus.NOT_SERVING
  }

  private serviceOf(bytes: Buffer): string | undefined {
    const decoded = requestCodec.decode(bytes)
    return Either.isRight(decoded) ? decoded.right.service : undefined
  }

  readonly implementation: grpc.UntypedServiceImplementation = {
    Check: (call: grpc.ServerUnaryCall<Buffer, Uint8Array>, callback: grpc.sendUnaryData<Uint8Array>) => {
      const service = this.serviceOf(call.request)
      if (service === undefined) {
        return callback({ code: Code.INVALID_ARGUMENT, details: "malformed HealthCheckRequest" }, null)
      }
      if (!this.names.has(service)) return callback({ code: Code.NOT_FOUND, details: `unknown service "${service}"` })
      callback(null, encodeResponse(this.status()))
    },
    Watch: (call: grpc.ServerWritableStream<Buffer, Uint8Array>) => {
      const service = this.serviceOf(call.request)
      if (service === undefined) {
        call.emit("error", { code: Code.INVALID_ARGUMENT, details: "malformed HealthCheckRequest" })
        return
      }
      if (!this.names.has(service)) {
        // As the spec says: SERVICE_UNKNOWN, and the stream stays open (the service may appear later).
        call.write(encodeResponse(ServingStatus.SERVICE_UNKNOWN))
      } else {
        call.write(encodeResponse(this.status()))
        this.watchers.add(call)
      }
      call.on("cancelled", () => this.watchers.delete(call))
    }
  }
}
