import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../src/Store.js"
import { eventually } from "./support/eventually.js"
import { failureReason, storeContract } from "./support/storeContract.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-store-"))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const filename = path.join(dir, "contract", "store.db")

/** Looks into a store file with a separate read-only connection. */
const inspect = <A, E>(file: string, f: (sql: SqlClient.SqlClient) => Effect.Effect<A, E>) =>
  Effect.scoped(Effect.flatMap(SqliteClient.make({ filename: file, readonly: true, disableWAL: true }), f)).pipe(
    Effect.provide(Reactivity.layer)
  )

storeContract({
  name: "sqlite",
  make: (options) => Store.makeSqlite({ filename, ...options }),
  clock: "test",
  watch: true
})

storeContract({
  name: "sqlite (opened on first use)",
  make: (options) =>
    Effect.map(
      Layer.build(Store.layerSqliteLazy({ filename: path.join(dir, "contract-lazy", "store.db"), ...options })),
      Context.get(Store.Store)
    ),
  clock: "test",
  watch: true
})

describe("Store.layerSqliteLazy", () => {
  it.effect("creates no file until first used, then behaves as the embedded store (durable across reopen)", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "lazy", "store.db")
      const layer = Store.layerSqliteLazy({ filename: file })
      yield* Effect.scoped(Effect.gen(function*() {
        const store = Context.get(yield* Layer.build(layer), Store.Store)
        expect(store.backend).toBe("sqlite")
        expect(fs.existsSync(file)).toBe(false)
        // Concurrent first calls share one open.
        yield* Effect.forEach(
          Array.from({ length: 10 }, (_, i) => i),
          (i) => store.write({ key: `k${i}`, value: new Uint8Array([i]) }),
          { concurrency: "unbounded", discard: true }
        )
        expect(fs.existsSync(file)).toBe(true)
      }))
      const keys = yield* Effect.scoped(
        Effect.flatMap(Layer.build(layer), (context) => Context.get(context, Store.Store).list())
      )
      expect([...keys].sort()).toEqual(Array.from({ length: 10 }, (_, i) => `k${i}`).sort())
    }))

  it.effect("bad options fail the layer (Invalid); a file that cannot be opened fails each call, typed, until it can", () =>
    Effect.gen(function*() {
      const invalid = yield* Effect.flip(Layer.build(Store.layerSqliteLazy({ table: "no spaces allowed" })))
      expect(invalid.reason).toBe("Invalid")
      // A directory that cannot be created (its parent is a regular file).
      const blocker = path.join(dir, "not-a-directory")
      fs.writeFileSync(blocker, "")
      const store = Context.get(
        yield* Layer.build(Store.layerSqliteLazy({ filename: path.join(blocker, "sub", "store.db") })),
        Store.Store
      )
      const first = yield* Effect.flip(store.read("x"))
      const second = yield* Effect.flip(store.write({ key: "x", value: new Uint8Array([1]) }))
      expect(first._tag).toBe("StoreError")
      expect(first.reason).toBe("Unavailable")
      expect(second.reason).toBe("Unavailable")
      // A failed open is not remembered: once the cause is gone, the next call opens the store.
      fs.rmSync(blocker)
      yield* store.write({ key: "x", value: new Uint8Array([1]) })
      expect((yield* store.read("x"))[0]!.value).toEqual(new Uint8Array([1]))
    }).pipe(Effect.scoped))
})

