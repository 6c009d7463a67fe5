/**
 * The Postgres store: a separate entry point (`effect-micro/plugins/postgres/PostgresStore`) so the core
 * never loads pg. One table (`effect_micro_store`, created and upgraded by a schema migration), expiry on
 * `Clock`, `watch` through LISTEN/NOTIFY. See docs/store.md.
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Store, type StoreError, type StoreOptions } from "../../Store.js"
import * as internal from "./internal.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions extends StoreOptions {
  /**
   * How to reach Postgres (the `@effect/sql-pg` client options: url, host, port, database, username,
   * password, ssl, pool sizes ...). `connection.database` is the Postgres database; the store's own
   * `database`/`table` namespaces are columns inside one table. Default: `pg`'s defaults (the `PG*`
   * environment variables, else localhost:5432), with `connectTimeout` 5 s and `applicationName`
   * "effect-micro-store".
   */
  readonly connection?: PgClient.PgClientConfig | undefined
  /** How often expired rows are deleted (and `expire` changes notified). Default 1 minute. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /**
   * How often a `watch` stream checks that its LISTEN connection still delivers notifications (it
   * notifies itself and waits as long for the echo). A lost connection fails the stream with reason
   * Unavailable within about twice this time. Default 5 seconds.
   */
  readonly watchHeartbeat?: Duration.DurationInput | undefined
  /**
   * Point reads, writes and deletes as named prepared statements (parsed and planned once per pooled
   * connection). Default true; set false behind a pooler that does not support them (PgBouncer in
   * transaction mode before 1.21). Only for `make`/`layer`: `fromClient` goes through the PgClient.
   */
  readonly preparedStatements?: boolean | undefined
}

/**
 * Connects with its own pool (closed with the scope), migrates the schema and builds the store.
 * Fails with reason Unavailable if Postgres cannot be reached or migrated.
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: PostgresStoreOptions) => Effect.Effect<Store.Service, StoreError, Scope.Scope> = (
  options
) => internal.make(options ?? {})

/**
 * A store over a `PgClient` the application already provides (shares its pool).
 * @since 0.1.0
 * @category constructors
 */
export const fromClient: (
  options?: Omit<PostgresStoreOptions, "connection">
) => Effect.Effect<Store.Service, StoreError, PgClient.PgClient | Scope.Scope> = (options) =>
  internal.fromClient(options ?? {})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: PostgresStoreOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, make(options))

/**
 * A layer over the application's `PgClient`.
 * @since 0.1.0
 * @category layers
 */
export const layerFromClient = (
  options?: Omit<PostgresStoreOptions, "connection">
): Layer.Layer<Store, StoreError, PgClient.PgClient> => Layer.scoped(Store, fromClient(options))

/**
 * Options from `Config`, e.g. `PostgresStore.layerConfig({ connection: { url: Config.redacted("DATABASE_URL") } })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<PostgresStoreOptions>
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), make))
