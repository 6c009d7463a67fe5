/**
 * The embedded durable store: SQLite through better-sqlite3, WAL mode.
 *
 * Durability: better-sqlite3 is synchronous, so when a write's Effect succeeds its COMMIT has returned,
 * which means the transaction's frames were written (write(2)) into the WAL file. A SIGKILL cannot undo
 * that: the data is in the kernel's page cache and reaches the disk even though the process is gone.
 * `synchronous = FULL` (the default here) additionally fsyncs the WAL on every commit, so acknowledged
 * writes also survive an OS crash or power loss; `NORMAL` (WAL) fsyncs only at checkpoints and may lose
 * the last commits on power loss, never on a process kill. Atomicity and consistency are SQLite's: a
 * torn transaction at the WAL's tail is discarded on recovery (checksummed frames).
 *
 * Performance: better-sqlite3 is driven directly, one connection per store, every statement prepared
 * once (range reads: one statement per filter shape). A call is a synchronous native call wrapped in a
 * single Effect, with no span, statement cache lookup or semaphore (@effect/sql adds those per query and
 * costs ≈5× the driver on a point read). better-sqlite3 runs one statement at a time on the JS thread,
 * so the connection needs no lock. The schema and its migrations table are the ones @effect/sql's
 * Migrator created in earlier versions (same table, same ids), so existing files open unchanged.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import type { SqliteOptions, Store, StoreError } from "../../Store.js"
import type { Backend, Metadata, Namespace, Query } from "./common.js"
import {
  decodeMetadata,
  defaultSweepInterval,
  encodeMetadata,
  expiryOf,
  fromBackend,
  invalid,
  makeRecord,
  MIGRATIONS_TABLE,
  notFound,
  resolveSettings,
  TABLE,
  toUint8Array,
  unavailable,
  unsupported,
  upperBound
} from "./common.js"

export const defaultFilename = (): string => path.join(process.cwd(), ".micro", "store.db")

// The part of better-sqlite3's API used here (the package ships no types).
interface Statement {
  run(...params: ReadonlyArray<unknown>): unknown
  get(...params: ReadonlyArray<unknown>): unknown
  all(...params: ReadonlyArray<unknown>): Array<unknown>
  pluck(toggle?: boolean): Statement
  raw(toggle?: boolean): Statement
}
interface Database {
  prepare(source: string): Statement
  pragma(source: string, options?: { readonly simple?: boolean }): unknown
  exec(source: string): Database
  transaction<F extends (...args: Array<never>) => unknown>(fn: F): F & { readonly immediate: F }
  close(): Database
}
type DatabaseConstructor = new(filename: string) => Database

/** A row of a range read. Time always comes from the fiber's `Clock` (TestClock in tests). */
type Row = readonly [key: string, value: Uint8Array, metadata: string, expiresAt: number | null]
/** A point read's row: the key is known (statements return arrays: cheaper than objects). */
type ValueRow = readonly [value: Uint8Array, metadata: string, expiresAt: number | null]

const LIVE = "(expires_at IS NULL OR expires_at > ?)"

const MIGRATIONS: ReadonlyArray<readonly [id: number, name: string, ddl: ReadonlyArray<string>]> = [
  [1, "create_store", [
    `CREATE TABLE IF NOT EXISTS ${TABLE} (
  db_name TEXT NOT NULL,
  table_name TEXT NOT NULL,
  key TEXT NOT NULL,
  value BLOB NOT NULL,
  metadata TEXT NOT NULL DEFAULT '{}',
  expires_at INTEGER,
  PRIMARY KEY (db_name, table_name, key)
) WITHOUT ROWID`,
    `CREATE INDEX IF NOT EXISTS ${TABLE}_expiry ON ${TABLE} (expires_at) WHERE expires_at IS NOT NULL`
  ]]
]

/**
 * Creates or upgrades the schema in one IMMEDIATE transaction (so concurrent starters serialise on the
 * write lock). Same migrations table and rows as @effect/sql's Migrator (`effect_micro_store_migrations`).
 */
