/**
 * The zero-configuration stack: multicast-DNS discovery behind a cache, TCP transport, the default
 * codecs, random selection, the HTTP broker, the embedded store (opened on first use) and the client runtime. A
 * service is `Server.layer(...)` on top of it; a caller needs only this.
 *
 * ```ts
 * Server.layer(Greeter, { name: "greeter" }).pipe(Layer.provide(GreeterLive), Layer.provide(Defaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import type { Broker } from "./Broker.js"
import * as CachedRegistry from "./CachedRegistry.js"
import type { ClientMiddleware, ClientOptions } from "./Client.js"
import * as Client from "./Client.js"
import * as Codec from "./Codec.js"
import * as HttpBroker from "./HttpBroker.js"
import * as MdnsRegistry from "./MdnsRegistry.js"
import type { Registry, RegistryError } from "./Registry.js"
import * as Selector from "./Selector.js"
import * as Store from "./Store.js"
import * as Transport from "./Transport.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly mdns?: MdnsRegistry.Options | undefined
  readonly cache?: CachedRegistry.Options | undefined
  readonly tcp?: Transport.TcpOptions | undefined
  readonly client?: (ClientOptions & { readonly middleware?: ReadonlyArray<ClientMiddleware> | undefined }) | undefined
  /** Replace the selector (default random). */
  readonly selector?: Layer.Layer<Selector.Selector> | undefined
  /** Replace discovery (default: mdns behind a cache), e.g. with the etcd plugin's layer. */
  readonly registry?: Layer.Layer<Registry, RegistryError> | undefined
  /**
   * HTTP broker options, or another broker layer (e.g. the NATS plugin's). The HTTP broker's endpoint
   * only starts on the first `subscribe`, so publish-only processes pay nothing for it.
   */
  readonly broker?: HttpBroker.HttpBrokerOptions | Layer.Layer<Broker, unknown, Registry> | undefined
  /**
   * Embedded store options, or another store layer (e.g. `RedisStore.layer(...)`). The embedded store opens
   * its file (default `.micro/store.db`) on first use, so processes that never use it create nothing.
   */
  readonly store?: Store.SqliteOptions | Layer.Layer<Store.Store, unknown> | undefined
}

/**
 * What the defaults provide.
 * @since 0.1.0
 * @category models
 */
export type Services =
  | Registry
  | Transport.Transport
  | Codec.Codecs
  | Selector.Selector
  | Client.Client
  | Broker
  | Store.Store

/**
 * Everything a service or caller needs, with the given options.
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options?: Options): Layer.Layer<Services, unknown> => {
  const registry = CachedRegistry.layer(options?.cache).pipe(
    Layer.provide(options?.registry ?? MdnsRegistry.layer(options?.mdns))
  )
  const base = Layer.mergeAll(registry, Transport.layerTcp(options?.tcp), Codec.layer, options?.selector ?? Selector.layer)
  const broker = Layer.isLayer(options?.broker)
    ? options.broker as Layer.Layer<Broker, unknown, Registry>
    : HttpBroker.layer(options?.broker as HttpBroker.HttpBrokerOptions | undefined)
  const store: Layer.Layer<Store.Store, unknown> = Layer.isLayer(options?.store)
    ? options.store as Layer.Layer<Store.Store, unknown>
    : Store.layerSqliteLazy(options?.store as Store.SqliteOptions | undefined)
  return Client.layer(options?.client).pipe(Layer.provideMerge(Layer.provideMerge(broker, base)), Layer.merge(store))
}

/**
 * The defaults: mdns on every interface (LAN), TCP, JSON/protobuf/MessagePack/bytes, random selection, the
 * HTTP broker (its endpoint on every interface).
 *
 * **Exposure**: the HTTP broker's endpoint (started by the first `subscribe`) listens on `0.0.0.0` with no
 * auth, so anyone who can reach the host can post messages into its subscribers (go-micro's default too).
 * To restrict it, bind it to one interface, `layerWith({ broker: { host: "10.0.0.5" } })`, or require a token
 * on every message (401 without one, 403 without a grant):
 * `layerWith({ broker: AuthMiddleware.layerBroker.pipe(Layer.provide(HttpBroker.layer({ host: "0.0.0.0" })), Layer.provide(AuthLive)) })`
 * (`AuthLive`: `Auth`, `Rules` and the `ServiceIdentity`; see docs/auth.md). Servers listen on every interface
 * by default too: bind one with `Server.layer(Api, { name, address: "10.0.0.5:0" })`, or enforce the rules on
 * every call with `AuthMiddleware.layerServer()` (and the mTLS transport). `layerLoopback` keeps multicast DNS
 * and the broker endpoint on 127.0.0.1 (servers still choose their own `address`).
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Services, RegistryError> = Layer.suspend(() =>
  // Only a custom broker layer can add error types; the HTTP broker's cannot fail.
  layerWith({ broker: { host: "0.0.0.0" } }) as Layer.Layer<Services, RegistryError>
)

/**
 * The defaults with multicast DNS kept on loopback: several processes on one host, nothing sent off it.
 * @since 0.1.0
 * @category layers
 */
export const layerLoopback: Layer.Layer<Services, RegistryError> = Layer.suspend(() =>
  layerWith({ mdns: MdnsRegistry.loopback }) as Layer.Layer<Services, RegistryError>
)
