/**
 * The zero-config Registry: multicast DNS with DNS-SD records (`_micro._tcp.local`), so services find each
 * other on one host or a LAN without any server. Lookups are answered from a local view that listens to
 * every announcement; a name missing from the view is queried (with retries, bounded) before failing.
 *
 * Record layout, TXT keys and socket options: docs/discovery.md.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/registry/mdns.js"
import { Registry, type RegistryError } from "./Registry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MdnsRegistryOptions {
  /** DNS-SD service type label: records live under `_<domain>._tcp.local`. Default `"micro"` (go-micro's). */
  readonly domain?: string | undefined
  /** IPv4 address of the interface to join the group on and send from. Default: every interface. Tests: `"127.0.0.1"`. */
  readonly interface?: string | undefined
  /** Address the socket binds to. Default: `interface`, else all. With `interface: "127.0.0.1"` it must be `"0.0.0.0"`. */
  readonly bind?: string | undefined
  /** UDP port. Default 5353; tests use a private port so they never meet a real responder. */
  readonly port?: number | undefined
  /** Multicast group. Default `"224.0.0.251"`. */
  readonly ip?: string | undefined
  /** TTL of a registration made without one (and of its records). Default 90 s. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Longest pause between re-announcements of a registration (it is also at most a third of its TTL). Default 30 s. */
  readonly announceInterval?: Duration.DurationInput | undefined
  /** How long each lookup query waits for an answer. Default 250 ms. */
  readonly queryTimeout?: Duration.DurationInput | undefined
  /** Queries sent after the first before ServiceNotFound. Default 3 (≤ 1 s in all with the default timeout). */
  readonly queryRetries?: number | undefined
}

/**
 * Opens the multicast socket and returns the registry; the socket closes (after goodbyes) with the scope.
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: MdnsRegistryOptions) => Effect.Effect<Registry.Service, RegistryError, Scope.Scope> =
  internal.make

/**
 * The mdns `Registry` layer.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MdnsRegistryOptions): Layer.Layer<Registry, RegistryError> =>
  Layer.scoped(Registry, internal.make(options))

/**
 * `layer` with its options read from `Config`, e.g. `MdnsRegistry.layerConfig({ domain: Config.string("MDNS_DOMAIN") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<MdnsRegistryOptions>
): Layer.Layer<Registry, RegistryError | ConfigError.ConfigError> =>
  Layer.scoped(Registry, Effect.flatMap(Config.unwrap(config), internal.make))

/**
 * Socket options for several processes on one host, sending nothing off it (tests, CI).
 * @since 0.1.0
 * @category constructors
 */
export const loopback: Pick<MdnsRegistryOptions, "interface" | "bind"> = { interface: "127.0.0.1", bind: "0.0.0.0" }
