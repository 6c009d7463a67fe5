/**
 * Foreign clients against `GrpcServer`: `@grpc/grpc-js` with `@grpc/proto-loader` loading the `.proto` our
 * contract emits (what a Node service would do), over loopback. The four call shapes, typed endpoint errors
 * in `grpc-status-details-bin`, framework errors as status codes, deadlines and cancellation stopping the
 * handler, metadata both ways, auth middleware, health and reflection, registration.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import * as protobuf from "protobufjs"
import * as AuthMiddleware from "../src/AuthMiddleware.js"
import { Auth, AuthRules, Protobuf, Registry } from "../src/index.js"
import * as GrpcServer from "../src/plugins/grpc/GrpcServer.js"
import { handlers as secureHandlers, rules, Secure } from "./process/fixtures/authContract.js"
import { eventually } from "./support/eventually.js"
import { failByMetadata, handlers, Interop, interrupted, started } from "./support/grpcContract.js"

const require = createRequire(import.meta.url)
const PACKAGE = "interop.v1"

const HEALTH_PROTO = `syntax = "proto3"; package grpc.health.v1;
  message HealthCheckRequest { string service = 1; }
  message HealthCheckResponse { enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; } ServingStatus status = 1; }
  service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); rpc Watch(HealthCheckRequest) returns (stream HealthCheckResponse); }`

const REFLECTION_PROTO = `syntax = "proto3"; package grpc.reflection.v1;
          message ServerReflectionRequest { string host = 1; oneof message_request { string file_by_filename = 3; string file_containing_symbol = 4; string list_services = 7; } }
          message FileDescriptorResponse { repeated bytes file_descriptor_proto = 1; }
          message ServiceResponse { string name = 1; }
          message ListServiceResponse { repeated ServiceResponse service = 1; }
          message ErrorResponse { int32 error_code = 1; string error_message = 2; }
          message ServerReflectionResponse { string valid_host = 1; ServerReflectionRequest original_request = 2;
            oneof message_response { FileDescriptorResponse file_descriptor_response = 4; ListServiceResponse list_services_response = 6; ErrorResponse error_response = 7; } }
          service ServerReflection { rpc ServerReflectionInfo(stream ServerReflectionRequest) returns (stream ServerReflectionResponse); }`

const descriptorRoot = protobuf.Root.fromJSON(
  JSON.parse(fs.readFileSync(require.resolve("protobufjs/google/protobuf/descriptor.json"), "utf8"))
)

/** Writes `proto` to a temp dir and loads it with proto-loader, as a foreign Node client would. */
const loadClient = (proto: string, service: string, address: string): grpc.Client => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-grpc-"))
  const file = path.join(dir, "contract.proto")
  fs.writeFileSync(file, proto)
  const definition = protoLoader.loadSync(file, { keepCase: true, longs: Number, defaults: true, oneofs: true })
  fs.rmSync(dir, { recursive: true, force: true })
  const loaded = grpc.loadPackageDefinition(definition) as any
  const Ctor = service.split(".").reduce((node, part) => node[part], loaded) as typeof grpc.Client
  return new Ctor(address, grpc.credentials.createInsecure())
}

const unary = (
  client: any,
  method: string,
  request: object,
  options?: { metadata?: grpc.Metadata; deadline?: number }
) =>
  Effect.async<{ readonly value: any; readonly trailers: grpc.Metadata | undefined }, grpc.ServiceError>((resume) => {
    let trailers: grpc.Metadata | undefined
    const call = client[method](
      request,
      options?.metadata ?? new grpc.Metadata(),
      options?.deadline === undefined ? {} : { deadline: Date.now() + options.deadline },
      (error: grpc.ServiceError | null, value: any) =>
        resume(error === null ? Effect.succeed({ value, trailers }) : Effect.fail(error))
    )
    call.on("status", (status: grpc.StatusObject) => (trailers = status.metadata))
    return Effect.sync(() => call.cancel())
  })

