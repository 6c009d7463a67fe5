/**
 * The embedded durable store: SQLite (better-sqlite3 through @effect/sql-sqlite-node), WAL mode.
 *
 * Durability: better-sqlite3 is synchronous, so when a write's Effect succeeds its COMMIT has returned,
 * which means the transaction's frames were written (write(2)) into the WAL file. A SIGKILL cannot undo
 * that: the data is in the kernel's page cache and reaches the disk even though the process is gone.
 * `synchronous = FULL` (the default here) additionally fsyncs the WAL on every commit, so acknowledged
 * writes also survive an OS crash or power loss; `NORMAL` (WAL) fsyncs only at checkpoints and may lose
 * the last commits on power loss, never on a process kill. Atomicity and consistency are SQLite's: a
 * torn transaction at the WAL's tail is discarded on recovery (checksummed frames).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import * as path from "node:path"
import type { SqliteOptions, Store, StoreError } from "../../Store.js"
import { fromBackend, invalid, resolveSettings, unavailable } from "./common.js"
import { defaultSweepInterval, makeBackend, migrate } from "./sql.js"

export const defaultFilename = (): string => path.join(process.cwd(), ".micro", "store.db")

export const make = (options: SqliteOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const filename = options.filename ?? defaultFilename()
    const synchronous = options.synchronous ?? "FULL"
    if (synchronous !== "FULL" && synchronous !== "NORMAL") {
      return yield* invalid(`synchronous must be "FULL" or "NORMAL", got ${String(synchronous)}`)
    }
    const busyTimeout = Math.round(Duration.toMillis(options.busyTimeout ?? Duration.seconds(5)))

    if (filename !== ":memory:") {
      yield* Effect.try({
        try: () => fs.mkdirSync(path.dirname(path.resolve(filename)), { recursive: true }),
        catch: (cause) => unavailable("sqlite", `cannot create the directory of ${filename}`, cause)
      })
    }
    // better-sqlite3 opens the file synchronously and throws on failure; @effect/sql-sqlite-node turns
    // that into a defect, which we report as Unavailable.
    const sql = yield* SqliteClient.make({ filename }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.catchAllDefect((cause) => Effect.fail(unavailable("sqlite", `cannot open ${filename}`, cause)))
    )
    yield* Effect.mapError(
      Effect.zipRight(
        sql.unsafe(`PRAGMA synchronous = ${synchronous}`),
        sql.unsafe(`PRAGMA busy_timeout = ${busyTimeout}`)
      ),
      (cause) => unavailable("sqlite", "cannot configure the database", cause)
    )
    yield* Effect.mapError(migrate(sql, "sqlite"), (cause) => unavailable("sqlite", "schema migration failed", cause))
    const backend = yield* makeBackend(sql, {
      dialect: "sqlite",
      name: "sqlite",
      sweepInterval: defaultSweepInterval(options.sweepInterval)
    })
    return fromBackend(backend, settings)
  })
