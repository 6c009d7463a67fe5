/**
 * The zero-configuration stack: multicast-DNS discovery behind a cache, TCP transport, the default
 * codecs, least-outstanding selection, the HTTP broker, the embedded store (opened on first use) and the client
 * runtime. A service is `Server.layer(...)` on top of it; a caller needs only this. `layerTest` is the same
 * stack in memory, for tests of whole systems in one process.
 *
 * ```ts
 * Server.layer(Greeter, { name: "greeter" }).pipe(Layer.provide(GreeterLive), Layer.provide(Defaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as BrokerModule from "./Broker.js"
import type { Broker } from "./Broker.js"
import * as CachedRegistry from "./CachedRegistry.js"
import type { ClientMiddleware, ClientOptions } from "./Client.js"
import * as Client from "./Client.js"
import * as Codec from "./Codec.js"
import * as HttpBroker from "./HttpBroker.js"
import * as MdnsRegistry from "./MdnsRegistry.js"
import * as RegistryModule from "./Registry.js"
import type { Registry, RegistryError } from "./Registry.js"
import * as Selector from "./Selector.js"
import * as Store from "./Store.js"
import * as Transport from "./Transport.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DefaultsOptions<RE = never, BE = never, SE = never> {
  /** Options of the multicast-DNS registry (unused when `registry` is given). Default: its defaults. */
  readonly mdns?: MdnsRegistry.MdnsRegistryOptions | undefined
  /** Options of the cache in front of discovery. Default: its defaults. */
  readonly cache?: CachedRegistry.CachedRegistryOptions | undefined
  /** Options of the TCP transport. Default: its defaults. */
  readonly tcp?: Transport.TcpOptions | undefined
  /** Options of the client runtime: call defaults and middleware. Default: its defaults. */
  readonly client?: (ClientOptions & { readonly middleware?: ReadonlyArray<ClientMiddleware> | undefined }) | undefined
  /** Replace the selector (default: least outstanding calls of two random nodes). */
  readonly selector?: Layer.Layer<Selector.Selector> | undefined
  /** Replace discovery (default: mdns behind a cache), e.g. with the etcd plugin's layer. */
  readonly registry?: Layer.Layer<Registry, RE> | undefined
  /**
   * HTTP broker options, or another broker layer (e.g. the NATS plugin's). The HTTP broker's endpoint
   * only starts on the first `subscribe`, so publish-only processes pay nothing for it. Default: the HTTP
   * broker with its defaults.
   */
  readonly broker?: HttpBroker.HttpBrokerOptions | Layer.Layer<Broker, BE, Registry> | undefined
  /**
   * Embedded store options, or another store layer (e.g. `RedisStore.layer(...)`). The embedded store opens
   * its file (default `.micro/store.db`) on first use, so processes that never use it create nothing.
   * Default: the embedded store with its defaults.
   */
  readonly store?: Store.SqliteOptions | Layer.Layer<Store.Store, SE> | undefined
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

/** A layer given in place of options (`DefaultsOptions.broker`, `DefaultsOptions.store`). */
const isLayer = <L extends Layer.Layer<never, unknown, unknown>>(value: L | object | undefined): value is L =>
  Layer.isLayer(value)

/**
 * Everything a service or caller needs, with the given options. The error type is that of the layers used:
 * discovery and the embedded store's options, plus whatever layers you pass in their place.
 * @since 0.1.0
 * @category layers
 */
export const layerWith = <RE = never, BE = never, SE = never>(
  options?: DefaultsOptions<RE, BE, SE>
): Layer.Layer<Services, RegistryError | Store.StoreError | RE | BE | SE> => {
  const discovery: Layer.Layer<Registry, RegistryError | RE> = options?.registry ?? MdnsRegistry.layer(options?.mdns)
  const registry = CachedRegistry.layer(options?.cache).pipe(Layer.provide(discovery))
  const base = Layer.mergeAll(
    registry,
    Transport.layerTcp(options?.tcp),
    Codec.layer,
    options?.selector ?? Selector.layer
  )
  const broker: Layer.Layer<Broker, BE, Registry> = isLayer<Layer.Layer<Broker, BE, Registry>>(options?.broker)
    ? options.broker
    : HttpBroker.layer(options?.broker)
  const store: Layer.Layer<Store.Store, Store.StoreError | SE> = isLayer<Layer.Layer<Store.Store, SE>>(options?.store)
    ? options.store
    : Store.layerSqliteLazy(options?.store)
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
export const layer: Layer.Layer<Services, RegistryError | Store.StoreError> = Layer.suspend(() =>
  layerWith({ broker: { host: "0.0.0.0" } })
)

/**
 * The defaults with multicast DNS kept on loopback: several processes on one host, nothing sent off it.
 * @since 0.1.0
 * @category layers
 */
export const layerLoopback: Layer.Layer<Services, RegistryError | Store.StoreError> = Layer.suspend(() =>
  layerWith({ mdns: MdnsRegistry.loopback })
)

/**
 * The whole stack in memory, for tests: services and callers in one process find each other through the
 * memory registry and talk over the memory transport; the memory broker and store; nothing touches the
 * network or the disk. Everything runs on Effect's `Clock`, so `TestClock` drives TTLs, deadlines and
 * retries. One layer per test gives each test its own isolated system:
 *
 * ```ts
 * it.scoped("greets", () => Effect.gen(function*() { ... }).pipe(Effect.provide(Server.layer(Greeter, { name: "greeter", address: "memory:0" }).pipe(Layer.provide(GreeterLive), Layer.provideMerge(Defaults.layerTest)))))
 * ```
 * @since 0.1.0
 * @category layers
 */
export const layerTest: Layer.Layer<Services> = Layer.suspend(() => {
  const base = Layer.mergeAll(RegistryModule.layerMemory, Transport.layerMemory, Codec.layer, Selector.layer)
  return Client.layer().pipe(
    Layer.provideMerge(Layer.merge(BrokerModule.layerMemory, base)),
    Layer.merge(Store.layerMemory())
  )
})
