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
 *
 * Lock waits never block the event loop. better-sqlite3 waits for another process' lock inside the
 * native call (SQLite's busy handler sleeps on the JS thread), so a write during another process' 3 s
 * transaction froze every fiber of the process for 3 s. The connection therefore runs with
 * `busy_timeout = 0`: a statement that meets a lock fails at once with SQLITE_BUSY (outside an explicit
 * transaction the statement can be run again: sqlite3_step's documentation; in WAL mode only the start of a
 * write transaction can be busy, before anything is written) and is retried on `Clock` (`lockRetry`: 1, 2, 4, 8, 16 ms, then every
 * 25 ms, jittered) until `busyTimeout` has passed, then fails with reason Unavailable and SQLITE_BUSY in
 * the detail. The path without contention is unchanged: one synchronous call, no allocation beyond it.
 * Writes on a worker thread were measured and rejected: a postMessage round trip per write gave 23.5k
 * writes/s against 76k for the synchronous call (synchronous = NORMAL, same machine).
 *
 * Synchronous calls never return to the event loop on their own, so statements run for more than
 * `TURN_BUDGET_MILLIS` without a turn of the loop wait for one first (internal/common/eventLoopTurns.ts):
 * a batch import in a loop cannot stop the process' sockets, timers and registrations.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import type { SqliteOptions, Store } from "../../Store.js"
import { StoreError } from "../../Store.js"
import type { Record as StoreRecord } from "../../Store.js"
import { EventLoopTurns } from "../common/eventLoopTurns.js"
import { errorMessage } from "../common/text.js"
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
  upperBound
} from "./common.js"
import * as ChangeLog from "./sqliteChangeLog.js"
import type { Database, DatabaseConstructor, Statement } from "./sqliteDriver.js"

export const defaultFilename = (): string => path.join(process.cwd(), ".micro", "store.db")

/** A row of a range read. Time always comes from the fiber's `Clock` (TestClock in tests). */
type Row = readonly [key: string, value: Uint8Array, metadata: string, expiresAt: number | null]
/** A point read's row: the key is known (statements return arrays: cheaper than objects). */
type ValueRow = readonly [value: Uint8Array, metadata: string, expiresAt: number | null]

const LIVE = "(expires_at IS NULL OR expires_at > ?)"

/** How long statements may run back to back before the event loop gets a turn (see the header). */
const TURN_BUDGET_MILLIS = 10

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

const LATEST_MIGRATION = MIGRATIONS[MIGRATIONS.length - 1]![0]

/** The schema's version without taking any lock (a WAL read), or 0 when it cannot be read (new file). */
const schemaVersion = (db: Database): number => {
  try {
    return (db.prepare(`SELECT max(migration_id) FROM ${MIGRATIONS_TABLE}`).pluck().get() ?? 0) as number
  } catch {
    return 0
  }
}

/**
 * Creates or upgrades the schema in one IMMEDIATE transaction (so concurrent starters serialise on the
 * write lock). Same migrations table and rows as @effect/sql's Migrator (`effect_micro_store_migrations`).
 * A file whose schema is current is opened without the write lock, so another process' long transaction
 * does not delay opening it.
 */
