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
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Store, type StoreError } from "../../Store.js"
import * as internal from "./internal.js"

/**
 * @since 0.1.0
 * @category models
 */
export type PostgresStoreOptions = internal.PostgresStoreOptions

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