describe("Store (sqlite specifics)", () => {
  it.effect("records survive closing and reopening the file; TTLs keep counting", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "restart.db")
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* Store.makeSqlite({ filename: file })
        yield* store.write({ key: "kept", value: new Uint8Array([1, 2]), metadata: { v: 1 } })
        yield* store.write({ key: "short", value: new Uint8Array([3]) }, { ttl: "5 seconds" })
      }))
      yield* TestClock.adjust("6 seconds")
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* Store.makeSqlite({ filename: file })
        const [kept] = yield* store.read("kept")
        expect(kept!.value).toEqual(new Uint8Array([1, 2]))
        expect(kept!.metadata).toEqual({ v: 1 })
        expect(yield* failureReason(store.read("short"))).toBe("NotFound")
      }))
      // WAL mode is a property of the file.
      const mode = yield* inspect(file, (sql) => sql<{ journal_mode: string }>`PRAGMA journal_mode`)
      expect(mode[0]!.journal_mode).toBe("wal")
    }))

  it.scoped("two stores on one file see each other's writes (two processes share a file the same way)", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "shared.db")
      const a = yield* Store.makeSqlite({ filename: file })
      const b = yield* Store.makeSqlite({ filename: file, synchronous: "NORMAL" })
      yield* a.write({ key: "from-a", value: new Uint8Array([1]) })
      yield* b.write({ key: "from-b", value: new Uint8Array([2]) })
      expect(yield* a.list()).toEqual(["from-a", "from-b"])
      expect(yield* b.list()).toEqual(["from-a", "from-b"])
    }))

  it.scoped(
    "fibers writing in a loop let the event loop turn (sockets and timers are not starved)",
    () =>
      Effect.gen(function*() {
        const store = yield* Store.makeSqlite({ filename: path.join(dir, "turns.db"), synchronous: "NORMAL" })
        // A setImmediate chain advances once per turn of the event loop.
        let turns = 0
        let stop = false
        const turn = () => {
          turns++
          if (!stop) setImmediate(turn)
        }
        setImmediate(turn)
        yield* Effect.addFinalizer(() => Effect.sync(() => (stop = true)))
        // Without the store's turns, 4 × 50k writes run before the first one: each fiber yields far fewer
        // than the 2048 times after which Effect's scheduler uses a timer.
        let written = 0
        const writer = (id: number) =>
          Effect.gen(function*() {
            for (let i = 0; i < 50_000 && turns < 5; i++) {
              yield* store.write({ key: `t${id}/${i}`, value: new Uint8Array([1]) })
              written++
            }
          })
        yield* Effect.all([0, 1, 2, 3].map(writer), { concurrency: "unbounded", discard: true })
        expect(turns).toBeGreaterThanOrEqual(5)
        expect(written).toBeLessThan(200_000)
      }),
    30_000
  )

  it.scoped("the expiry sweep deletes expired rows on Clock", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "sweep.db")
      const store = yield* Store.makeSqlite({ filename: file, sweepInterval: "1 minute" })
      yield* store.write({ key: "gone", value: new Uint8Array([1]) }, { ttl: "10 seconds" })
      yield* store.write({ key: "stays", value: new Uint8Array([1]) })
      const rows = inspect(file, (sql) =>
        Effect.map(sql<{ key: string }>`SELECT key FROM effect_micro_store ORDER BY key`, (rows) =>
          rows.map((r) =>
            r.key
          )))
      expect(yield* rows).toEqual(["gone", "stays"])
      yield* TestClock.adjust("61 seconds")
      expect(yield* rows).toEqual(["stays"])
    }))

  it.effect("an unusable path fails with reason Unavailable; bad options with Invalid", () =>
    Effect.gen(function*() {
      const notADir = path.join(dir, "plain-file")
      fs.writeFileSync(notADir, "x")
      const underFile = yield* Effect.flip(
        Effect.scoped(Store.makeSqlite({ filename: path.join(notADir, "db.sqlite") }))
      )
      expect(underFile.reason).toBe("Unavailable")
      const isDir = yield* Effect.flip(Effect.scoped(Store.makeSqlite({ filename: dir })))
      expect(isDir.reason).toBe("Unavailable")
      const bad = yield* Effect.flip(
        Effect.scoped(Store.makeSqlite({ filename: ":memory:", synchronous: "OFF" as any }))
      )
      expect(bad.reason).toBe("Invalid")
    }))

  it.effect("a corrupt or unwritable database file fails the layer with reason Unavailable, not a crash", () =>
    Effect.gen(function*() {
      const build = (file: string) => Effect.flip(Effect.scoped(Store.makeSqlite({ filename: file })))
      // Not a database at all.
      const garbage = path.join(dir, "garbage.db")
      fs.writeFileSync(garbage, Buffer.alloc(8192, 0x5a))
      const notDb = yield* build(garbage)
      expect(notDb.reason).toBe("Unavailable")
      expect(notDb.detail).toContain("sqlite")
      // A valid header over garbage pages (a damaged file).
      const damaged = path.join(dir, "damaged.db")
      const header = Buffer.alloc(8192, 0xa5)
      Buffer.from("SQLite format 3\u0000", "latin1").copy(header, 0)
      header.writeUInt16BE(4096, 16)
      fs.writeFileSync(damaged, header)
      expect((yield* build(damaged)).reason).toBe("Unavailable")
      // A good file whose write-ahead log cannot be created (the path is taken by a directory): the
      // database is unwritable, whoever runs the test (root ignores file modes).
      const unwritable = path.join(dir, "unwritable.db")
      fs.mkdirSync(`${unwritable}-wal`)
      expect((yield* build(unwritable)).reason).toBe("Unavailable")
      // The files are left as they were, and a layer over them fails the same way.
      expect(fs.readFileSync(garbage).equals(Buffer.alloc(8192, 0x5a))).toBe(true)
      const viaLayer = yield* Effect.flip(Effect.provide(Store.Store, Store.layer({ filename: garbage })))
      expect(viaLayer.reason).toBe("Unavailable")
    }))

  it.effect("layerSqliteConfig reads its options from Config", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      expect(store.backend).toBe("sqlite")
      expect(store.defaults).toEqual({ database: "configured", table: "micro" })
      yield* store.write({ key: "k", value: new Uint8Array([9]) })
      expect(fs.existsSync(path.join(dir, "from-config.db"))).toBe(true)
    }).pipe(
      Effect.provide(
        Store.layerSqliteConfig({
          filename: Config.string("STORE_FILE"),
          database: Config.string("STORE_DATABASE")
        }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([
              ["STORE_FILE", path.join(dir, "from-config.db")],
              ["STORE_DATABASE", "configured"]
            ])
          )))
        )
      )
    ))
})

