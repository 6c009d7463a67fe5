/**
 * The Redis store: a separate entry point (`effect-micro/plugins/redis/RedisStore`) so the core never
 * loads ioredis. Native TTLs (PX), atomic scripted writes, ordered range reads through a per-table sorted-set
 * index, `watch` through keyspace notifications (`notify-keyspace-events KEA`). See docs/store.md.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type { RedisOptions } from "ioredis"
import { Store, type StoreError, type StoreOptions } from "../../Store.js"
import * as internal from "./internal.js"

/**
 * Connection and namespace options; every field has a default (127.0.0.1:6379, db 0, key prefix `micro:`).
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions extends StoreOptions {
  /** `redis://[user:password@]host:port[/db]`. Default: `host`/`port`, else 127.0.0.1:6379. */
  readonly url?: string | undefined
  /** Host of the Redis server (what `url` names wins). Default 127.0.0.1. */
  readonly host?: string | undefined
  /** Port of the Redis server (what `url` names wins). Default 6379. */
  readonly port?: number | undefined
  /** Redis logical database number. Default 0. */
  readonly db?: number | undefined
  /** ACL user name (what `url` names wins). Default: none (the `default` user). */
  readonly username?: string | undefined
  /** Password (what `url` names wins). Default: none. */
  readonly password?: Redacted.Redacted | undefined
  /** Prefix of every Redis key the store uses. Default `micro:`. */
  readonly keyPrefix?: string | undefined
  /** How long to wait for the first connection. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** A command that gets no reply in this time fails with reason Unavailable. Default 10 seconds. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Extra ioredis options (win over the ones above). Default: none. */
  readonly redis?: RedisOptions | undefined
}

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
