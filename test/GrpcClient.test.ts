/**
 * `Client.make` reaching gRPC nodes through `GrpcClient.layer`: (1) a gRPC server written by hand with
 * grpc-js + proto-loader from the contract's `.proto` (a foreign service: no effect-micro trailers), and
 * (2) our `GrpcServer` (typed errors decoded back into their classes), next to a native node of the same
 * service. Selection, retries past a dead node, deadlines and cancellation, metadata.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import { Client, Codec, Metadata, Protobuf, Registry, Selector, Server, Transport } from "../src/index.js"
import * as GrpcClient from "../src/plugins/grpc/GrpcClient.js"
import * as GrpcServer from "../src/plugins/grpc/GrpcServer.js"
import { eventually } from "./support/eventually.js"
import { failByMetadata, handlers, Interop, interrupted, started, UserNotFound } from "./support/grpcContract.js"

const PACKAGE = "interop.v1"
const proto = Protobuf.toProto(Interop, { package: PACKAGE, serviceName: "Interop" })

/** Cancellations the hand-written server saw. */
const foreignCancelled = new Set<string>()

/** A gRPC server implemented by hand from the `.proto` (proto-loader), as another team's Node service would be. */
const foreignServerAt = (bindAddress: string) =>
  Effect.acquireRelease(
    Effect.async<{ readonly server: grpc.Server; readonly address: string }, Error>((resume) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-grpc-foreign-"))
      const file = path.join(dir, "contract.proto")
      fs.writeFileSync(file, proto)
      const definition = protoLoader.loadSync(file, { keepCase: true, longs: Number, defaults: true })
      fs.rmSync(dir, { recursive: true, force: true })
      const loaded = grpc.loadPackageDefinition(definition) as any
      const server = new grpc.Server()
      server.addService(loaded.interop.v1.Interop.service, {
        Hello: (call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) => {
          if (call.request.name === "nobody") return callback({ code: grpc.status.NOT_FOUND, details: "no such user" })
          callback(null, {
            greeting: `Hi ${call.request.name}`,
            caller: String(call.metadata.get("x-caller")[0] ?? "")
          })
        },
        Count: (call: grpc.ServerWritableStream<any, any>) => {
          for (let n = 1; n <= call.request.to; n++) call.write({ n })
          call.end()
        },
        Sum: (call: grpc.ServerReadableStream<any, any>, callback: grpc.sendUnaryData<any>) => {
          let total = 0
          let count = 0
          call.on("data", (item) => {
            total += item.value
            count++
          })
          call.on("end", () => callback(null, { total, count }))
        },
        Chat: (call: grpc.ServerDuplexStream<any, any>) => {
          call.on("data", (item) => call.write({ text: `${item.text}!` }))
          call.on("end", () => call.end())
        },
        Slow: (call: grpc.ServerUnaryCall<any, any>) => {
          call.on("cancelled", () => foreignCancelled.add(call.request.token))
        },
        Fail: (_call: grpc.ServerUnaryCall<any, any>, callback: grpc.sendUnaryData<any>) =>
          callback({ code: grpc.status.INVALID_ARGUMENT, details: "bad kind" })
      })
      server.bindAsync(
        bindAddress,
        grpc.ServerCredentials.createInsecure(),
        (error, port) =>
          resume(error === null ? Effect.succeed({ server, address: `127.0.0.1:${port}` }) : Effect.fail(error))
      )
    }),
    ({ server }) => Effect.sync(() => server.forceShutdown())
  )
const foreignServer = foreignServerAt("127.0.0.1:0")

/** A loopback port with nothing listening (a node that died). */
const deadAddress = Effect.async<string>((resume) => {
  const probe = net.createServer().listen(0, "127.0.0.1", () => {
    const port = (probe.address() as net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(`127.0.0.1:${port}`)))
  })
})

const grpcNode = (id: string, address: string) => ({
  id,
  address,
  metadata: { protocol: "grpc", "grpc.service": "interop.v1.Interop" }
})

// Round robin: successive calls alternate between the nodes, so the dead one is picked (then ejected).
const Infra = Layer.mergeAll(Registry.layerMemory, Selector.layerRoundRobin(), Transport.layerTcp(), Codec.layer)
const Runtime = GrpcClient.layer().pipe(Layer.provideMerge(Infra))