const collect = (call: grpc.ClientReadableStream<any>) =>
  Effect.async<Array<any>, grpc.ServiceError>((resume) => {
    const items: Array<any> = []
    call.on("data", (item) => items.push(item))
    call.on("error", (error: grpc.ServiceError) => resume(Effect.fail(error)))
    call.on("end", () => resume(Effect.succeed(items)))
    return Effect.sync(() => call.cancel())
  })

const closeClient = (client: grpc.Client) => Effect.addFinalizer(() => Effect.sync(() => client.close()))

/** Decodes `grpc-status-details-bin` with the contract's own `.proto` (protobufjs), as any foreign client could. */
const statusDetails = (proto: string, trailers: grpc.Metadata) => {
  const root = protobuf.parse(proto, { keepCase: true }).root
  root.add(
    protobuf.parse(
      `syntax = "proto3"; package google.rpc; message Any { string type_url = 1; bytes value = 2; }
       message Status { int32 code = 1; string message = 2; repeated Any details = 3; }`,
      { keepCase: true }
    ).root.lookup("google") as protobuf.Namespace
  )
  const bytes = trailers.get("grpc-status-details-bin")[0] as Buffer
  const status = root.lookupType("google.rpc.Status").decode(bytes) as any
  const detail = status.details[0]
  const typeName = detail.type_url.slice("type.googleapis.com/".length)
  return { status, typeName, error: root.lookupType(typeName).toObject(root.lookupType(typeName).decode(detail.value)) }
}

const Served = GrpcServer.layer(Interop, {
  name: "interop",
  package: PACKAGE,
  serviceName: "Interop",
  address: "127.0.0.1:0"
}).pipe(Layer.provide(handlers), Layer.provide(failByMetadata))

