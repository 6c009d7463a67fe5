/**
 * The Redis store: a separate entry point (`effect-micro/plugins/redis/RedisStore`) so the core never
 * loads ioredis. Native TTLs (PX), atomic scripted writes, ordered range reads through a per-table sorted-set
 * index, `watch` through keyspace notifications (`notify-keyspace-events KEA`). See docs/store.md.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Store, type StoreError } from "../../Store.js"
import * as internal from "./internal.js"

/**
 * Connection and namespace options; every field has a default (127.0.0.1:6379, db 0, key prefix `micro:`).
 * @since 0.1.0
 * @category models
 */
export type RedisStoreOptions = internal.RedisStoreOptions

/**
 * Connects (failing with reason Unavailable if Redis does not answer within `connectTimeout`) and
 * disconnects when the scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: RedisStoreOptions) => Effect.Effect<Store.Service, StoreError, Scope.Scope> = (
  options
) => internal.make(options ?? {})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: RedisStoreOptions): Layer.Layer<Store, StoreError> => Layer.scoped(Store, make(options))

/**
 * Options from `Config`, e.g. `RedisStore.layerConfig({ url: Config.string("REDIS_URL") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Omit<RedisStoreOptions, "redis">>
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), make))
