/**
 * A caching wrapper for any `Registry`: `getService` is answered from memory, filled on the first miss,
 * kept fresh by the wrapped registry's `watch`, and refreshed once an entry is older than `ttl`: the stale
 * entry is served at once while one background fetch refreshes it, so only a name never seen waits on the
 * wrapped registry. When it fails (engine down), stale entries keep being served, as go-micro does.
 * Everything else (`register`, `deregister`, `listServices`, `watch`) goes straight through. Entry age is
 * measured on the `Clock` of the fiber that builds the cache (TestClock in tests).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as internal from "./internal/registry/cached.js"
import type { Registry } from "./Registry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface CachedRegistryOptions {
  /**
   * Age after which an entry is refreshed (in the background; it is still served meanwhile). Default 1 minute
   * (go-micro's).
   */
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * Wraps a registry; the watch that keeps the cache fresh runs until the scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  underlying: Registry.Service,
  options?: CachedRegistryOptions
) => Effect.Effect<Registry.Service, never, Scope.Scope> = internal.make

/**
 * Provides a caching `Registry` on top of the `Registry` it is given.
 * @example
 * import * as Layer from "effect/Layer"
 * import * as CachedRegistry from "effect-micro/CachedRegistry"
 * import * as MdnsRegistry from "effect-micro/MdnsRegistry"
 *
 * export const registry = CachedRegistry.layer().pipe(Layer.provide(MdnsRegistry.layer()))
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: CachedRegistryOptions) => Layer.Layer<Registry, never, Registry> = internal.layer