// ----- another connection holding the write lock (the same as another process: SQLite locks the file) -----

interface RawDatabase {
  pragma(source: string): unknown
  exec(source: string): unknown
  readonly inTransaction: boolean
  close(): unknown
}
const RawSqlite = createRequire(import.meta.url)("better-sqlite3") as new(filename: string) => RawDatabase

/** A second connection to `file` that holds its write lock (`BEGIN IMMEDIATE`) until `release` or scope end. */
const holdWriteLock = (file: string) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const db = new RawSqlite(file)
      db.exec("BEGIN IMMEDIATE")
      return { release: () => db.exec("COMMIT"), db }
    }),
    ({ db }) =>
      Effect.sync(() => {
        if (db.inTransaction) db.exec("ROLLBACK")
        db.close()
      })
  )

/** Lets forked fibers run as far as they can without the clock moving. */
const settle = Effect.sleep("0 millis").pipe(Effect.zipRight(Effect.yieldNow()), Effect.repeatN(20))

describe("Store (sqlite) while another connection holds the write lock", () => {
  it.scoped("a write waits on Clock (not inside SQLite) and succeeds once the lock is released", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "locked-short.db")
      const store = yield* Store.makeSqlite({ filename: file })
      const lock = yield* holdWriteLock(file)
      const write = yield* Effect.fork(store.write({ key: "k", value: new Uint8Array([7]) }))
      yield* settle
      // Waiting, not failed: the fiber sleeps between attempts, so the test fiber runs meanwhile.
      yield* TestClock.adjust("3 seconds")
      expect(Option.isNone(yield* Fiber.poll(write))).toBe(true)
      lock.release()
      // The next attempt comes within one retry interval (25 ms, jittered by at most 20%).
      yield* TestClock.adjust("30 millis")
      yield* Fiber.join(write)
      expect((yield* store.read("k"))[0]!.value).toEqual(new Uint8Array([7]))
    }))

  it.scoped("after busyTimeout the write fails with reason Unavailable and SQLITE_BUSY in the detail; nothing is written", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "locked-long.db")
      const store = yield* Store.makeSqlite({ filename: file, busyTimeout: "2 seconds" })
      const lock = yield* holdWriteLock(file)
      const write = yield* Effect.fork(store.write({ key: "k", value: new Uint8Array([7]) }))
      yield* settle
      yield* TestClock.adjust("1900 millis")
      expect(Option.isNone(yield* Fiber.poll(write))).toBe(true)
      // The bound, plus at most one retry interval.
      yield* TestClock.adjust("150 millis")
      const exit = yield* Fiber.await(write)
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(exit)
      expect(error.reason).toBe("Unavailable")
      expect(error.detail).toBe(
        "sqlite: write failed: SQLITE_BUSY, the database stayed locked by another connection for busyTimeout (2000 ms)"
      )
      expect((error.cause as { code?: string }).code).toBe("SQLITE_BUSY")
      lock.release()
      expect(yield* failureReason(store.read("k"))).toBe("NotFound")
      // The store works again once the lock is gone.
      yield* store.write({ key: "k", value: new Uint8Array([8]) })
      expect((yield* store.read("k"))[0]!.value).toEqual(new Uint8Array([8]))
    }))

  it.scoped("deletes wait the same way; busyTimeout 0 fails at the first SQLITE_BUSY", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "locked-delete.db")
      const store = yield* Store.makeSqlite({ filename: file })
      yield* store.write({ key: "k", value: new Uint8Array([1]) })
      const lock = yield* holdWriteLock(file)
      const remove = yield* Effect.fork(store.delete("k"))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(Option.isNone(yield* Fiber.poll(remove))).toBe(true)
      lock.release()
      yield* TestClock.adjust("30 millis")
      yield* Fiber.join(remove)
      expect(yield* failureReason(store.read("k"))).toBe("NotFound")

      const impatient = yield* Store.makeSqlite({ filename: file, busyTimeout: 0 })
      yield* holdWriteLock(file)
      const error = yield* Effect.flip(impatient.write({ key: "x", value: new Uint8Array([1]) }))
      expect(error.reason).toBe("Unavailable")
      expect(error.detail).toContain("SQLITE_BUSY")
      expect(error.detail).toContain("busyTimeout (0 ms)")
    }))

  it.scoped("interrupting a waiting write stops the wait; nothing is written", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "locked-interrupt.db")
      const store = yield* Store.makeSqlite({ filename: file })
      const lock = yield* holdWriteLock(file)
      const write = yield* Effect.fork(store.write({ key: "k", value: new Uint8Array([1]) }))
      yield* settle
      yield* TestClock.adjust("500 millis")
      yield* Fiber.interrupt(write)
      lock.release()
      yield* TestClock.adjust("1 second")
      expect(yield* failureReason(store.read("k"))).toBe("NotFound")
    }))

  it.scoped("reads, pattern reads and lists are served while another connection writes (WAL); opening does not wait", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "locked-read.db")
      const store = yield* Store.makeSqlite({ filename: file })
      yield* store.write({ key: "a/1", value: new Uint8Array([1]) })
      yield* holdWriteLock(file)
      expect((yield* store.read("a/1"))[0]!.value).toEqual(new Uint8Array([1]))
      expect((yield* store.read("a/", { prefix: true })).map((r) => r.key)).toEqual(["a/1"])
      expect(yield* store.list()).toEqual(["a/1"])
      // The schema is current, so a second store on the file opens without the write lock (no clock needed).
      const second = yield* Store.makeSqlite({ filename: file })
      expect(yield* second.list()).toEqual(["a/1"])
    }))

  it.effect("busyTimeout must be a finite duration (reason Invalid)", () =>
    Effect.gen(function*() {
      const infinite = yield* Effect.flip(
        Effect.scoped(Store.makeSqlite({ filename: ":memory:", busyTimeout: Duration.infinity }))
      )
      expect(infinite.reason).toBe("Invalid")
      const garbage = yield* Effect.flip(
        Effect.scoped(Store.makeSqlite({ filename: ":memory:", busyTimeout: "soon" as any }))
      )
      expect(garbage.reason).toBe("Invalid")
    }))
})