describe("GrpcClient → a hand-written grpc-js server (proto-loader)", () => {
  layer(Runtime, { timeout: 30_000, excludeTestServices: true })((it) => {
    it.scoped("four shapes, metadata, status codes as framework errors, retries past a dead node", () =>
      Effect.gen(function*() {
        const foreign = yield* foreignServer
        const registry = yield* Registry.Registry
        yield* registry.register({
          name: "foreign",
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [grpcNode("dead", yield* deadAddress), grpcNode("live", foreign.address)]
        })
        const client = yield* Client.make(Interop, { service: "foreign" })

        for (let i = 0; i < 6; i++) {
          const reply = yield* client.Hello({ name: "Ada" }, { metadata: { "x-caller": "effect" } })
          expect(reply).toEqual({ greeting: "Hi Ada", caller: "effect" })
        }
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(client.Count({ to: 3 })))).toEqual([
          { n: 1 },
          { n: 2 },
          { n: 3 }
        ])
        expect(yield* client.Sum(Stream.range(1, 50).pipe(Stream.map((value) => ({ value }))))).toEqual({
          total: 1275,
          count: 50
        })
        const chat = yield* Stream.runCollect(client.Chat(Stream.make({ text: "a" }, { text: "b" })))
        expect(Chunk.toReadonlyArray(chat)).toEqual([{ text: "a!" }, { text: "b!" }])

        // The dead node was tried (refused: retried on the live one at once) and ejected.
        const runtime = yield* Client.Client
        const dead = runtime.nodes().find((node) => node.address !== foreign.address)
        expect(dead).toMatchObject({ status: "open" })

        const notFound = yield* Effect.flip(client.Hello({ name: "nobody" }))
        expect(notFound).toMatchObject({ _tag: "NotFound", detail: "no such user", service: "foreign" })
        const bad = yield* Effect.flip(client.Fail({ kind: "x" }))
        expect(bad).toMatchObject({ _tag: "BadRequest", detail: "bad kind" })
      }))

    it.scoped("the client's timeout is the gRPC deadline: Timeout here, the call cancelled there", () =>
      Effect.gen(function*() {
        const foreign = yield* foreignServer
        const registry = yield* Registry.Registry
        yield* registry.register({
          name: "slow",
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [grpcNode("slow-1", foreign.address)]
        })
        const client = yield* Client.make(Interop, { service: "slow", retry: false })
        const error = yield* Effect.flip(
          client.Slow({ millis: 0, token: "foreign-deadline" }, { timeout: "300 millis" })
        )
        expect(error).toMatchObject({ _tag: "Timeout" })
        yield* eventually(Effect.sync(() => foreignCancelled.has("foreign-deadline")), (done) => done)
      }))

    it.scoped("a node restarted on its address is reached again at once (no grpc-js reconnect backoff)", () =>
      Effect.gen(function*() {
        const first = yield* Scope.make()
        const { address } = yield* foreignServerAt("127.0.0.1:0").pipe(Scope.extend(first))
        const registry = yield* Registry.Registry
        yield* registry.register({
          name: "restarting",
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [grpcNode("r1", address)]
        })
        const client = yield* Client.make(Interop, { service: "restarting", retry: false })
        expect((yield* client.Hello({ name: "one" })).greeting).toBe("Hi one")
        yield* Scope.close(first, Exit.void)
        const down = yield* Effect.flip(client.Hello({ name: "two" }))
        expect(down).toMatchObject({ _tag: "TransportError" })
        yield* foreignServerAt(address)
        // The first call after the restart gets through: the refused channel was retired and a fresh one dials
        // at once (grpc-js alone fails calls until its reconnect backoff, 1 s and growing, has run out).
        expect((yield* client.Hello({ name: "three" })).greeting).toBe("Hi three")
      }))

    it.scoped("a gRPC node without grpc.service metadata: a clear dial error", () =>
      Effect.gen(function*() {
        const registry = yield* Registry.Registry
        yield* registry.register({
          name: "unnamed",
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [{ id: "u1", address: "127.0.0.1:1", metadata: { protocol: "grpc" } }]
        })
        const client = yield* Client.make(Interop, { service: "unnamed", retry: false })
        const error = yield* Effect.flip(client.Hello({ name: "Ada" }))
        expect(error).toMatchObject({ _tag: "TransportError", reason: "dial" })
        expect(error.message).toContain("grpc.service")
      }))

    it.scoped("a gRPC node called with JSON, or by a client without GrpcClient: clear typed errors", () =>
      Effect.gen(function*() {
        const foreign = yield* foreignServer
        const registry = yield* Registry.Registry
        yield* registry.register({
          name: "typed-errors",
          version: "1",
          metadata: {},
          endpoints: [],
          nodes: [grpcNode("t1", foreign.address)]
        })
        const client = yield* Client.make(Interop, { service: "typed-errors", retry: false })
        const json = yield* Effect.flip(client.Hello({ name: "Ada" }, { contentType: "application/json" }))
        expect(json).toMatchObject({ _tag: "BadRequest" })
        expect(json.message).toContain("gRPC carries protobuf")
        // A plain Client runtime (native protocol only) refuses the node at dial time, naming the fix.
        const plain = yield* Client.make(Interop, { service: "typed-errors", retry: false }).pipe(
          Effect.flatMap((native) => Effect.flip(native.Hello({ name: "Ada" }))),
          Effect.provide(Client.layer())
        )
        expect(plain).toMatchObject({ _tag: "TransportError", reason: "dial" })
        expect(plain.message).toContain("GrpcClient.layer")
      }))
  })
})

