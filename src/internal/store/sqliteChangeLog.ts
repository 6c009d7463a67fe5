/**
 * `watch` on the embedded store: a change log written by triggers, so every connection's (process') commits
 * land in it, polled by each watching process.
 *
 * The log makes every write insert a second row (measured ≈1.5–2× fewer writes/s), so a file pays for it
 * only while someone watches. Each watching process holds a lease row (`owner`, `expires_at`), taken with the
 * log's installation in one transaction and renewed every third of its length. When a process' last watch
 * ends it drops its lease, and whoever sees no live lease left (that process, or any process' expiry sweep
 * once a crashed watcher's lease ran out) uninstalls the triggers and the log in the same transaction. A
 * process that kept no lease alive (paused past its lease) and finds it gone may have missed changes: its
 * streams fail with reason Unavailable, and the log is installed again for the next watch.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Change } from "../../Store.js"
import { StoreError } from "../../Store.js"
import { randomId } from "../common/text.js"
import type { Namespace } from "./common.js"
import { TABLE } from "./common.js"
import { ChangeFanout } from "./fanout.js"
import type { Database, Statement } from "./sqliteDriver.js"

const CHANGES = "effect_micro_store_changes"
const CONTEXT = "effect_micro_store_context"
const WATCHERS = "effect_micro_store_watchers"
/** Changes kept in the log (trimmed by the sweep): a watcher more than this far behind misses some. */
const CHANGES_KEPT = 100_000

/**
 * `expiring` is set by the sweep inside its transaction, so its deletes are logged as expiries. `seq` is a
 * rowid (no AUTOINCREMENT: the trim keeps the newest rows, so it only grows while the log exists).
 */
const INSTALL: ReadonlyArray<string> = [
  `CREATE TABLE IF NOT EXISTS ${WATCHERS} (owner TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ${CHANGES} (
  seq INTEGER PRIMARY KEY,
  op TEXT NOT NULL,
  db_name TEXT NOT NULL,
  table_name TEXT NOT NULL,
  key TEXT NOT NULL
)`,
  `CREATE TABLE IF NOT EXISTS ${CONTEXT} (id INTEGER PRIMARY KEY CHECK (id = 1), expiring INTEGER NOT NULL)`,
  `INSERT OR IGNORE INTO ${CONTEXT} (id, expiring) VALUES (1, 0)`,
  `CREATE TRIGGER IF NOT EXISTS ${TABLE}_log_insert AFTER INSERT ON ${TABLE} BEGIN
  INSERT INTO ${CHANGES} (op, db_name, table_name, key) VALUES ('write', NEW.db_name, NEW.table_name, NEW.key);
END`,
  `CREATE TRIGGER IF NOT EXISTS ${TABLE}_log_update AFTER UPDATE ON ${TABLE} BEGIN
  INSERT INTO ${CHANGES} (op, db_name, table_name, key) VALUES ('write', NEW.db_name, NEW.table_name, NEW.key);
END`,
  `CREATE TRIGGER IF NOT EXISTS ${TABLE}_log_delete AFTER DELETE ON ${TABLE} BEGIN
  INSERT INTO ${CHANGES} (op, db_name, table_name, key) VALUES (
    CASE WHEN (SELECT expiring FROM ${CONTEXT} WHERE id = 1) = 1 THEN 'expire' ELSE 'delete' END,
    OLD.db_name, OLD.table_name, OLD.key);
END`
]

/** The lease table stays (a few rows at most); everything that costs writes goes. */
const UNINSTALL: ReadonlyArray<string> = [
  `DROP TRIGGER IF EXISTS ${TABLE}_log_insert`,
  `DROP TRIGGER IF EXISTS ${TABLE}_log_update`,
  `DROP TRIGGER IF EXISTS ${TABLE}_log_delete`,
  `DROP TABLE IF EXISTS ${CHANGES}`,
  `DROP TABLE IF EXISTS ${CONTEXT}`
]

/** How long a watcher's lease lasts: long enough for GC pauses and busy event loops, short for cleanup. */
export const leaseMillis = (watchInterval: Duration.Duration): number =>
  Math.max(5_000, 50 * Duration.toMillis(watchInterval))