// ----- the change log behind watch: installed while someone watches, dropped when nobody does -----

interface Inspector {
  prepare(
    source: string
  ): { get(...params: ReadonlyArray<unknown>): unknown; run(...params: ReadonlyArray<unknown>): unknown }
  exec(source: string): unknown
  close(): unknown
}

/** A third connection (another process, for SQLite) that looks at the file and can play a crashed watcher. */
const inspector = (file: string) =>
  Effect.acquireRelease(
    Effect.sync(() => new RawSqlite(file) as unknown as Inspector),
    (db) => Effect.sync(() => db.close())
  ).pipe(Effect.map((db) => ({
    triggers: Effect.sync(() =>
      db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'trigger'").get() as { n: number }
    ).pipe(Effect.map(({ n }) => n)),
    db
  })))

/** Runs a watch in the background until the returned fiber is interrupted. */
const watching = (store: Store.Store.Service) => Effect.fork(Stream.runDrain(store.watch()))

describe("Store (sqlite) change log", () => {
  it.scopedLive("exists only while some process watches: the last watcher's stop drops the triggers", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "lease", "two.db")
      const a = yield* Store.makeSqlite({ filename: file, watchInterval: "20 millis" })
      const b = yield* Store.makeSqlite({ filename: file, watchInterval: "20 millis" })
      const look = yield* inspector(file)
      expect(yield* look.triggers).toBe(0)
      const watchA = yield* watching(a)
      yield* eventually(look.triggers, (n) => n === 3)
      const watchB = yield* watching(b)
      const watchB2 = yield* watching(b)
      yield* Fiber.interrupt(watchA)
      // b still watches (twice): its lease keeps the log, and its writes keep being logged.
      expect(yield* look.triggers).toBe(3)
      yield* Fiber.interrupt(watchB)
      expect(yield* look.triggers).toBe(3)
      yield* Fiber.interrupt(watchB2)
      expect(yield* look.triggers).toBe(0)
      // Writes are plain again; a new watch installs the log again and sees them.
      yield* a.write({ key: "k", value: new Uint8Array([1]) })
      const seen = yield* Effect.fork(Stream.runHead(b.watch()))
      yield* eventually(look.triggers, (n) => n === 3)
      yield* a.write({ key: "k2", value: new Uint8Array([2]) })
      expect(Option.getOrThrow(yield* Fiber.join(seen))).toMatchObject({ type: "write", key: "k2" })
    }))

  it.scopedLive("a crashed watcher's log is dropped by another process' expiry sweep once its lease ran out", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "lease", "crashed.db")
      const a = yield* Store.makeSqlite({ filename: file, watchInterval: "20 millis", sweepInterval: "50 millis" })
      const look = yield* inspector(file)
      const watch = yield* watching(a)
      yield* eventually(look.triggers, (n) => n === 3)
      // A process that watched and died: its lease row outlives it by the lease's length.
      look.db.prepare("INSERT INTO effect_micro_store_watchers (owner, expires_at) VALUES ('crashed', ?)")
        .run(Date.now() + 300)
      yield* Fiber.interrupt(watch)
      expect(yield* look.triggers).toBe(3)
      yield* eventually(look.triggers, (n) => n === 0, "5 seconds")
    }))

  it.scopedLive("a watcher whose lease was taken away (paused too long) fails with Unavailable; watching again works", () =>
    Effect.gen(function*() {
      const file = path.join(dir, "lease", "paused.db")
      const a = yield* Store.makeSqlite({ filename: file, watchInterval: "20 millis" })
      const look = yield* inspector(file)
      const watch = yield* watching(a)
      yield* eventually(look.triggers, (n) => n === 3)
      // What another process' sweep does once this one's lease expired unrenewed.
      look.db.exec("DELETE FROM effect_micro_store_watchers")
      look.db.exec(
        `DROP TRIGGER effect_micro_store_log_insert; DROP TRIGGER effect_micro_store_log_update; DROP TRIGGER effect_micro_store_log_delete`
      )
      // The next renewal (every third of the 5 s lease) finds the lease gone.
      const error = yield* Effect.flip(Fiber.join(watch)).pipe(Effect.timeout("5 seconds"))
      expect(error).toMatchObject({ reason: "Unavailable", detail: expect.stringContaining("may have been missed") })
      // Its stream ended, so nobody watches: no log. Watching again installs it and sees new writes.
      expect(yield* look.triggers).toBe(0)
      const seen = yield* Effect.fork(Stream.runHead(a.watch()))
      yield* eventually(look.triggers, (n) => n === 3)
      yield* a.write({ key: "after", value: new Uint8Array([1]) })
      expect(Option.getOrThrow(yield* Fiber.join(seen))).toMatchObject({ type: "write", key: "after" })
    }))
})