describe("GrpcServer: grpc-js + proto-loader client from the emitted .proto", () => {
  layer(Layer.provideMerge(Served, Registry.layerMemory), { timeout: 30_000, excludeTestServices: true })((it) => {
    it.scoped("the served .proto is Protobuf.toProto's", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        expect(server.proto).toBe(Protobuf.toProto(Interop, { package: PACKAGE, serviceName: "Interop" }))
        expect(server.grpcService).toBe("interop.v1.Interop")
      }))

    it.scoped("unary with metadata in, typed reply out", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress)
        yield* closeClient(client)
        const metadata = new grpc.Metadata()
        metadata.set("x-caller", "node-client")
        const { value } = yield* unary(client, "Hello", { name: "Ada" }, { metadata })
        expect(value).toEqual({ greeting: "Hello Ada", caller: "node-client" })
      }))

    it.scoped("server streaming, client streaming and bidi", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress) as any
        yield* closeClient(client)
        expect(yield* collect(client.Count({ to: 5 }))).toEqual([1, 2, 3, 4, 5].map((n) => ({ n })))
        // 200 messages: more than the inbox high-water mark, so the stream is paused and resumed.
        const sum = yield* Effect.async<any, grpc.ServiceError>((resume) => {
          const call = client.Sum((error: grpc.ServiceError | null, value: any) =>
            resume(error === null ? Effect.succeed(value) : Effect.fail(error))
          )
          for (let i = 1; i <= 200; i++) call.write({ value: i })
          call.end()
        })
        expect(sum).toEqual({ total: 20100, count: 200 })
        const chat = client.Chat()
        const replies = collect(chat)
        chat.write({ text: "hello" })
        chat.write({ text: "grpc" })
        chat.end()
        expect(yield* replies).toEqual([{ text: "HELLO" }, { text: "GRPC" }])
      }))

    it.scoped("a typed endpoint error: UNKNOWN with the error in grpc-status-details-bin", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress)
        yield* closeClient(client)
        const error = yield* Effect.flip(unary(client, "Hello", { name: "nobody" }))
        expect(error.code).toBe(grpc.status.UNKNOWN)
        expect(error.details).toBe("UserNotFound")
        const decoded = statusDetails(server.proto, error.metadata)
        expect(decoded.status.code).toBe(grpc.status.UNKNOWN)
        expect(decoded.typeName).toBe("interop.v1.UserNotFound")
        expect(decoded.error).toEqual({ id: "nobody", reason: "no such user" })
      }))

    it.scoped("framework errors map to status codes; the MicroError rides in the details", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress)
        yield* closeClient(client)
        const expected: Record<string, grpc.status> = {
          NotFound: grpc.status.NOT_FOUND,
          Timeout: grpc.status.DEADLINE_EXCEEDED,
          Unauthorized: grpc.status.UNAUTHENTICATED,
          Forbidden: grpc.status.PERMISSION_DENIED,
          BadRequest: grpc.status.INVALID_ARGUMENT,
          ServiceUnavailable: grpc.status.UNAVAILABLE,
          Conflict: grpc.status.INTERNAL
        }
        for (const [kind, code] of Object.entries(expected)) {
          const metadata = new grpc.Metadata()
          metadata.set("x-fail", kind)
          const error = yield* Effect.flip(unary(client, "Hello", { name: "Ada" }, { metadata }))
          expect([kind, error.code]).toEqual([kind, code])
          expect(error.details).toBe(`rejected by middleware (${kind})`)
          const decoded = statusDetails(server.proto, error.metadata)
          expect(decoded.typeName).toBe("interop.v1.MicroError")
          expect(Object.values(decoded.error)[0]).toMatchObject({ detail: `rejected by middleware (${kind})` })
        }
        // A defect: INTERNAL, the cause not leaked beyond its description.
        const died = yield* Effect.flip(unary(client, "Fail", { kind: "die" }))
        expect(died.code).toBe(grpc.status.INTERNAL)
        expect(died.details).toContain("handler died")
      }))

    it.scoped("a malformed request is INVALID_ARGUMENT; an unknown method UNIMPLEMENTED", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const raw = new grpc.Client(server.listenAddress, grpc.credentials.createInsecure())
        yield* closeClient(raw)
        const call = (method: string, bytes: Buffer) =>
          Effect.async<Buffer, grpc.ServiceError>((resume) => {
            raw.makeUnaryRequest(
              method,
              (b: Buffer) => b,
              (b: Buffer) => b,
              bytes,
              (error, value) => resume(error === null ? Effect.succeed(value!) : Effect.fail(error))
            )
          })
        // Field 1 (name, a string) sent as a varint.
        const bad = yield* Effect.flip(call("/interop.v1.Interop/Hello", Buffer.from([0x08, 0x01])))
        expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT)
        const unknown = yield* Effect.flip(call("/interop.v1.Interop/Nope", Buffer.alloc(0)))
        expect(unknown.code).toBe(grpc.status.UNIMPLEMENTED)
      }))

    it.scoped("hostile input: an oversized message is refused, a malformed reflection request answered, serving goes on", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const raw = new grpc.Client(server.listenAddress, grpc.credentials.createInsecure())
        yield* closeClient(raw)
        const oversized = yield* Effect.async<Buffer, grpc.ServiceError>((resume) => {
          raw.makeUnaryRequest(
            "/interop.v1.Interop/Hello",
            (b: Buffer) => b,
            (b: Buffer) => b,
            Buffer.alloc(5 * 1024 * 1024),
            (error, value) => resume(error === null ? Effect.succeed(value!) : Effect.fail(error))
          )
        }).pipe(Effect.flip)
        expect(oversized.code).toBe(grpc.status.RESOURCE_EXHAUSTED)
        const reflection = raw.makeBidiStreamRequest(
          "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
          (b: Buffer) => b,
          (b: Buffer) => b
        )
        const replies = collect(reflection)
        reflection.write(Buffer.from([0x3a, 0xff, 0xff, 0xff])) // list_services with a length past the end
        reflection.end()
        const [reply] = yield* replies
        const response = protobuf.parse(REFLECTION_PROTO, { keepCase: true }).root
          .lookupType("grpc.reflection.v1.ServerReflectionResponse").decode(reply as Buffer) as any
        expect(response.error_response.error_code).toBe(grpc.status.INVALID_ARGUMENT)
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress)
        yield* closeClient(client)
        expect((yield* unary(client, "Hello", { name: "still" })).value.greeting).toBe("Hello still")
      }))

    it.scoped("grpc-timeout becomes the handler's deadline: DEADLINE_EXCEEDED and the handler is stopped", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress)
        yield* closeClient(client)
        const error = yield* Effect.flip(unary(client, "Slow", { millis: 0, token: "deadline" }, { deadline: 200 }))
        expect(error.code).toBe(grpc.status.DEADLINE_EXCEEDED)
        yield* eventually(Effect.sync(() => interrupted.has("deadline")), (done) => done)
        // Within the deadline the call completes.
        const { value } = yield* unary(client, "Slow", { millis: 10, token: "fast" }, { deadline: 5_000 })
        expect(value).toEqual({ value: "done" })
      }))

    it.scoped("a client cancel interrupts the handler", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress) as any
        yield* closeClient(client)
        const call = client.Slow({ millis: 0, token: "cancel" }, () => {})
        // Cancel once the handler runs.
        yield* eventually(Effect.sync(() => started.has("cancel")), (done) => done)
        call.cancel()
        yield* eventually(Effect.sync(() => interrupted.has("cancel")), (done) => done)
      }))

    it.scoped("standard health: Check and Watch", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(HEALTH_PROTO, "grpc.health.v1.Health", server.listenAddress) as any
        yield* closeClient(client)
        expect((yield* unary(client, "Check", { service: "" })).value).toEqual({ status: 1 })
        expect((yield* unary(client, "Check", { service: "interop.v1.Interop" })).value).toEqual({ status: 1 })
        const unknown = yield* Effect.flip(unary(client, "Check", { service: "nope" }))
        expect(unknown.code).toBe(grpc.status.NOT_FOUND)
        const watch = client.Watch({ service: "interop" })
        const first = yield* Effect.async<any>((resume) => {
          watch.once("data", (item: any) => resume(Effect.succeed(item)))
        })
        watch.on("error", () => {})
        watch.cancel()
        expect(first).toEqual({ status: 1 })
      }))

    it.scoped("server reflection: list services, then the file descriptor of a symbol, readable by protobufjs", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer

        for (const version of ["v1", "v1alpha"]) {
          const client = loadClient(
            REFLECTION_PROTO.replace("package grpc.reflection.v1;", `package grpc.reflection.${version};`),
            `grpc.reflection.${version}.ServerReflection`,
            server.listenAddress
          ) as any
          yield* closeClient(client)
          const stream = client.ServerReflectionInfo()
          const replies = collect(stream)
          stream.write({ list_services: "" })
          stream.write({ file_containing_symbol: "interop.v1.Interop" })
          stream.write({ file_containing_symbol: "interop.v1.Nope" })
          stream.end()
          const [list, file, missing] = yield* replies
          expect(list.list_services_response.service.map((s: any) => s.name)).toEqual([
            "interop.v1.Interop",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection"
          ])
          expect(missing.error_response.error_code).toBe(grpc.status.NOT_FOUND)
          // The descriptor is what tools build their stubs from: protobufjs reads it into the same service.
          const descriptor = file.file_descriptor_response.file_descriptor_proto[0] as Buffer
          const decoded = descriptorRoot.lookupType("google.protobuf.FileDescriptorProto").decode(descriptor) as any
          expect(decoded.package).toBe("interop.v1")
          expect(decoded.service[0].method.map((m: any) => [m.name, !!m.clientStreaming, !!m.serverStreaming]))
            .toEqual([
              ["Hello", false, false],
              ["Count", false, true],
              ["Sum", true, false],
              ["Chat", true, true],
              ["Slow", false, false],
              ["Fail", false, false]
            ])
        }
      }))

    it.scoped("the node is registered with the grpc protocol marker and the full service name", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.Registry
        const [service] = yield* registry.getService("interop")
        expect(service!.nodes[0]!.metadata).toMatchObject({ protocol: "grpc", "grpc.service": "interop.v1.Interop" })
        expect(service!.endpoints.map((e) => e.name)).toEqual(["Hello", "Count", "Sum", "Chat", "Slow", "Fail"])
      }))
  })
})

