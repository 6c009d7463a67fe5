/**
 * The Postgres store: the SQL backend (./backend.ts), plus
 * `watch` through LISTEN/NOTIFY: a row trigger (installed by the schema migration) notifies
 * `effect_micro_store` with {op, database, table, key} on every insert, update and delete; the expiry
 * sweep marks its deletes so they reach watchers as `expire`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { createRequire } from "node:module"
import type { Backend, Namespace } from "../../internal/store/common.js"
import {
  decodeMetadata,
  encodeMetadata,
  expiryOf,
  fromBackend,
  makeRecord,
  notFound,
  resolveSettings,
  TABLE,
  toBuffer,
  toUint8Array,
  unavailable
} from "../../internal/store/common.js"
import type { Change, Store, StoreError } from "../../Store.js"
import { CHANNEL, defaultSweepInterval, makeBackend, migrate, parseNotification } from "./backend.js"
import type { PostgresStoreOptions } from "./PostgresStore.js"

/**
 * LISTEN through the client's shared listen connection. `@effect/sql-pg` keeps that connection silently
 * dead when Postgres goes away (its errors are swallowed), so the stream checks it: it notifies its own
 * channel with a token (through the pool) and expects the echo within `heartbeat`. No echo, or a failed
 * notify, fails the stream with reason Unavailable: changes made meanwhile are lost, so the consumer must
 * learn it (retry the stream and re-read). The first echo also tells that the subscription is in place,
 * so the stream emits nothing before it (and fails with Unavailable if Postgres is down at the start).
 */
const watch = (
  sql: PgClient.PgClient,
  ns: Namespace,
  prefix: string,
  heartbeat: Duration.Duration
): Stream.Stream<Change, StoreError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const mailbox = yield* Mailbox.make<Change, StoreError>()
    const ping = JSON.stringify({ op: "ping", k: crypto.randomUUID() })
    const echoes = yield* Queue.sliding<void>(1)
    const lost = (cause: unknown) =>
      mailbox.fail(unavailable("postgres", "watch connection lost (changes may have been missed)", cause))

    yield* sql.listen(CHANNEL).pipe(
      Stream.runForEach((payload) => {
        if (payload === ping) return Queue.offer(echoes, undefined)
        const change = parseNotification(payload)
        return change !== undefined && change.database === ns.database && change.table === ns.table &&
            change.key.startsWith(prefix)
          ? mailbox.offer(change)
          : Effect.void
      }),
      Effect.matchCauseEffect({ onFailure: (cause) => lost(Cause.squash(cause)), onSuccess: () => lost(undefined) }),
      Effect.forkScoped
    )

    const notify = Effect.mapError(
      sql`SELECT pg_notify(${CHANNEL}, ${ping})`,
      (cause) => unavailable("postgres", "watch heartbeat failed (changes may have been missed)", cause)
    )
    const noEcho = unavailable("postgres", "watch connection lost (no heartbeat echo)", undefined)
    /** Notifies our token and waits `within` for it to come back: true if it did. */
    const echo = (within: Duration.Duration) =>
      Effect.zipRight(
        Effect.zipRight(Queue.takeAll(echoes), notify),
        Effect.map(Effect.timeoutOption(Queue.take(echoes), within), Option.isSome)
      )
    // Subscribed once our own notification comes back; LISTEN runs asynchronously, so ask a few times.
    const subscribed = yield* echo(Duration.millis(200)).pipe(Effect.repeat({ until: (ok) => ok, times: 25 }))
    if (!subscribed) return yield* noEcho
    yield* echo(heartbeat).pipe(
      Effect.flatMap((ok) => ok ? Effect.void : Effect.fail(noEcho)),
      Effect.delay(heartbeat),
      Effect.forever,
      Effect.catchAll((error) => mailbox.fail(error)),
      Effect.forkScoped
    )
    return Mailbox.toStream(mailbox)
  }))

// The part of pg's Pool used here (pg ships no types).
interface QueryConfig {
  readonly name?: string | undefined
  readonly text: string
  readonly values: ReadonlyArray<unknown>
  readonly rowMode?: "array" | undefined
}
interface Pool {
  query(config: QueryConfig, callback: (error: Error | null, result: { readonly rows: Array<any> }) => void): void
  query(text: string): Promise<unknown>
  on(event: "error", listener: (error: Error) => void): Pool
  end(): Promise<void>
}
type PoolConstructor = new(config: object) => Pool

const GET = `SELECT value, metadata, expires_at FROM ${TABLE}
  WHERE db_name = $1 AND table_name = $2 AND key = $3 AND (expires_at IS NULL OR expires_at > $4)`
const PUT = `INSERT INTO ${TABLE} (db_name, table_name, key, value, metadata, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (db_name, table_name, key) DO UPDATE
  SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at`
// Rows that already expired are left to the sweep (which reports them as expiries to watchers).
const DELETE = `DELETE FROM ${TABLE}
  WHERE db_name = $1 AND table_name = $2 AND key = $3 AND (expires_at IS NULL OR expires_at > $4)`

/**
 * Point reads, writes and deletes straight on the pg pool: one `pool.query` each (what @effect/sql-pg
 * does underneath, without its per-query span, statement compilation and connection bookkeeping), as
 * named prepared statements unless `preparedStatements: false` (parsed and planned once per connection).
 */