const migrate = (db: Database): void => {
  db.transaction(() => {
    db.exec(`CREATE TABLE IF NOT EXISTS ${MIGRATIONS_TABLE} (
  migration_id integer PRIMARY KEY NOT NULL,
  created_at datetime NOT NULL DEFAULT current_timestamp,
  name VARCHAR(255) NOT NULL
)`)
    const latest = (db.prepare(`SELECT max(migration_id) FROM ${MIGRATIONS_TABLE}`).pluck().get() ?? 0) as number
    const insert = db.prepare(`INSERT INTO ${MIGRATIONS_TABLE} (migration_id, name) VALUES (?, ?)`)
    for (const [id, name, ddl] of MIGRATIONS) {
      if (id <= latest) continue
      insert.run(id, name)
      for (const statement of ddl) db.exec(statement)
    }
  }).immediate()
}

const loadDriver = Effect.try({
  try: () => createRequire(import.meta.url)("better-sqlite3") as DatabaseConstructor,
  catch: (cause) => unavailable("sqlite", "the embedded store needs better-sqlite3 installed", cause)
})

export const make = (options: SqliteOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const filename = options.filename ?? defaultFilename()
    const synchronous = options.synchronous ?? "FULL"
    if (synchronous !== "FULL" && synchronous !== "NORMAL") {
      return yield* invalid(`synchronous must be "FULL" or "NORMAL", got ${String(synchronous)}`)
    }
    const busyTimeout = Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5)))
    if (!Number.isFinite(busyTimeout) || busyTimeout < 0) {
      return yield* invalid(`busyTimeout must be a finite, non-negative duration`)
    }
    const Sqlite = yield* loadDriver

    if (filename !== ":memory:") {
      yield* Effect.try({
        try: () => fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true }),
        catch: (cause) => unavailable("sqlite", `cannot create the directory of ${filename}`, cause)
      })
    }
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new Sqlite(filename),
        catch: (cause) => unavailable("sqlite", `cannot open ${filename}`, cause)
      }),
      (db) => Effect.sync(() => db.close())
    )
    // busy_timeout first, so that WAL setup and the migration wait for another process' lock too.
    yield* Effect.try({
      try: () => {
        db.pragma(`busy_timeout = ${busyTimeout}`)
        db.pragma("journal_mode = WAL")
        db.pragma(`synchronous = ${synchronous}`)
      },
      catch: (cause) => unavailable("sqlite", "cannot configure the database", cause)
    })
    yield* Effect.try({
      try: () => migrate(db),
      catch: (cause) => unavailable("sqlite", "schema migration failed", cause)
    })

    const prepared = yield* Effect.try({
      try: () => ({
        get: db.prepare(`SELECT value, metadata, expires_at FROM ${TABLE}
          WHERE db_name = ? AND table_name = ? AND key = ? AND ${LIVE}`).raw(),
        put: db.prepare(`INSERT INTO ${TABLE} (db_name, table_name, key, value, metadata, expires_at)
          VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (db_name, table_name, key) DO UPDATE
          SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at`),
        // Rows that already expired are left to the sweep.
        remove: db.prepare(`DELETE FROM ${TABLE} WHERE db_name = ? AND table_name = ? AND key = ? AND ${LIVE}`),
        sweep: db.prepare(`DELETE FROM ${TABLE} WHERE expires_at IS NOT NULL AND expires_at <= ?`)
      }),
      catch: (cause) => unavailable("sqlite", "cannot prepare statements", cause)
    })

    // Range statements, one per filter shape (prefix, upper bound, suffix), prepared on first use.
    const ranges = new Map<string, Statement>()
    const range = (query: Query, keysOnly: boolean, now: number): { statement: Statement; params: Array<unknown> } => {
      const params: Array<unknown> = [query.ns.database, query.ns.table, now]
      let where = ""
      let shape = keysOnly ? "k" : "r"
      if (query.prefix !== undefined) {
        where += " AND key >= ?"
        params.push(query.prefix)
        shape += "p"
        const upper = upperBound(query.prefix)
        if (upper !== undefined) {
          where += " AND key < ?"
          params.push(upper)
          shape += "u"
        }
      }
      if (query.suffix !== undefined) {
        // length() and substr() count characters (code points).
        const length = Array.from(query.suffix).length
        where += " AND length(key) >= ? AND substr(key, length(key) - ?) = ?"
        params.push(length, length - 1, query.suffix)
        shape += "s"
      }
      // A negative LIMIT means no limit in SQLite.
      params.push(query.limit ?? -1, query.offset)
      let statement = ranges.get(shape)
      if (statement === undefined) {
        statement = db.prepare(
          `SELECT ${keysOnly ? "key" : "key, value, metadata, expires_at"} FROM ${TABLE}
          WHERE db_name = ? AND table_name = ? AND ${LIVE}${where} ORDER BY key LIMIT ? OFFSET ?`
        )
        if (keysOnly) statement.pluck()
        else statement.raw()
        ranges.set(shape, statement)
      }
      return { statement, params }
    }

    const toRecord = (key: string, value: Uint8Array, metadata: string, expiresAt: number | null, now: number) =>
      makeRecord(key, toUint8Array(value), decodeMetadata(metadata), expiresAt === null ? undefined : expiryOf(expiresAt, now))

    const sweep = Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      return Effect.try({
        try: () => void prepared.sweep.run(now),
        catch: (cause) => unavailable("sqlite", "expiry sweep failed", cause)
      })
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("sqlite store: expiry sweep failed", cause)))
    yield* sweep.pipe(
      Effect.repeat(Schedule.spaced(defaultSweepInterval(options.sweepInterval))),
      Effect.forkScoped
    )

    const put = (
      ns: Namespace,
      key: string,
      value: Uint8Array,
      metadata: Metadata,
      expiresAt: number | null
    ): Effect.Effect<void, StoreError> => {
      try {
        // better-sqlite3 binds any Uint8Array (view offsets respected) as a BLOB.
        prepared.put.run(ns.database, ns.table, key, value, encodeMetadata(metadata), expiresAt)
        return Effect.void
      } catch (cause) {
        return Effect.fail(unavailable("sqlite", "write failed", cause))
      }
    }

    const backend: Backend = {
      name: "sqlite",
      get: (ns, key) =>
        Effect.clockWith((clock) => {
          const now = clock.unsafeCurrentTimeMillis()
          let row: ValueRow | undefined
          try {
            row = prepared.get.get(ns.database, ns.table, key, now) as ValueRow | undefined
          } catch (cause) {
            return Effect.fail(unavailable("sqlite", "read failed", cause))
          }
          return row === undefined ? Effect.fail(notFound(ns, key)) : Effect.succeed([toRecord(key, row[0], row[1], row[2], now)])
        }),
      query: (query) =>
        Effect.clockWith((clock) => {
          const now = clock.unsafeCurrentTimeMillis()
          try {
            const { params, statement } = range(query, false, now)
            const rows = statement.all(...params) as Array<Row>
            return Effect.succeed(rows.map((row) => toRecord(row[0], row[1], row[2], row[3], now)))
          } catch (cause) {
            return Effect.fail(unavailable("sqlite", "read failed", cause))
          }
        }),
      keys: (query) =>
        Effect.clockWith((clock) => {
          try {
            const { params, statement } = range(query, true, clock.unsafeCurrentTimeMillis())
            return Effect.succeed(statement.all(...params) as Array<string>)
          } catch (cause) {
            return Effect.fail(unavailable("sqlite", "list failed", cause))
          }
        }),
      // Without a TTL a write needs no time: skip the Clock lookup.
      put: (ns, key, value, metadata, ttlMillis) =>
        ttlMillis === undefined
          ? Effect.suspend(() => put(ns, key, value, metadata, null))
          : Effect.clockWith((clock) => put(ns, key, value, metadata, clock.unsafeCurrentTimeMillis() + ttlMillis)),
      remove: (ns, key) =>
        Effect.clockWith((clock) => {
          try {
            prepared.remove.run(ns.database, ns.table, key, clock.unsafeCurrentTimeMillis())
            return Effect.void
          } catch (cause) {
            return Effect.fail(unavailable("sqlite", "delete failed", cause))
          }
        }),
      watch: () => Stream.fail(unsupported("sqlite store cannot watch changes"))
    }
    return fromBackend(backend, settings)
  })