interface LogStatements {
  readonly expiring: Statement
  readonly trim: Statement
  readonly last: Statement
  readonly since: Statement
  readonly claim: Statement
  readonly renew: Statement
  readonly release: Statement
  readonly prune: Statement
  readonly live: Statement
}

export interface ChangeLogOptions {
  readonly db: Database
  readonly watchInterval: Duration.Duration
  /** Runs a statement, waiting (on Clock) while another connection holds the lock. */
  readonly locked: <A>(what: string, run: () => A) => Effect.Effect<A, StoreError>
  readonly failure: (what: string, cause: unknown) => StoreError
}

export interface ChangeLog {
  /** Read on every write: while this process watches, its own commits must be looked for in the log. */
  readonly state: { watching: boolean; localWrites: boolean }
  readonly watch: (ns: Namespace, prefix: string) => Stream.Stream<Change, StoreError>
  /**
   * Inside the expiry sweep's transaction: marks its deletes as expiries, trims the log, and uninstalls it
   * when no live lease is left (a watcher that crashed).
   */
  readonly sweep: (now: number, deleteExpired: () => void) => void
}

export const make = (options: ChangeLogOptions): Effect.Effect<ChangeLog, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { db, failure, locked } = options
    const lease = leaseMillis(options.watchInterval)
    const owner = randomId()
    const hasLog = db.prepare(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '${CONTEXT}'`)
      .pluck()
    const dataVersion = db.prepare("PRAGMA data_version").pluck()

    // Prepared while the log exists; looked up again whenever it may have been dropped by another process.
    let log: LogStatements | undefined
    const statements = (): LogStatements | undefined => {
      if (hasLog.get() !== 1) return (log = undefined)
      if (log === undefined) {
        log = {
          expiring: db.prepare(`UPDATE ${CONTEXT} SET expiring = ? WHERE id = 1`),
          trim: db.prepare(`DELETE FROM ${CHANGES} WHERE seq <= (SELECT max(seq) FROM ${CHANGES}) - ${CHANGES_KEPT}`),
          last: db.prepare(`SELECT coalesce(max(seq), 0) FROM ${CHANGES}`).pluck(),
          since: db.prepare(`SELECT seq, op, db_name, table_name, key FROM ${CHANGES} WHERE seq > ? ORDER BY seq`)
            .raw(),
          claim: db.prepare(`INSERT OR REPLACE INTO ${WATCHERS} (owner, expires_at) VALUES (?, ?)`),
          renew: db.prepare(`UPDATE ${WATCHERS} SET expires_at = ? WHERE owner = ?`),
          release: db.prepare(`DELETE FROM ${WATCHERS} WHERE owner = ?`),
          prune: db.prepare(`DELETE FROM ${WATCHERS} WHERE expires_at <= ?`),
          live: db.prepare(`SELECT count(*) FROM ${WATCHERS} WHERE expires_at > ?`).pluck()
        }
      }
      return log
    }
    const install = (): LogStatements => {
      for (const statement of INSTALL) db.exec(statement)
      return statements()!
    }
    /** Drops the log if nobody holds a live lease; run inside a write transaction. */
    const uninstallIfUnwatched = (current: LogStatements, now: number) => {
      current.prune.run(now)
      if (current.live.get(now) !== 0) return
      for (const statement of UNINSTALL) db.exec(statement)
      log = undefined
    }

    // Transactions (IMMEDIATE: the write lock is taken at BEGIN, so the lease check and the drop are atomic).
    const claim = db.transaction((now: number): number => {
      const current = install()
      current.claim.run(owner, now + lease)
      return current.last.get() as number
    })
    const release = db.transaction((now: number) => {
      const current = statements()
      if (current === undefined) return
      current.release.run(owner)
      uninstallIfUnwatched(current, now)
    })
    /** True if the lease was still ours; false if it was gone (the log was reinstalled and claimed again). */
    const renew = db.transaction((now: number): boolean => {
      const current = statements()
      if (current !== undefined && current.renew.run(now + lease, owner).changes === 1) return true
      install().claim.run(owner, now + lease)
      return false
    })
    const state = { watching: false, localWrites: false }
    const changes = new ChangeFanout("sqlite")
    let lastSeq = 0
    let lastVersion = -1
    const poll = (): ReadonlyArray<Change> => {
      const version = dataVersion.get() as number
      if (version === lastVersion && !state.localWrites) return []
      lastVersion = version
      state.localWrites = false
      const rows = log!.since.all(lastSeq) as Array<readonly [number, string, string, string, string]>
      if (rows.length === 0) return []
      lastSeq = rows[rows.length - 1]![0]
      return rows.map(([, op, database, table, key]) => ({ type: op as Change["type"], database, table, key }))
    }
    const pollOnce = Effect.suspend(() => {
      try {
        changes.publishAll(poll())
        return Effect.void
      } catch (cause) {
        return Effect.logWarning("sqlite store: reading the change log failed", failure("watch", cause))
      }
    })
    const renewOnce = Effect.clockWith((clock) =>
      locked("watch (renewing the lease)", () => renew.immediate(clock.unsafeCurrentTimeMillis()))
    ).pipe(
      Effect.flatMap((kept) =>
        kept ? Effect.void : Effect.sync(() => {
          // Paused past the lease and the log was dropped: changes in between are lost to this process.
          lastSeq = log!.last.get() as number
          changes.failAll(
            new StoreError({
              reason: "Unavailable",
              detail: `sqlite store: this process held no watch lease for over ${lease} ms (paused?) and the change ` +
                `log was removed meanwhile, so changes may have been missed; read the current state and watch again`
            })
          )
        })
      ),
      Effect.catchAll((error) => Effect.logWarning("sqlite store: renewing the watch lease failed", error))
    )

    const layerScope = yield* Effect.scope
    const transitions = yield* Effect.makeSemaphore(1)
    let watchers = 0
    let session: Fiber.RuntimeFiber<void> | undefined

    const begin = Effect.clockWith((clock) =>
      locked("watch (installing the change log)", () => claim.immediate(clock.unsafeCurrentTimeMillis()))
    ).pipe(
      Effect.flatMap((seq) =>
        Effect.suspend(() => {
          lastSeq = seq
          lastVersion = dataVersion.get() as number
          state.watching = true
          return Effect.all([
            pollOnce.pipe(Effect.repeat(Schedule.spaced(options.watchInterval))),
            renewOnce.pipe(Effect.repeat(Schedule.spaced(Duration.millis(lease / 3))))
          ], { concurrency: 2, discard: true }).pipe(
            // Forked from the watch's acquire, which is uninterruptible: the fiber must not inherit that.
            Effect.interruptible,
            Effect.forkIn(layerScope)
          )
        })
      ),
      Effect.map((fiber) => {
        session = fiber
      })
    )
    const end = Effect.suspend(() => {
      const fiber = session
      session = undefined
      state.watching = false
      return fiber === undefined ? Effect.void : Fiber.interrupt(fiber)
    }).pipe(
      Effect.zipRight(
        Effect.clockWith((clock) =>
          locked("watch (releasing the lease)", () => release.immediate(clock.unsafeCurrentTimeMillis()))
        )
      ),
      Effect.catchAll((error) => Effect.logWarning("sqlite store: releasing the watch lease failed", error))
    )

    const startWatcher = transitions.withPermits(1)(Effect.suspend(() => {
      if (watchers++ > 0) return Effect.void
      return Effect.tapError(begin, () => Effect.sync(() => void watchers--))
    }))
    const stopWatcher = transitions.withPermits(1)(Effect.suspend(() => --watchers === 0 ? end : Effect.void))
    // The store closing with watchers left: give the lease back before the connection closes.
    yield* Effect.addFinalizer(() => transitions.withPermits(1)(watchers > 0 ? end : Effect.void))

    const sweep = (now: number, deleteExpired: () => void) => {
      const current = statements()
      if (current === undefined) return deleteExpired()
      current.expiring.run(1)
      deleteExpired()
      current.expiring.run(0)
      current.trim.run()
      uninstallIfUnwatched(current, now)
    }

    return {
      state,
      sweep,
      watch: (ns, prefix) =>
        Stream.unwrapScoped(
          Effect.as(Effect.acquireRelease(startWatcher, () => stopWatcher), changes.watch(ns, prefix))
        )
    }
  })