const pointOps = (pool: Pool, prepared: boolean): Pick<Backend, "get" | "put" | "remove"> => {
  const name = (suffix: string) => prepared ? `${TABLE}_${suffix}` : undefined
  const getName = name("get")
  const putName = name("put")
  const deleteName = name("delete")
  const query = <A>(
    what: string,
    config: QueryConfig,
    onRows: (rows: Array<any>) => Effect.Effect<A, StoreError>
  ): Effect.Effect<A, StoreError> =>
    Effect.async<A, StoreError>((resume) => {
      try {
        pool.query(config, (error, result) => {
          resume(error ? Effect.fail(unavailable("postgres", `${what} failed`, error)) : onRows(result.rows))
        })
      } catch (cause) {
        resume(Effect.fail(unavailable("postgres", `${what} failed`, cause)))
      }
    })
  const done = () => Effect.void
  return {
    get: (ns, key) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        return query(
          "read",
          { name: getName, text: GET, values: [ns.database, ns.table, key, now], rowMode: "array" },
          (rows) => {
            if (rows.length === 0) return Effect.fail(notFound(ns, key))
            const [value, metadata, expiresAt] = rows[0] as [Uint8Array, string, string | number | null]
            return Effect.succeed([
              makeRecord(
                key,
                toUint8Array(value),
                decodeMetadata(metadata),
                expiresAt === null ? undefined : expiryOf(Number(expiresAt), now)
              )
            ])
          }
        )
      }),
    put: (ns, key, value, metadata, ttlMillis) => {
      const write = (expiresAt: number | null) =>
        query("write", {
          name: putName,
          text: PUT,
          values: [ns.database, ns.table, key, toBuffer(value), encodeMetadata(metadata), expiresAt]
        }, done)
      return ttlMillis === undefined
        ? write(null)
        : Effect.clockWith((clock) => write(clock.unsafeCurrentTimeMillis() + ttlMillis))
    },
    remove: (ns, key) =>
      Effect.clockWith((clock) =>
        query("delete", {
          name: deleteName,
          text: DELETE,
          values: [ns.database, ns.table, key, clock.unsafeCurrentTimeMillis()]
        }, done)
      )
  }
}

/** A store over an existing PgClient; runs the schema migration first. */
export const fromClient = (
  options: Omit<PostgresStoreOptions, "connection">
): Effect.Effect<Store.Service, StoreError, PgClient.PgClient | Scope.Scope> => fromClientWith(options, undefined)

const fromClientWith = (
  options: Omit<PostgresStoreOptions, "connection">,
  pool: Pool | undefined
): Effect.Effect<Store.Service, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const sql = yield* PgClient.PgClient
    // Two processes starting at once can race on creating the migrations table: retry (at most twice).
    yield* migrate(sql).pipe(
      Effect.retry({ times: 2 }),
      Effect.mapError((cause) => unavailable("postgres", "schema migration failed", cause))
    )
    const base = yield* makeBackend(sql, {
      name: "postgres",
      sweepInterval: defaultSweepInterval(options.sweepInterval)
    })
    const heartbeat = options.watchHeartbeat === undefined
      ? Duration.seconds(5)
      : Duration.decode(options.watchHeartbeat)
    const backend: Backend = {
      ...base,
      ...(pool === undefined ? {} : pointOps(pool, options.preparedStatements ?? true)),
      watch: (ns, prefix) => watch(sql, ns, prefix, heartbeat)
    }
    return fromBackend(backend, settings)
  })

const loadPg = Effect.try({
  try: () => createRequire(import.meta.url)("pg") as { readonly Pool: PoolConstructor },
  catch: (cause) => unavailable("postgres", "the Postgres store needs pg installed", cause)
})

/**
 * Connects (its own pool, closed with the scope) and builds the store. The pool is made here (with the
 * same settings `PgClient.make` would use) so that point operations can use it directly; the PgClient
 * over it runs the migration, range reads, the sweep and LISTEN/NOTIFY.
 */
export const make = (options: PostgresStoreOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const Pg = yield* loadPg
    const config: PgClient.PgClientConfig = {
      connectTimeout: Duration.seconds(5),
      applicationName: "effect-micro-store",
      ...options.connection
    }
    const connectTimeout = Duration.decode(config.connectTimeout ?? Duration.seconds(5))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const pool = new Pg.Pool({
          connectionString: config.url ? Redacted.value(config.url) : undefined,
          user: config.username,
          host: config.host,
          database: config.database,
          password: config.password ? Redacted.value(config.password) : undefined,
          ssl: config.ssl,
          port: config.port,
          ...(config.stream ? { stream: config.stream } : {}),
          connectionTimeoutMillis: Duration.toMillis(connectTimeout),
          idleTimeoutMillis: config.idleTimeout ? Duration.toMillis(config.idleTimeout) : undefined,
          max: config.maxConnections,
          min: config.minConnections,
          maxLifetimeSeconds: config.connectionTTL ? Duration.toSeconds(config.connectionTTL) : undefined,
          application_name: config.applicationName,
          types: config.types
        })
        // Errors of idle connections: the pool drops them; operations report their own failures.
        pool.on("error", () => {})
        return pool
      }),
      (pool) => Effect.promise(() => pool.end()).pipe(Effect.interruptible, Effect.timeoutOption("1 second"))
    )
    yield* Effect.tryPromise({
      try: () => pool.query("SELECT 1"),
      catch: (cause) => unavailable("postgres", "cannot connect", cause)
    }).pipe(
      Effect.timeoutFail({
        duration: connectTimeout,
        onTimeout: () => unavailable("postgres", "cannot connect (timed out)", undefined)
      })
    )
    const client = yield* PgClient.fromPool({
      acquire: Effect.succeed(pool),
      applicationName: config.applicationName,
      spanAttributes: config.spanAttributes,
      transformResultNames: config.transformResultNames,
      transformQueryNames: config.transformQueryNames,
      transformJson: config.transformJson,
      types: config.types
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((cause) => unavailable("postgres", "cannot connect", cause))
    )
    return yield* Effect.provideService(fromClientWith(options, pool), PgClient.PgClient, client)
  })
