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
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Codecs } from "./Codec.js"
import type { Health, HttpOptions, Stats } from "./Debug.js"
import type { TransportError } from "./Errors.js"
import * as internal from "./internal/rpc/server.js"
import type { IncomingCall } from "./Metadata.js"
import type { Node, Registry, RegistryError, Service } from "./Registry.js"
import type { Transport } from "./Transport.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Service name clients resolve. */
  readonly name: string
  /** Version registered for the service (a client's `filter.version` matches it). Default "latest". */
  readonly version?: string | undefined
  /** `host:port` to listen on. Default "0.0.0.0:0" (all interfaces, a free port). */
  readonly address?: string | undefined
  /** Address to register instead of the bound one (default: the bound one, or a LAN IPv4 for 0.0.0.0). */
  readonly advertise?: string | undefined
  /** Node id. Default `<name>-<random>`. */
  readonly id?: string | undefined
  /**
   * Metadata registered with the service and on its node (next to `transport` and `protocol`), which a client's
   * `filter.metadata` matches. Default: none.
   */
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /** Registration TTL. Default 90 seconds (go-micro's). */
  readonly registerTtl?: Duration.DurationInput | undefined
  /** Re-registration interval. Default 30 seconds. */
  readonly registerInterval?: Duration.DurationInput | undefined
  /** Set false to serve without registering (e.g. behind a static registry). Default true. */
  readonly register?: boolean | undefined
  /** How long shutdown waits for calls in flight. Default 10 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Largest frame accepted. Default 4 MiB. */
  readonly maxFrameSize?: number | undefined
  /** Bounds on what peers can make this server hold. Default: the defaults listed on `ServerLimits`. */
  readonly limits?: ServerLimits | undefined
  /**
   * Opt-in HTTP port for probes and scraping: `/health`, `/ready`, `/stats`, `/metrics` (see `Debug`).
   * Default: none.
   */
  readonly http?: HttpOptions | undefined
}

/**
 * What one peer (or all of them) can make a server hold. Every bound has a default; docs/protocol.md
 * ("Limits") and docs/reliability.md say what happens at each.
 * @since 0.1.0
 * @category models
 */
export interface ServerLimits {
  /** Connections served at once; beyond it new connections get their calls refused (retryable 503). Default 10,000. */
  readonly maxConnections?: number | undefined
  /**
   * Calls running at once on one connection, advertised to clients (which queue beyond it); OPENs over it
   * are refused with a retryable 503. Default 1,000.
   */
  readonly maxConcurrentStreams?: number | undefined
  /** Largest server → client DATA window honoured (a client asking for more gets this). Default 1,024 messages. */
  readonly maxWindow?: number | undefined
  /** A new connection must send the protocol preface within this. Default 5 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
  /** A frame that has started arriving must complete within this, or the connection is closed. Default 30 seconds. */
  readonly frameTimeout?: Duration.DurationInput | undefined
  /** A connection without calls for this long (up to twice it) is sent GOAWAY and closed. Default 5 minutes. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** A reply stream the caller takes nothing from for this long fails with Timeout. Default 60 seconds. */
  readonly streamIdleTimeout?: Duration.DurationInput | undefined
  /**
   * Unsent reply bytes per connection above which the server stops reading from it (and reply streams
   * wait) until the backlog has drained. Default 1 MiB.
   */
  readonly writeBufferHighWater?: number | undefined
  /** How long a GOAWAY waits for the client to acknowledge before the connection may close. Default 2 seconds. */
  readonly goAwayGrace?: Duration.DurationInput | undefined
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
  /** Where the `http` option's probe endpoint listens (`host:port`), when set. */
  readonly httpAddress?: string | undefined
  /** What the built-in `Debug.Health` endpoint answers. */
  readonly health: Effect.Effect<Health>
  /** What the built-in `Debug.Stats` endpoint answers. */
  readonly stats: Effect.Effect<Stats>
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

/**
 * `layer` with its options read from `Config`, e.g.
 * `Server.layerConfig(Greeter, { name: Config.succeed("greeter"), address: Config.string("GREETER_ADDRESS") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  config: Config.Config.Wrap<ServerOptions>
): Layer.Layer<
  Server,
  TransportError | RegistryError | ConfigError.ConfigError,
  Transport | Registry | Codecs | Rpc.ToHandler<Rpcs>
> => Layer.scoped(Server, Effect.flatMap(Config.unwrap(config), (options) => internal.make(group, options)))
