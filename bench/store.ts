/**
 * Store benchmark for one backend (one process, run by run.ts):
 *
 *   node bench/.build/bench/store.js <memory|sqlite|redis|postgres> '<json options>'
 *
 * For each operation (write, then read) and concurrency, the effect-micro Store layer and the raw driver
 * doing the same operation run for `cellMs` each, split into `rounds` alternating rounds (store, raw, raw,
 * store, … in a rotating order); the best round counts. Operations, per backend:
 *   - memory:   `store.write`/`store.read(key)` vs a JS `Map` set/get (reference only: no I/O at all);
 *   - sqlite:   `Store.makeSqlite` vs better-sqlite3 on the same file, same pragmas, same SQL (upsert / point
 *               select on the store's table, another `db_name`), prepared once, called synchronously;
 *   - redis:    `RedisStore.make` vs ioredis with the same commands (`MULTI SET blob + ZADD index` /
 *               `MULTI GET + PTTL`), and vs bare `SET`/`GET` (what a store without ordered listing or
 *               metadata would do);
 *   - postgres: `PostgresStore.make` vs pg (`pg.Pool`, `pool.query`, as @effect/sql-pg uses) with the same
 *               SQL on the same table (its NOTIFY trigger fires for both).
 * Values are 128 random bytes, keys cycle over 1,000 (`k000`…`k999`), prefilled before reads; no TTL,
 * no metadata. Each worker runs operations back to back (closed loop); `concurrency` workers at once.
 * Prints `RESULT <json>`.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { randomBytes } from "node:crypto"
import { createRequire } from "node:module"
import * as path from "node:path"
import { performance } from "node:perf_hooks"
import * as PostgresStore from "../src/plugins/postgres/PostgresStore.js"
import * as RedisStore from "../src/plugins/redis/RedisStore.js"
import * as Store from "../src/Store.js"

const require = createRequire(import.meta.url)

export interface StoreBenchOptions {
  /** host:port of redis/postgres. */
  readonly address?: string | undefined
  /** Directory for the SQLite file. */
  readonly dir?: string | undefined
  readonly cellMs: number
  readonly rounds: number
  readonly concurrency: ReadonlyArray<number>
  /** SQLite `synchronous` for both sides. */
  readonly sqliteSynchronous: "FULL" | "NORMAL"
}

export interface StoreRow {
  readonly backend: string
  readonly impl: string
  readonly raw: boolean
  readonly op: "write" | "read"
  readonly concurrency: number
  readonly opsPerSec: number
  readonly usPerOp: number
  readonly rounds: ReadonlyArray<number>
  readonly errors: number
  readonly firstError?: string | undefined
}

const KEYS = 1000
const keys = Array.from({ length: KEYS }, (_, i) => `k${String(i).padStart(3, "0")}`)
const value = new Uint8Array(randomBytes(128))

/** One side of a cell: `op(i)` runs operation number i (sync, Promise or Effect). */
type Impl =
  | { readonly name: string; readonly kind: "effect"; readonly op: (i: number) => Effect.Effect<unknown, unknown> }
  | { readonly name: string; readonly kind: "raw"; readonly op: (i: number) => unknown }

interface Timed {
  readonly opsPerSec: number
  readonly errors: number
  readonly firstError?: string | undefined
}

const timeEffect = async (
  op: (i: number) => Effect.Effect<unknown, unknown>,
  ms: number,
  concurrency: number
): Promise<Timed> => {
  let next = 0
  let done = 0
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const end = start + ms
  const loop: Effect.Effect<void> = Effect.suspend(() =>
    performance.now() >= end
      ? Effect.void
      : Effect.flatMap(
        Effect.exit(op(next++)),
        (exit) => {
          if (Exit.isSuccess(exit)) done++
          else {
            errors++
            firstError ??= String(exit.cause).slice(0, 300)
          }
          return loop
        }
      )
  )
  await Effect.runPromise(
    concurrency === 1
      ? loop
      : Effect.asVoid(Effect.all(Array.from({ length: concurrency }, () => loop), { concurrency: "unbounded" }))
  )
  return { opsPerSec: done / ((performance.now() - start) / 1000), errors, firstError }
}