const migrate = (db: Database): void => {
  if (schemaVersion(db) >= LATEST_MIGRATION) return
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

/** SQLITE_BUSY and its extended codes (SQLITE_BUSY_SNAPSHOT, ...): another connection holds a lock. */
const isBusy = (cause: unknown): boolean =>
  typeof cause === "object" && cause !== null && typeof (cause as { code?: unknown }).code === "string" &&
  (cause as { code: string }).code.startsWith("SQLITE_BUSY")

/** `sqlite: write failed (SQLITE_FULL: database or disk is full)`: the driver's code in the detail. */
const failure = (what: string, cause: unknown): StoreError => {
  const code = typeof cause === "object" && cause !== null ? (cause as { code?: unknown }).code : undefined
  const message = errorMessage(cause)
  return unavailable("sqlite", `${what} failed (${typeof code === "string" ? `${code}: ` : ""}${message})`, cause)
}

/**
 * The retry delays while another connection holds a lock: 1, 2, 4, 8, 16 ms, then every 25 ms (SQLite's
 * own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ... ms), jittered so that waiting processes do not retry
 * in step, for at most `busyTimeout` (counted from the first SQLITE_BUSY).
 */
export const lockRetry = (busyTimeout: Duration.Duration): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(Duration.millis(1), 2).pipe(
    Schedule.union(Schedule.spaced(Duration.millis(25))),
    Schedule.jittered,
    Schedule.upTo(busyTimeout)
  )

export const make = (options: SqliteOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const filename = options.filename ?? defaultFilename()
    const synchronous = options.synchronous ?? "FULL"
    if (synchronous !== "FULL" && synchronous !== "NORMAL") {
      return yield* invalid(`synchronous must be "FULL" or "NORMAL", got ${String(synchronous)}`)
    }
    const busyTimeout = Duration.decodeUnknown(options.busyTimeout ?? Duration.seconds(5))
    if (busyTimeout._tag === "None" || !Duration.isFinite(busyTimeout.value)) {
      return yield* invalid(`busyTimeout must be a finite, non-negative duration`)
    }
    const busyMillis = Math.round(Duration.toMillis(busyTimeout.value))
    const watchInterval = Duration.decodeUnknown(options.watchInterval ?? Duration.millis(100))
    if (
      watchInterval._tag === "None" || !Duration.isFinite(watchInterval.value) ||
      Duration.toMillis(watchInterval.value) <= 0
    ) {
      return yield* invalid(`watchInterval must be a finite, positive duration`)
    }
    const retry = busyMillis > 0 ? lockRetry(busyTimeout.value) : undefined
    const Sqlite = yield* loadDriver

    /**
     * The slow path of every statement: `attempt` met SQLITE_BUSY (it had no effect), so it runs again on
     * `retry`'s delays, off the event loop, until it succeeds, fails otherwise, or `busyTimeout` passes.
     */
    const whenUnlocked = <A>(what: string, busyCause: unknown, attempt: () => A): Effect.Effect<A, StoreError> =>
      retry === undefined
        ? Effect.fail(busy(what, busyCause))
        : Effect.try({ try: attempt, catch: identity }).pipe(
          Effect.retry({ schedule: retry, while: isBusy }),
          Effect.mapError((cause) => isBusy(cause) ? busy(what, cause) : failure(what, cause))
        )
    const busy = (what: string, cause: unknown): StoreError =>
      new StoreError({
        reason: "Unavailable",
        detail: `sqlite: ${what} failed: SQLITE_BUSY, the database stayed locked by another connection ` +
          `for busyTimeout (${busyMillis} ms)`,
        cause
      })
    /** A statement's failure: wait for the lock if it was SQLITE_BUSY, else fail with the driver's code. */
    const failed = <A>(what: string, cause: unknown, again: () => A): Effect.Effect<A, StoreError> =>
      isBusy(cause) ? whenUnlocked(what, cause, again) : Effect.fail(failure(what, cause))

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
    // No waiting inside SQLite (see the header): a lock met during WAL setup or the migration is waited
    // for like any statement's.
    const configure = () => {
      db.pragma("busy_timeout = 0")
      db.pragma("journal_mode = WAL")
      db.pragma(`synchronous = ${synchronous}`)
    }
    yield* Effect.suspend(() => {
      try {
        configure()
        return Effect.void
      } catch (cause) {
        return failed("configuration", cause, configure)
      }
    })
    yield* Effect.suspend(() => {
      try {
        migrate(db)
        return Effect.void
      } catch (cause) {
        return failed("schema migration", cause, () => migrate(db))
      }
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
      makeRecord(
        key,
        toUint8Array(value),
        decodeMetadata(metadata),
        expiresAt === null ? undefined : expiryOf(expiresAt, now)
      )

    const changeLog = yield* ChangeLog.make({
      db,
      watchInterval: watchInterval.value,
      locked: (what, run) => {
        try {
          return Effect.succeed(run())
        } catch (cause) {
          return failed(what, cause, run)
        }
      },
      failure
    })
    // While this process watches, its own commits must be looked for in the log (data_version ignores them).
    const feed = changeLog.state
    // One transaction: with a change log, the deletes are logged as expiries (the flag is never seen set by
    // another connection), the log is trimmed, and dropped if its watchers are gone.
    const sweepTransaction = db.transaction((now: number) => {
      changeLog.sweep(now, () => void prepared.sweep.run(now))
    })
    const sweep = Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      const run = () => {
        sweepTransaction.immediate(now)
        if (feed.watching) feed.localWrites = true
      }
      try {
        run()
        return Effect.void
      } catch (cause) {
        return failed("expiry sweep", cause, run)
      }
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
      const encoded = encodeMetadata(metadata)
      try {
        // better-sqlite3 binds any Uint8Array (view offsets respected) as a BLOB.
        prepared.put.run(ns.database, ns.table, key, value, encoded, expiresAt)
        if (feed.watching) feed.localWrites = true
        return Effect.void
      } catch (cause) {
        return putFailed(cause, ns, key, value, encoded, expiresAt)
      }
    }
    // The retried statements are closures built in separate functions: a closure inside `put` itself would
    // make V8 allocate its captured variables on the heap on every call, contended or not.
    const putFailed = (
      cause: unknown,
      ns: Namespace,
      key: string,
      value: Uint8Array,
      encoded: string,
      expiresAt: number | null
    ) => failed("write", cause, () => void prepared.put.run(ns.database, ns.table, key, value, encoded, expiresAt))

    const get = (ns: Namespace, key: string, now: number): Effect.Effect<ReadonlyArray<StoreRecord>, StoreError> => {
      let row: ValueRow | undefined
      try {
        row = prepared.get.get(ns.database, ns.table, key, now) as ValueRow | undefined
      } catch (cause) {
        return getFailed(cause, ns, key, now)
      }
      return found(ns, key, row, now)
    }
    const getFailed = (cause: unknown, ns: Namespace, key: string, now: number) =>
      Effect.flatMap(
        failed("read", cause, () => prepared.get.get(ns.database, ns.table, key, now) as ValueRow | undefined),
        (row) => found(ns, key, row, now)
      )
    const found = (ns: Namespace, key: string, row: ValueRow | undefined, now: number) =>
      row === undefined ? Effect.fail(notFound(ns, key)) : Effect.succeed([toRecord(key, row[0], row[1], row[2], now)])

    const query = (query: Query, now: number): Effect.Effect<ReadonlyArray<StoreRecord>, StoreError> => {
      const run = () => {
        const { params, statement } = range(query, false, now)
        const rows = statement.all(...params) as Array<Row>
        return rows.map((row) => toRecord(row[0], row[1], row[2], row[3], now))
      }
      try {
        return Effect.succeed(run())
      } catch (cause) {
        return failed("read", cause, run)
      }
    }

    const keys = (query: Query, now: number): Effect.Effect<ReadonlyArray<string>, StoreError> => {
      const run = () => {
        const { params, statement } = range(query, true, now)
        return statement.all(...params) as Array<string>
      }
      try {
        return Effect.succeed(run())
      } catch (cause) {
        return failed("list", cause, run)
      }
    }

    const remove = (ns: Namespace, key: string, now: number): Effect.Effect<void, StoreError> => {
      try {
        prepared.remove.run(ns.database, ns.table, key, now)
        if (feed.watching) feed.localWrites = true
        return Effect.void
      } catch (cause) {
        return removeFailed(cause, ns, key, now)
      }
    }
    const removeFailed = (cause: unknown, ns: Namespace, key: string, now: number) =>
      failed("delete", cause, () => void prepared.remove.run(ns.database, ns.table, key, now))

    // Every statement is a synchronous call: a loop of them must still let the event loop turn.
    const turns = new EventLoopTurns(TURN_BUDGET_MILLIS)
    const fair = <A>(operation: () => Effect.Effect<A, StoreError>): Effect.Effect<A, StoreError> => {
      const wait = turns.step()
      return wait === undefined ? operation() : Effect.zipRight(wait, Effect.suspend(operation))
    }

    const backend: Backend = {
      name: "sqlite",
      get: (ns, key) => Effect.clockWith((clock) => fair(() => get(ns, key, clock.unsafeCurrentTimeMillis()))),
      query: (q) => Effect.clockWith((clock) => fair(() => query(q, clock.unsafeCurrentTimeMillis()))),
      keys: (q) => Effect.clockWith((clock) => fair(() => keys(q, clock.unsafeCurrentTimeMillis()))),
      // Without a TTL a write needs no time: skip the Clock lookup.
      put: (ns, key, value, metadata, ttlMillis) =>
        ttlMillis === undefined
          ? Effect.suspend(() => fair(() => put(ns, key, value, metadata, null)))
          : Effect.clockWith((clock) =>
            fair(() => put(ns, key, value, metadata, clock.unsafeCurrentTimeMillis() + ttlMillis))
          ),
      remove: (ns, key) => Effect.clockWith((clock) => fair(() => remove(ns, key, clock.unsafeCurrentTimeMillis()))),
      watch: changeLog.watch
    }
    return fromBackend(backend, settings)
  })
