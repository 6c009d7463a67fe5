/**
 * gRPC server reflection (`grpc.reflection.v1.ServerReflection` and its older twin
 * `grpc.reflection.v1alpha.ServerReflection`, same messages): `list_services`, `file_by_filename` and
 * `file_containing_symbol` answered from the contract's `FileDescriptorProto`, encoded from the same plan
 * as the `.proto` text (internal/codec/protobuf/descriptor.ts): no protoc at run time.
 *
 * Only the contract's file is described; the health and reflection services are listed but their
 * descriptors are the standard ones every tool already ships.
 *
 * @internal
 */
import type * as grpc from "@grpc/grpc-js"
import type { ContractPlan } from "../../../internal/codec/protobuf/contract.js"
import { Reader, Writer } from "../../../internal/codec/protobuf/wire.js"
import { Code } from "./status.js"

// ServerReflectionRequest fields.
const FILE_BY_FILENAME = 3
const FILE_CONTAINING_SYMBOL = 4
const FILE_CONTAINING_EXTENSION = 5
const ALL_EXTENSION_NUMBERS_OF_TYPE = 6
const LIST_SERVICES = 7

interface Request {
  readonly field: number
  readonly value: string
}

/** The request's oneof (the last one set wins, as protobuf says); undefined when malformed. */
const decodeRequest = (bytes: Uint8Array): Request | undefined => {
  try {
    const reader = new Reader(bytes, 0, bytes.length)
    let request: Request | undefined = { field: 0, value: "" }
    while (reader.pos < bytes.length) {
      const tag = reader.uint32()
      const field = tag >>> 3
      const wire = tag & 7
      if (wire === 2 && field >= FILE_BY_FILENAME && field <= LIST_SERVICES && field !== FILE_CONTAINING_EXTENSION) {
        request = { field, value: reader.string() }
      } else if (wire === 2 && field === FILE_CONTAINING_EXTENSION) {
        reader.bytes()
        request = { field, value: "" }
      } else reader.skip(wire, field)
    }
    return request
  } catch {
    return undefined
  }
}

const key = (w: Writer, field: number, wire: number): void => w.uint32((field << 3) | wire)
const sub = (w: Writer, field: number, body: (w: Writer) => void): void => {
  key(w, field, 2)
  const start = w.beginLength()
  body(w)
  w.endLength(start)
}

/** The reflection state of one server: its contract's file and the services it lists. */
export class Reflection {
  private readonly symbols = new Set<string>()

  constructor(
    private readonly fileName: string,
    private readonly file: Uint8Array,
    plan: ContractPlan,
    private readonly services: ReadonlyArray<string>
  ) {
    const prefix = plan.package === undefined ? "" : `${plan.package}.`
    const service = prefix + plan.serviceName
    this.symbols.add(service)
    for (const rpc of plan.rpcs) this.symbols.add(`${service}.${rpc.name}`)
    for (const named of plan.named) this.symbols.add(prefix + named.name)
  }

  /** One response for one request. */
  answer(bytes: Buffer): Uint8Array {
    const request = decodeRequest(bytes)
    const w = new Writer(256)
    // A malformed request is not echoed as original_request: it would make the response undecodable too.
    if (request === undefined) return this.error(w, Code.INVALID_ARGUMENT, "malformed ServerReflectionRequest")
    key(w, 2, 2)
    w.bytes(bytes) // original_request
    switch (request.field) {
      case LIST_SERVICES:
        sub(w, 6, (w) => {
          for (const name of this.services) sub(w, 1, (w) => (key(w, 1, 2), w.string(name)))
        })
        return w.finish()
      case FILE_BY_FILENAME:
        if (request.value !== this.fileName) {
          return this.error(w, Code.NOT_FOUND, `unknown file "${request.value.slice(0, 200)}"`)
        }
        return this.fileResponse(w)
      case FILE_CONTAINING_SYMBOL:
        if (!this.symbols.has(request.value)) {
          return this.error(w, Code.NOT_FOUND, `unknown symbol "${request.value.slice(0, 200)}"`)
        }
        return this.fileResponse(w)
      case FILE_CONTAINING_EXTENSION:
      case ALL_EXTENSION_NUMBERS_OF_TYPE:
        return this.error(w, Code.NOT_FOUND, "proto3 contracts declare no extensions")
      default:
        return this.error(w, Code.INVALID_ARGUMENT, "no request in ServerReflectionRequest")
    }
  }

  private fileResponse(w: Writer): Uint8Array {
    sub(w, 4, (w) => {
      key(w, 1, 2)
      w.bytes(this.file)
    })
    return w.finish()
  }

  private error(w: Writer, code: number, message: string): Uint8Array {
    sub(w, 7, (w) => {
      key(w, 1, 0)
      w.uint32(code)
      key(w, 2, 2)
      w.string(message)
    })
    return w.finish()
  }

  /** The bidi handler: one response per request, until the client half-closes. */
  readonly handler = (call: grpc.ServerDuplexStream<Buffer, Uint8Array>): void => {
    call.on("data", (bytes: Buffer) => call.write(this.answer(bytes)))
    call.on("end", () => call.end())
    call.on("error", () => {})
  }
}

const passThrough = {
  requestSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  requestDeserialize: (bytes: Buffer) => bytes,
  responseSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  responseDeserialize: (bytes: Buffer) => bytes
}

/** The service definition of one reflection version (`v1` or `v1alpha`). */
export const definition = (version: "v1" | "v1alpha"): grpc.ServiceDefinition => ({
  ServerReflectionInfo: {
    path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
    requestStream: true,
    responseStream: true,
    ...passThrough
  }
})
