/**
 * Serve a contract over gRPC (`@grpc/grpc-js`, an optional peer dependency loaded only by this entry
 * point): the gRPC service the contract's `Protobuf.toProto` describes, so clients in any language call
 * it with stubs generated from that `.proto`.
 *
 * ```ts
 * const Main = Layer.mergeAll(
 *   Server.layer(Greeter, { name: "greeter" }),                              // native protocol
 *   GrpcServer.layer(Greeter, { name: "greeter", package: "greeter.v1" })    // gRPC, same handlers
 * ).pipe(Layer.provide(GreeterLive), Layer.provide(Defaults.layer))
 * ```
 *
 * The handlers, server middleware (`Server.layerMiddleware`, `AuthMiddleware`), `Metadata.currentCall`
 * and deadlines behave as on the native server. Messages are encoded by the protobuf codec compiled from
 * the contract's Schemas (no proto-loader, no generated code). Standard `grpc.health.v1.Health` and server
 * reflection (v1 and v1alpha) are served beside the contract. The node is registered with
 * `protocol: "grpc"` so effect-micro clients with `GrpcClient.layer` reach it too.
 * Mapping tables (types, status codes, metadata, deadlines): docs/grpc.md.
 *
 * @since 0.1.0
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import type * as grpc from "@grpc/grpc-js"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { TransportError } from "../../Errors.js"
import type { Node, Registry, RegistryError, Service } from "../../Registry.js"
import { PROTOCOL, SERVICE_METADATA_KEY } from "./internal/nodeMetadata.js"
import * as internal from "./internal/server.js"

/**
 * The `protocol` node metadata of gRPC nodes (the native server registers `effect-micro/1`).
 * @since 0.1.0
 * @category constants
 */
export const protocol: typeof PROTOCOL = PROTOCOL

/**
 * The node metadata key holding the full gRPC service name (`package.Service`) method paths start with.
 * @since 0.1.0
 * @category constants
 */
export const serviceMetadataKey: typeof SERVICE_METADATA_KEY = SERVICE_METADATA_KEY

/**
 * @since 0.1.0
 * @category models
 */
export interface GrpcServerOptions {
  /** Service name clients resolve (the registry's name, not the `.proto` one). */
  readonly name: string
  /** Version registered for the service. Default "latest". */
  readonly version?: string | undefined
  /** `host:port` to listen on. Default "0.0.0.0:0" (all interfaces, a free port). */
  readonly address?: string | undefined
  /** Address to register instead of the bound one (default: the bound one, or a LAN IPv4 for 0.0.0.0). */
  readonly advertise?: string | undefined
  /** Node id. Default `<name>-grpc-<random>`. */
  readonly id?: string | undefined
  /** Metadata registered with the service and on its node (beside `protocol` and `grpc.service`). Default: none. */
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /** `package` of the `.proto` (as `Protobuf.toProto`'s option). Default: none. */
  readonly package?: string | undefined
  /** Name of the `.proto` `service` (as `Protobuf.toProto`'s option). Default "Service". */
  readonly serviceName?: string | undefined
  /** Registration TTL. Default 90 seconds. */
  readonly registerTtl?: Duration.DurationInput | undefined
  /** Re-registration interval. Default 30 seconds. */
  readonly registerInterval?: Duration.DurationInput | undefined
  /** Set false to serve without registering. Default true. */
  readonly register?: boolean | undefined
  /** How long shutdown waits for calls in flight before they are stopped with UNAVAILABLE. Default 10 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Largest request message accepted, in bytes. Default 4 MiB (grpc-js's). */
  readonly maxReceiveMessageSize?: number | undefined
  /** Serve `grpc.health.v1.Health`. Default true. */
  readonly health?: boolean | undefined
  /** Serve server reflection (v1 and v1alpha). Default true. */
  readonly reflection?: boolean | undefined
  /** Server credentials (TLS). Default: insecure (plaintext HTTP/2). */
  readonly credentials?: grpc.ServerCredentials | undefined
  /** Further grpc-js channel options (keepalive, concurrency …). Default: none. */
  readonly channelOptions?: grpc.ChannelOptions | undefined
}

/**
 * A running gRPC server.
 * @since 0.1.0
 * @category models
 */
export interface GrpcServerInfo {
  /** The registered (dialable) address. */
  readonly address: string
  /** The bound address. */
  readonly listenAddress: string
  /** The full gRPC service name (`package.Service`). */
  readonly grpcService: string
  /** The `.proto` text this server serves (what `Protobuf.toProto` prints for the same options). */
  readonly proto: string
  readonly node: Node
  readonly service: Service
}

/**
 * @since 0.1.0
 * @category tags
 */
export class GrpcServer extends Context.Tag("effect-micro/GrpcServer")<GrpcServer, GrpcServerInfo>() {}

/**
 * Starts serving a contract over gRPC in the current scope. Fails with `TransportError` (`listen`) when
 * the address cannot be bound; dies when a handler is missing or a Schema has no protobuf mapping.
 * @since 0.1.0
 * @category constructors
 */
export const make: <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: GrpcServerOptions
) => Effect.Effect<GrpcServerInfo, TransportError | RegistryError, Scope.Scope | Registry | Rpc.ToHandler<Rpcs>> =
  internal.make

/**
 * A layer serving a contract over gRPC for as long as it is alive.
 * @since 0.1.0
 * @category layers
 */
export const layer = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: GrpcServerOptions
): Layer.Layer<GrpcServer, TransportError | RegistryError, Registry | Rpc.ToHandler<Rpcs>> =>
  Layer.scoped(GrpcServer, internal.make(group, options))
