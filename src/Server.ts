/**
 * Serve a contract: listen on a transport, route calls to the handlers of an `RpcGroup`, run middleware,
 * register with the registry (TTL + re-registration) and stop gracefully.
 *
 * ```ts
 * const GreeterLive = Greeter.toLayer({ Hello: ({ name }) => Effect.succeed(`Hello ${name}`) })
 * const Main = Server.layer(Greeter, { name: "greeter" }).pipe(Layer.provide(GreeterLive))
 * ```
 *
 * Shutdown order (closing the layer's scope): deregister → stop accepting → GOAWAY to clients → wait for
 * calls in flight (at most `drainTimeout`) → interrupt what is left → close connections.
 *
 * @since 0.1.0
 */
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Codecs } from "./Codec.js"
import type { TransportError } from "./Errors.js"
import type { IncomingCall } from "./Metadata.js"
import type { Node, Registry, RegistryError, Service } from "./Registry.js"
import * as internal from "./internal/server.js"
import type { Transport } from "./Transport.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Service name clients resolve. */
  readonly name: string
  /** Default "latest". */
  readonly version?: string | undefined
  /** `host:port` to listen on. Default "0.0.0.0:0" (all interfaces, a free port). */
  readonly address?: string | undefined
  /** Address to register instead of the bound one (default: the bound one, or a LAN IPv4 for 0.0.0.0). */
  readonly advertise?: string | undefined
  /** Node id. Default `<name>-<random>`. */
  readonly id?: string | undefined
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /** Registration TTL. Default 90 seconds (go-micro's). */
  readonly registerTtl?: Duration.DurationInput | undefined
  /** Re-registration interval. Default 30 seconds. */
  readonly registerInterval?: Duration.DurationInput | undefined
  /** Set false to serve without registering (e.g. behind a static registry). */
  readonly register?: boolean | undefined
  /** How long shutdown waits for calls in flight. Default 10 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Largest frame accepted. Default 4 MiB. */
  readonly maxFrameSize?: number | undefined
}

/**
 * A running server.
 * @since 0.1.0
 * @category models
 */
export interface ServerInfo {
  /** The registered (dialable) address. */
  readonly address: string
  /** The bound address. */
  readonly listenAddress: string
  readonly node: Node
  readonly service: Service
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Server extends Context.Tag("effect-micro/Server")<Server, ServerInfo>() {}

/**
 * Server middleware: wraps the effect that runs one call (for streaming replies, the whole stream). It
 * may fail with a framework error (e.g. `Unauthorized`) to reject the call before the handler runs.
 * @since 0.1.0
 * @category models
 */
export type Middleware = (call: IncomingCall, next: Effect.Effect<unknown, unknown>) => Effect.Effect<unknown, unknown>

/**
 * The middleware every server in scope applies, outermost first. Empty by default.
 * @since 0.1.0
 * @category references
 */
export class ServerMiddleware extends Context.Reference<ServerMiddleware>()("effect-micro/Server/Middleware", {
  defaultValue: (): ReadonlyArray<Middleware> => []
}) {}

/**
 * Adds middleware (outermost first) to servers built with this layer in scope.
 * @since 0.1.0
 * @category layers
 */
export const layerMiddleware = (...middleware: ReadonlyArray<Middleware>): Layer.Layer<ServerMiddleware> =>
  Layer.succeed(ServerMiddleware, middleware)

/**
 * Starts serving a contract in the current scope.
 * @since 0.1.0
 * @category constructors
 */
export const make: <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ServerOptions
) => Effect.Effect<
  ServerInfo,
  TransportError | RegistryError,
  Scope.Scope | Transport | Registry | Codecs | Rpc.ToHandler<Rpcs>
> = internal.make

/**
 * A layer serving a contract for as long as it is alive.
 * @since 0.1.0
 * @category layers
 */
export const layer = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ServerOptions
): Layer.Layer<Server, TransportError | RegistryError, Transport | Registry | Codecs | Rpc.ToHandler<Rpcs>> =>
  Layer.scoped(Server, internal.make(group, options))
