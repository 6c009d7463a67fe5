/**
 * The gRPC server behind `GrpcServer.make`: routes built as the native server builds them (handlers from
 * the context, one runtime per endpoint), a grpc-js `Server` with generic service definitions, the health
 * and reflection services, registration, and the graceful stop.
 *
 * @internal
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import { Server as GrpcJsServer, ServerCredentials } from "@grpc/grpc-js"
import type * as grpc from "@grpc/grpc-js"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { schemasOf } from "../../../Contract.js"
import { ServiceUnavailable, TransportError } from "../../../Errors.js"
import { planContract } from "../../../internal/codec/protobuf/contract.js"
import { fileDescriptor } from "../../../internal/codec/protobuf/descriptor.js"
import { emit } from "../../../internal/codec/protobuf/emit.js"
import { errorMessage, randomId } from "../../../internal/common/text.js"
import { keepRegistered, registrationDefaults } from "../../../internal/registry/registration.js"
import { DeadlineWheel } from "../../../internal/rpc/deadlines.js"
import { compileEndpoint } from "../../../internal/rpc/endpoint.js"
import { HandlerPool } from "../../../internal/rpc/handlerPool.js"
import { advertisedAddress } from "../../../internal/transport/address.js"
import { currentCallRef } from "../../../Metadata.js"
import * as Protobuf from "../../../Protobuf.js"
import type { RegistryError, Service as RegisteredService } from "../../../Registry.js"
import { Registry } from "../../../Registry.js"
import { ServerMiddleware } from "../../../Server.js"
import type { GrpcServerInfo, GrpcServerOptions } from "../GrpcServer.js"
import type { GrpcRoute, GrpcShared } from "./calls.js"
import { grpcHandler } from "./calls.js"
import * as Health from "./health.js"
import * as Reflection from "./reflection.js"
import { typeUrl } from "./status.js"

export const defaults = {
  version: "latest",
  address: "0.0.0.0:0",
  registerTtl: registrationDefaults.ttl,
  registerInterval: registrationDefaults.interval,
  drainTimeout: Duration.seconds(10),
  /** After the drain, how long grpc-js may take to close its sessions before they are destroyed. */
  shutdownGrace: Duration.seconds(1)
} as const

