/**
 * The Postgres store: the shared SQL backend (src/internal/store/sql.ts) with the `"pg"` dialect, plus
 * `watch` through LISTEN/NOTIFY: a row trigger (installed by the schema migration) notifies
 * `effect_micro_store` with {op, database, table, key} on every insert, update and delete; the expiry
 * sweep marks its deletes so they reach watchers as `expire`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Backend } from "../../internal/store/common.js"
import { fromBackend, resolveDefaults, unavailable } from "../../internal/store/common.js"
import { CHANNEL, defaultSweepInterval, makeBackend, migrate, parseNotification } from "../../internal/store/sql.js"
import type { Store, StoreError, StoreOptions } from "../../Store.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions extends StoreOptions {
  /**
   * How to reach Postgres (the `@effect/sql-pg` client options: url, host, port, database, username,
   * password, ssl, pool sizes ...). `connection.database` is the Postgres database; the store's own
   * `database`/`table` namespaces are columns inside one table.
   */
  readonly connection?: PgClient.PgClientConfig | undefined
  /** How often expired rows are deleted (and `expire` changes notified). Default 1 minute. */
  readonly sweepInterval?: Duration.DurationInput | undefined
}

/** A store over an existing PgClient; runs the schema migration first. */
export const fromClient = (
  options: Omit<PostgresStoreOptions, "connection">
): Effect.Effect<Store.Service, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const defaults = yield* resolveDefaults(options)
    const sql = yield* PgClient.PgClient
    // Two processes starting at once can race on creating the migrations table: retry (at most twice).
    yield* migrate(sql, "pg").pipe(
      Effect.retry({ times: 2 }),
      Effect.mapError((cause) => unavailable("postgres", "schema migration failed", cause))
    )
    const base = yield* makeBackend(sql, {
      dialect: "pg",
      name: "postgres",
      sweepInterval: defaultSweepInterval(options.sweepInterval)
    })
    const backend: Backend = {
      ...base,
      watch: (ns, prefix) =>
        sql.listen(CHANNEL).pipe(
          Stream.mapError((cause) => unavailable("postgres", "LISTEN failed", cause)),
          Stream.filterMap((payload) => {
            const change = parseNotification(payload)
            return change !== undefined && change.database === ns.database && change.table === ns.table &&
                change.key.startsWith(prefix)
              ? Option.some(change)
              : Option.none()
          })
        )
    }
    return fromBackend(backend, defaults)
  })

/** Connects (its own pool, closed with the scope) and builds the store. */
export const make = (options: PostgresStoreOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* PgClient.make({
      connectTimeout: Duration.seconds(5),
      applicationName: "effect-micro-store",
      ...options.connection
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((cause) => unavailable("postgres", "cannot connect", cause))
    )
    return yield* Effect.provideService(fromClient(options), PgClient.PgClient, client)
  })
