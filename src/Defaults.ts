/**
 * The zero-configuration stack: multicast-DNS discovery behind a cache, TCP transport, the default
 * codecs, random selection and the client runtime. A service is `Server.layer(...)` on top of it; a caller
 * needs only this.
 *
 * ```ts
 * Server.layer(Greeter, { name: "greeter" }).pipe(Layer.provide(GreeterLive), Layer.provide(Defaults.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as CachedRegistry from "./CachedRegistry.js"
import type { ClientMiddleware, ClientOptions } from "./Client.js"
import * as Client from "./Client.js"
import * as Codec from "./Codec.js"
import * as MdnsRegistry from "./MdnsRegistry.js"
import type { Registry, RegistryError } from "./Registry.js"
import * as Selector from "./Selector.js"
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
}

/**
 * Everything a service or caller needs, with the given options.
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options?: Options
): Layer.Layer<Registry | Transport.Transport | Codec.Codecs | Selector.Selector | Client.Client, RegistryError> => {
  const registry = CachedRegistry.layer(options?.cache).pipe(
    Layer.provide(options?.registry ?? MdnsRegistry.layer(options?.mdns))
  )
  const base = Layer.mergeAll(registry, Transport.layerTcp(options?.tcp), Codec.layer, options?.selector ?? Selector.layer)
  return Client.layer(options?.client).pipe(Layer.provideMerge(base))
}

/**
 * The defaults: mdns on every interface (LAN), TCP, JSON/MessagePack/bytes, random selection.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  Registry | Transport.Transport | Codec.Codecs | Selector.Selector | Client.Client,
  RegistryError
> = Layer.suspend(() => layerWith())

/**
 * The defaults with multicast DNS kept on loopback: several processes on one host, nothing sent off it.
 * @since 0.1.0
 * @category layers
 */
export const layerLoopback: Layer.Layer<
  Registry | Transport.Transport | Codec.Codecs | Selector.Selector | Client.Client,
  RegistryError
> = Layer.suspend(() => layerWith({ mdns: MdnsRegistry.loopback }))