describe("GrpcServer: auth middleware applies to gRPC calls", () => {
  const AuthLive = Layer.mergeAll(
    Auth.layerMemory({ accounts: [{ id: "caller", secret: "caller-secret", type: "service", scopes: [] }] }),
    AuthRules.layer(rules)
  ).pipe(Layer.orDie)
  const SecureServed = GrpcServer.layer(Secure, { name: "secure", address: "127.0.0.1:0", register: false }).pipe(
    Layer.provide(secureHandlers),
    Layer.provide(AuthMiddleware.layerServer())
  )
  layer(Layer.provideMerge(SecureServed, Layer.mergeAll(Registry.layerMemory, AuthLive)), {
    timeout: 30_000,
    excludeTestServices: true
  })((it) => {
    it.scoped("no token → UNAUTHENTICATED; a bearer token in gRPC metadata → the account", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const client = loadClient(server.proto, "Service", server.listenAddress)
        yield* closeClient(client)
        expect((yield* unary(client, "Ping", {})).value).toEqual({ value: "pong" })
        const denied = yield* Effect.flip(unary(client, "WhoAmI", {}))
        expect(denied.code).toBe(grpc.status.UNAUTHENTICATED)
        const auth = yield* Auth.Auth
        const token = yield* Effect.orDie(auth.token({ id: "caller", secret: "caller-secret" }))
        const metadata = new grpc.Metadata()
        metadata.set("authorization", `Bearer ${token.accessToken}`)
        const { value } = yield* unary(client, "WhoAmI", {}, { metadata })
        expect(value.account).toBe("caller")
      }))
  })
})