describe("GrpcClient → GrpcServer (and a native node of the same service)", () => {
  const Served = Layer.mergeAll(
    GrpcServer.layer(Interop, { name: "interop", package: PACKAGE, serviceName: "Interop", address: "127.0.0.1:0" }),
    Server.layer(Interop, { name: "interop", address: "127.0.0.1:0" })
  ).pipe(Layer.provide(handlers), Layer.provide(failByMetadata))
  layer(Layer.provideMerge(Served, Runtime), { timeout: 30_000, excludeTestServices: true })((it) => {
    it.scoped("typed endpoint errors and framework errors come back as their classes; both nodes serve", () =>
      Effect.gen(function*() {
        const grpcInfo = yield* GrpcServer.GrpcServer
        const nativeInfo = yield* Server.Server
        const registry = yield* Registry.Registry
        const [service] = yield* registry.getService("interop")
        expect(service!.nodes.map((node) => node.metadata.protocol).sort()).toEqual(["effect-micro/1", "grpc"])

        for (const node of [grpcInfo.node, nativeInfo.node]) {
          // `filter.metadata` pins the protocol, to check each node gives the same answers.
          const client = yield* Client.make(Interop, {
            service: "interop",
            filter: { metadata: { protocol: node.metadata.protocol! } }
          })
          const reply = yield* Metadata.withOutgoing(client.Hello({ name: "Ada" }), { "x-caller": "effect" })
          expect(reply).toEqual({ greeting: "Hello Ada", caller: "effect" })
          const typed = yield* Effect.flip(client.Hello({ name: "nobody" }))
          expect(typed).toBeInstanceOf(UserNotFound)
          expect(typed).toMatchObject({ id: "nobody", reason: "no such user" })
          const framework = yield* Effect.flip(client.Hello({ name: "Ada" }, { metadata: { "x-fail": "Forbidden" } }))
          expect(framework).toMatchObject({
            _tag: "Forbidden",
            code: 403,
            detail: "rejected by middleware (Forbidden)"
          })
          const counted = yield* Stream.runCollect(client.Count({ to: 100 }))
          expect(Chunk.size(counted)).toBe(100)
          const chat = yield* Stream.runCollect(client.Chat(Stream.make({ text: "x" })))
          expect(Chunk.toReadonlyArray(chat)).toEqual([{ text: "X" }])
        }
      }))

    it.scoped("interrupting the caller cancels the gRPC call and stops the handler", () =>
      Effect.gen(function*() {
        const grpcInfo = yield* GrpcServer.GrpcServer
        const client = yield* Client.make(Interop, { service: "interop", filter: { metadata: { protocol: "grpc" } } })
        expect(grpcInfo.node.metadata.protocol).toBe("grpc")
        const error = yield* Effect.flip(
          client.Slow({ millis: 0, token: "grpc-client-deadline" }, { timeout: "200 millis", retry: false })
        )
        expect(error).toMatchObject({ _tag: "Timeout" })
        yield* eventually(Effect.sync(() => interrupted.has("grpc-client-deadline")), (done) => done)
        const fiber = yield* Effect.fork(
          client.Slow({ millis: 0, token: "grpc-client-interrupt" }, { timeout: "30 seconds" })
        )
        yield* eventually(Effect.sync(() => started.has("grpc-client-interrupt")), (running) => running)
        yield* Fiber.interrupt(fiber)
        yield* eventually(Effect.sync(() => interrupted.has("grpc-client-interrupt")), (done) => done)
      }))
  })
})