const timeRaw = async (op: (i: number) => unknown, ms: number, concurrency: number): Promise<Timed> => {
  let next = 0
  let done = 0
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const end = start + ms
  const worker = async () => {
    while (performance.now() < end) {
      try {
        const result = op(next++)
        if (result instanceof Promise) await result
        done++
      } catch (error) {
        errors++
        firstError ??= String(error).slice(0, 300)
      }
      // A synchronous driver never yields: give timers a turn now and then.
      if ((done & 1023) === 0) await new Promise((resolve) => setImmediate(resolve))
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { opsPerSec: done / ((performance.now() - start) / 1000), errors, firstError }
}

const time = (impl: Impl, ms: number, concurrency: number): Promise<Timed> =>
  impl.kind === "effect" ? timeEffect(impl.op, ms, concurrency) : timeRaw(impl.op, ms, concurrency)

interface Backend {
  readonly name: string
  /** The store first, then raw drivers. */
  readonly write: ReadonlyArray<Impl>
  readonly read: ReadonlyArray<Impl>
  /** Writes every key through every implementation (before reads). */
  readonly prefill: () => Promise<void>
  readonly close: () => Promise<void>
}

const storeImpls = (store: Store.Store.Service) => ({
  write: {
    name: "effect-micro Store",
    kind: "effect",
    op: (i) => store.write({ key: keys[i % KEYS]!, value })
  } as Impl,
  read: { name: "effect-micro Store", kind: "effect", op: (i) => store.read(keys[i % KEYS]!) } as Impl
})

const buildStore = async <E>(make: Effect.Effect<Store.Store.Service, E, Scope.Scope>) => {
  const scope = Effect.runSync(Scope.make())
  const store = await Effect.runPromise(Scope.extend(make, scope))
  return { store, close: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}

const prefillWith = async (impls: ReadonlyArray<Impl>) => {
  for (const impl of impls) {
    for (let i = 0; i < KEYS; i++) {
      if (impl.kind === "effect") await Effect.runPromise(impl.op(i))
      else await impl.op(i)
    }
  }
}

const hostPort = (address: string | undefined): { host: string; port: number } => {
  if (address === undefined) throw new Error("this backend needs an address")
  const colon = address.lastIndexOf(":")
  return { host: address.slice(0, colon), port: Number(address.slice(colon + 1)) }
}

const TABLE = "effect_micro_store"
const UPSERT_SQLITE = `INSERT INTO ${TABLE} (db_name, table_name, key, value, metadata, expires_at)
  VALUES (?, ?, ?, ?, ?, ?)
  ON CONFLICT (db_name, table_name, key) DO UPDATE
  SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at`
const SELECT_SQLITE = `SELECT key, value, metadata, expires_at FROM ${TABLE}
  WHERE db_name = ? AND table_name = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)`
const UPSERT_PG = `INSERT INTO ${TABLE} (db_name, table_name, key, value, metadata, expires_at)
  VALUES ($1, $2, $3, $4, $5, $6)
  ON CONFLICT (db_name, table_name, key) DO UPDATE
  SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at`
const SELECT_PG = `SELECT key, value, metadata, expires_at FROM ${TABLE}
  WHERE db_name = $1 AND table_name = $2 AND key = $3 AND (expires_at IS NULL OR expires_at > $4)`

const backends: Record<string, (options: StoreBenchOptions) => Promise<Backend>> = {
  memory: async () => {
    const { close, store } = await buildStore(Store.makeMemory())
    const map = new Map<string, { value: Uint8Array; metadata: object; expiresAt: number | undefined }>()
    const impls = storeImpls(store)
    const raw = {
      write: {
        name: "raw Map (reference, no I/O)",
        kind: "raw",
        op: (i) => map.set(keys[i % KEYS]!, { value, metadata: {}, expiresAt: undefined })
      } as Impl,
      read: {
        name: "raw Map (reference, no I/O)",
        kind: "raw",
        op: (i) => {
          const found = map.get(keys[i % KEYS]!)
          if (found === undefined) throw new Error("missing")
          return undefined
        }
      } as Impl
    }
    return {
      name: "memory",
      write: [impls.write, raw.write],
      read: [impls.read, raw.read],
      prefill: () => prefillWith([impls.write, raw.write]),
      close
    }
  },

  sqlite: async (options) => {
    const filename = path.join(options.dir ?? ".", "store.db")
    const { close, store } = await buildStore(Store.makeSqlite({ filename, synchronous: options.sqliteSynchronous }))
    const Database = require("better-sqlite3")
    const db = new Database(filename)
    db.pragma("journal_mode = WAL")
    db.pragma(`synchronous = ${options.sqliteSynchronous}`)
    db.pragma("busy_timeout = 5000")
    const upsert = db.prepare(UPSERT_SQLITE)
    const select = db.prepare(SELECT_SQLITE)
    const buffer = Buffer.from(value)
    const impls = storeImpls(store)
    const raw = {
      write: {
        name: "raw better-sqlite3 (same SQL)",
        kind: "raw",
        op: (i) => upsert.run("raw", "micro", keys[i % KEYS], buffer, "{}", null)
      } as Impl,
      read: {
        name: "raw better-sqlite3 (same SQL)",
        kind: "raw",
        op: (i) => {
          if (select.get("raw", "micro", keys[i % KEYS], Date.now()) === undefined) throw new Error("missing")
          return undefined
        }
      } as Impl
    }
    return {
      name: "sqlite",
      write: [impls.write, raw.write],
      read: [impls.read, raw.read],
      prefill: () => prefillWith([impls.write, raw.write]),
      close: async () => {
        db.close()
        await close()
      }
    }
  },

  redis: async (options) => {
    const { host, port } = hostPort(options.address)
    const { close, store } = await buildStore(RedisStore.make({ host, port, keyPrefix: "bench:" }))
    const client = new Redis({ host, port, lazyConnect: true, maxRetriesPerRequest: 2 })
    await client.connect()
    const impls = storeImpls(store)
    // The store's record layout: [version u8][metadata length u32 BE][metadata JSON][value]
    const blob = () => {
      const meta = Buffer.from("{}", "utf8")
      const header = Buffer.allocUnsafe(5)
      header.writeUInt8(1, 0)
      header.writeUInt32BE(meta.byteLength, 1)
      return Buffer.concat([header, meta, value])
    }
    const recordKey = (i: number) => `raw:micro:micro:r:${keys[i % KEYS]}`
    const index = "raw:micro:micro:i"
    const checkExec = (replies: Array<[Error | null, unknown]> | null) => {
      if (replies === null) throw new Error("aborted")
      for (const [error] of replies) if (error) throw error
      return replies
    }
    const same = {
      write: {
        name: "raw ioredis (same commands)",
        kind: "raw",
        op: (i) => client.multi().set(recordKey(i), blob()).zadd(index, 0, keys[i % KEYS]!).exec().then(checkExec)
      } as Impl,
      read: {
        name: "raw ioredis (same commands)",
        kind: "raw",
        op: (i) =>
          client.multi().getBuffer(recordKey(i)).pttl(recordKey(i)).exec().then((replies) => {
            if (checkExec(replies)[0]![1] === null) throw new Error("missing")
          })
      } as Impl
    }
    const bare = {
      write: {
        name: "raw ioredis (bare SET/GET)",
        kind: "raw",
        op: (i) => client.set(`bare:${keys[i % KEYS]}`, Buffer.from(value))
      } as Impl,
      read: {
        name: "raw ioredis (bare SET/GET)",
        kind: "raw",
        op: (i) =>
          client.getBuffer(`bare:${keys[i % KEYS]}`).then((found) => {
            if (found === null) throw new Error("missing")
          })
      } as Impl
    }
    return {
      name: "redis",
      write: [impls.write, same.write, bare.write],
      read: [impls.read, same.read, bare.read],
      prefill: () => prefillWith([impls.write, same.write, bare.write]),
      close: async () => {
        client.disconnect()
        await close()
      }
    }
  },

  postgres: async (options) => {
    const { host, port } = hostPort(options.address)
    const { close, store } = await buildStore(
      PostgresStore.make({ connection: { host, port, username: "postgres", database: "postgres" } })
    )
    const pg = require("pg")
    // A pool, as the store's @effect/sql-pg client has: `pool.query` checks a connection out and back in.
    const client = new pg.Pool({ host, port, user: "postgres", database: "postgres", max: 10 })
    const buffer = Buffer.from(value)
    const impls = storeImpls(store)
    const raw = {
      write: {
        name: "raw pg.Pool (same SQL)",
        kind: "raw",
        op: (i) => client.query(UPSERT_PG, ["raw", "micro", keys[i % KEYS], buffer, "{}", null])
      } as Impl,
      read: {
        name: "raw pg.Pool (same SQL)",
        kind: "raw",
        op: (i) =>
          client.query(SELECT_PG, ["raw", "micro", keys[i % KEYS], Date.now()]).then(
            (result: { rows: Array<unknown> }) => {
              if (result.rows.length === 0) throw new Error("missing")
            }
          )
      } as Impl
    }
    return {
      name: "postgres",
      write: [impls.write, raw.write],
      read: [impls.read, raw.read],
      prefill: () => prefillWith([impls.write, raw.write]),
      close: async () => {
        await client.end()
        await close()
      }
    }
  }
}

export const run = async (backendName: string, options: StoreBenchOptions): Promise<ReadonlyArray<StoreRow>> => {
  const make = backends[backendName]
  if (make === undefined) throw new Error(`unknown store backend "${backendName}"`)
  const backend = await make(options)
  const rows: Array<StoreRow> = []
  try {
    await backend.prefill()
    for (const op of ["write", "read"] as const) {
      const impls = backend[op]
      for (const concurrency of options.concurrency) {
        // Short warm-up of each side, then alternate rounds.
        for (const impl of impls) await time(impl, Math.min(300, options.cellMs / 4), concurrency)
        const results = impls.map(() => [] as Array<Timed>)
        for (let round = 0; round < options.rounds; round++) {
          for (let k = 0; k < impls.length; k++) {
            const index = (k + round) % impls.length
            results[index]!.push(await time(impls[index]!, options.cellMs / options.rounds, concurrency))
          }
        }
        impls.forEach((impl, i) => {
          const best = Math.max(...results[i]!.map((r) => r.opsPerSec))
          const errors = results[i]!.reduce((sum, r) => sum + r.errors, 0)
          rows.push({
            backend: backend.name,
            impl: impl.name,
            raw: impl.kind === "raw",
            op,
            concurrency,
            opsPerSec: best,
            usPerOp: (1e6 / best) * concurrency,
            rounds: results[i]!.map((r) => r.opsPerSec),
            errors,
            firstError: results[i]!.find((r) => r.firstError !== undefined)?.firstError
          })
        })
      }
    }
  } finally {
    await backend.close()
  }
  return rows
}

if (process.argv[1]?.endsWith("store.js") || process.argv[1]?.endsWith("store.ts")) {
  const [backendName, json] = process.argv.slice(2)
  const options: StoreBenchOptions = {
    cellMs: 2000,
    rounds: 4,
    concurrency: [1],
    sqliteSynchronous: "NORMAL",
    ...(json === undefined ? {} : JSON.parse(json))
  }
  run(backendName ?? "memory", options).then(
    (rows) => {
      process.stdout.write(`RESULT ${JSON.stringify(rows)}\n`)
      process.exit(0)
    },
    (error) => {
      process.stderr.write(`store bench failed: ${error?.stack ?? error}\n`)
      process.exit(1)
    }
  )
}