describe("GrpcServer: graceful stop", () => {
  layer(Registry.layerMemory, { timeout: 30_000, excludeTestServices: true })((it) => {
    it.scoped("NOT_SERVING, new calls refused as not started (UNAVAILABLE), calls still running stopped at drainTimeout", () =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const server = yield* GrpcServer.make(Interop, {
          name: "draining",
          package: PACKAGE,
          serviceName: "Interop",
          address: "127.0.0.1:0",
          drainTimeout: "500 millis"
        }).pipe(Scope.extend(scope), Effect.provide(handlers))
        const client = loadClient(server.proto, "interop.v1.Interop", server.listenAddress) as any
        yield* closeClient(client)
        const health = loadClient(HEALTH_PROTO, "grpc.health.v1.Health", server.listenAddress)
        yield* closeClient(health)
        const inFlight = yield* Effect.fork(Effect.flip(unary(client, "Slow", { millis: 0, token: "drain" })))
        yield* eventually(Effect.sync(() => started.has("drain")), (running) => running)
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        // Deregistered first, then NOT_SERVING while the call in flight may still finish.
        yield* eventually(
          Effect.map(unary(health, "Check", { service: "" }), ({ value }) => value.status),
          (status) => status === 2
        )
        const registry = yield* Registry.Registry
        expect(yield* Effect.flip(registry.getService("draining"))).toMatchObject({ _tag: "ServiceNotFound" })
        const refused = yield* Effect.flip(unary(client, "Hello", { name: "late" }))
        expect(refused.code).toBe(grpc.status.UNAVAILABLE)
        expect(refused.metadata.get("effect-micro-error")).toEqual(["not-started"])
        const stopped = yield* Fiber.join(inFlight)
        expect([stopped.code, stopped.details]).toEqual([grpc.status.UNAVAILABLE, "server stopped"])
        yield* Fiber.join(closing)
        expect(interrupted.has("drain")).toBe(true)
      }))
  })
})