const passThrough = {
  requestSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  requestDeserialize: (bytes: Buffer) => bytes,
  responseSerialize: (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  responseDeserialize: (bytes: Buffer) => bytes
}

const bind = (
  server: GrpcJsServer,
  address: string,
  credentials: grpc.ServerCredentials
): Effect.Effect<number, TransportError> =>
  Effect.async<number, TransportError>((resume) => {
    server.bindAsync(address, credentials, (error, port) => {
      if (error !== null) resume(Effect.fail(TransportError.of("listen", address, error.message)))
      else resume(Effect.succeed(port))
    })
  })

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: GrpcServerOptions
): Effect.Effect<GrpcServerInfo, TransportError | RegistryError, Scope.Scope | Registry | Rpc.ToHandler<Rpcs>> =>
  Effect.gen(function*() {
    const registry = yield* Registry
    const wrappers = yield* ServerMiddleware
    const runtime = yield* Effect.runtime<never>()
    const plan = yield* Effect.try({
      try: () => planContract(group, { package: options.package, serviceName: options.serviceName }),
      catch: (cause) => cause
    }).pipe(
      Effect.orDieWith((cause) => new Error(`gRPC: the contract has no protobuf mapping: ${errorMessage(cause)}`))
    )
    const grpcService = plan.package === undefined ? plan.serviceName : `${plan.package}.${plan.serviceName}`
    const proto = emit({ package: plan.package, serviceName: plan.serviceName, named: plan.named, rpcs: plan.rpcs })

    const deadlines = new DeadlineWheel(yield* Effect.clock)
    yield* Effect.forkScoped(deadlines.run)
    const shared: GrpcShared = {
      service: options.name,
      wrappers,
      deadlines,
      frameworkUrl: typeUrl(plan.package, plan.frameworkError ?? "MicroError"),
      running: new Set(),
      onIdle: undefined,
      draining: false
    }

    const definition: Record<string, grpc.MethodDefinition<Uint8Array, Uint8Array>> = {}
    const implementation: grpc.UntypedServiceImplementation = {}
    const lines = new Map(plan.rpcs.map((line) => [line.tag, line]))
    const routes: Array<GrpcRoute> = []
    for (const rpc of group.requests.values() as Iterable<Rpc.AnyWithProps>) {
      const entry = runtime.context.unsafeMap.get(rpc.key) as Rpc.Handler<string> | undefined
      if (entry === undefined) return yield* Effect.dieMessage(`no handler for endpoint "${rpc._tag}"`)
      const endpointRuntime = Runtime.make({
        context: Context.merge(runtime.context, entry.context),
        fiberRefs: runtime.fiberRefs,
        runtimeFlags: runtime.runtimeFlags
      })
      const line = lines.get(rpc._tag)!
      const schemas = schemasOf(rpc)
      const route: GrpcRoute = {
        tag: rpc._tag,
        method: line.name,
        schemas,
        compiled: compileEndpoint(schemas, Protobuf.codec),
        handler: entry.handler,
        pool: new HandlerPool(endpointRuntime, currentCallRef),
        errorUrl: line.error === undefined ? undefined : typeUrl(plan.package, line.error)
      }
      definition[line.name] = {
        path: `/${grpcService}/${line.name}`,
        requestStream: line.clientStream,
        responseStream: line.serverStream,
        originalName: rpc._tag,
        ...passThrough
      }
      implementation[line.name] = grpcHandler(shared, route)
      routes.push(route)
    }

    const server = new GrpcJsServer({
      "grpc.max_receive_message_length": options.maxReceiveMessageSize ?? 4 * 1024 * 1024,
      ...options.channelOptions
    })
    server.addService(definition, implementation)
    const health = new Health.HealthState(new Set(["", grpcService, options.name]))
    if (options.health !== false) server.addService(Health.definition, health.implementation)
    if (options.reflection !== false) {
      const fileName = `${grpcService.replace(/\./g, "/")}.proto`
      const reflection = new Reflection.Reflection(fileName, fileDescriptor(plan, fileName), plan, [
        grpcService,
        ...(options.health !== false ? ["grpc.health.v1.Health"] : []),
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection"
      ])
      for (const version of ["v1", "v1alpha"] as const) {
        server.addService(Reflection.definition(version), { ServerReflectionInfo: reflection.handler })
      }
    }

    // Graceful stop, registered before binding so it always runs: NOT_SERVING, refuse new calls (retryable
    // UNAVAILABLE), wait for the calls in flight (at most `drainTimeout`), stop what is left, close.
    const drainTimeout = Duration.decode(options.drainTimeout ?? defaults.drainTimeout)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        shared.draining = true
        health.set(false)
        if (shared.running.size > 0) {
          const idle = yield* Deferred.make<void>()
          shared.onIdle = () => Deferred.unsafeDone(idle, Effect.void)
          yield* Effect.interruptible(Deferred.await(idle)).pipe(Effect.timeoutOption(drainTimeout))
        }
        for (const running of [...shared.running]) {
          running.abort(ServiceUnavailable.of("server stopped", options.name))
        }
        for (const route of routes) route.pool.close()
        health.close()
        yield* Effect.async<void>((resume) => {
          server.tryShutdown(() => resume(Effect.void))
        }).pipe(
          Effect.interruptible,
          Effect.timeoutOption(defaults.shutdownGrace),
          Effect.zipRight(Effect.sync(() => server.forceShutdown()))
        )
      })
    )

    const requested = options.address ?? defaults.address
    const port = yield* bind(server, requested, options.credentials ?? ServerCredentials.createInsecure())
    const host = requested.slice(0, requested.lastIndexOf(":"))
    const listenAddress = `${host}:${port}`
    const address = advertisedAddress(listenAddress, options.advertise)
    health.set(true)

    const node = {
      id: options.id ?? `${options.name}-grpc-${randomId()}`,
      address,
      metadata: {
        transport: "grpc",
        protocol: "grpc",
        "grpc.service": grpcService,
        ...options.metadata
      }
    }
    const service: RegisteredService = {
      name: options.name,
      version: options.version ?? defaults.version,
      metadata: options.metadata ?? {},
      endpoints: plan.rpcs.map((line) => ({
        name: line.tag,
        metadata: {
          shape: line.clientStream
            ? (line.serverStream ? "bidi" : "client-stream")
            : (line.serverStream ? "server-stream" : "unary"),
          "grpc.method": line.name
        }
      })),
      nodes: [node]
    }

    if (options.register !== false) {
      // Registered last, so it runs first on shutdown: clients stop picking this node before it drains.
      yield* keepRegistered(registry, service, {
        ttl: options.registerTtl,
        interval: options.registerInterval,
        label: `${options.name} (gRPC)`
      })
    }

    return { address, listenAddress, grpcService, proto, node, service } satisfies GrpcServerInfo
  })
