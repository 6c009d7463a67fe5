import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Change, MemoryOptions, Record as StoreRecord, Store } from "../../Store.js"
import type { Backend, Metadata, Namespace, Query } from "./common.js"
import { compareKeys, expiryOf, fromBackend, makeRecord, NO_METADATA, notFound, resolveSettings } from "./common.js"
import { ChangeFanout } from "./fanout.js"

interface Entry {
  readonly value: Uint8Array
  readonly metadata: Metadata
  /** epoch millis (Clock), undefined: never */
  readonly expiresAt: number | undefined
}

/** One database/table: a map plus its keys kept sorted, so prefix scans are a binary search and a walk. */
class Table {
  readonly entries = new Map<string, Entry>()
  readonly keys: Array<string> = []

  /** Index of the first key >= `key`. */
  lowerBound(key: string): number {
    let lo = 0
    let hi = this.keys.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareKeys(this.keys[mid]!, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  set(key: string, entry: Entry): void {
    if (!this.entries.has(key)) this.keys.splice(this.lowerBound(key), 0, key)
    this.entries.set(key, entry)
  }

  delete(key: string): boolean {
    if (!this.entries.delete(key)) return false
    this.keys.splice(this.lowerBound(key), 1)
    return true
  }
}

const live = (entry: Entry | undefined, now: number): entry is Entry =>
  entry !== undefined && (entry.expiresAt === undefined || entry.expiresAt > now)

// Values are copied in and out: callers may reuse their buffers, and must not mutate ours.
const toRecord = (key: string, entry: Entry, now: number): StoreRecord =>
  makeRecord(
    key,
    entry.value.slice(),
    entry.metadata === NO_METADATA ? {} : entry.metadata,
    expiryOf(entry.expiresAt, now)
  )

export const make = (options?: MemoryOptions): Effect.Effect<Store.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* Effect.orDie(resolveSettings(options))
    const tables = new Map<string, Table>()
    const changes = new ChangeFanout("memory")
    const tableOf = (ns: Namespace, create: boolean): Table | undefined => {
      const id = `${ns.database}\u0000${ns.table}`
      let table = tables.get(id)
      if (table === undefined && create) {
        table = new Table()
        tables.set(id, table)
      }
      return table
    }

    /** Walks live entries matching the query's filters in key order, applying offset and limit. */
    const scan = <A>(query: Query, now: number, f: (key: string, entry: Entry) => A): Array<A> => {
      const out: Array<A> = []
      const table = tableOf(query.ns, false)
      if (table === undefined) return out
      let skip = query.offset
      const { prefix, suffix } = query
      for (let i = prefix === undefined ? 0 : table.lowerBound(prefix); i < table.keys.length; i++) {
        const key = table.keys[i]!
        if (prefix !== undefined && !key.startsWith(prefix)) break
        if (suffix !== undefined && !key.endsWith(suffix)) continue
        const entry = table.entries.get(key)
        if (!live(entry, now)) continue
        if (skip > 0) {
          skip--
          continue
        }
        out.push(f(key, entry))
        if (query.limit !== undefined && out.length >= query.limit) break
      }
      return out
    }

    // Expired entries are already invisible; the sweep reclaims memory and tells watchers.
    const sweep = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const expired: Array<Change> = []
      for (const [id, table] of tables) {
        const [database, tableName] = id.split("\u0000") as [string, string]
        for (const [key, entry] of table.entries) {
          if (entry.expiresAt !== undefined && entry.expiresAt <= now) {
            table.delete(key)
            expired.push({ type: "expire", database, table: tableName, key })
          }
        }
        if (table.entries.size === 0) tables.delete(id)
      }
      changes.publishAll(expired)
      return Effect.void
    })
    const interval = options?.sweepInterval === undefined ? Duration.seconds(1) : Duration.decode(options.sweepInterval)
    yield* sweep.pipe(Effect.repeat(Schedule.spaced(interval)), Effect.forkScoped)

    const backend: Backend = {
      name: "memory",
      get: (ns, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const entry = tableOf(ns, false)?.entries.get(key)
          return live(entry, now) ? Effect.succeed([toRecord(key, entry, now)]) : Effect.fail(notFound(ns, key))
        }),
      query: (query) =>
        Effect.map(Clock.currentTimeMillis, (now) => scan(query, now, (key, entry) => toRecord(key, entry, now))),
      keys: (query) => Effect.map(Clock.currentTimeMillis, (now) => scan(query, now, (key) => key)),
      put: (ns, key, value, metadata, ttlMillis) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          tableOf(ns, true)!.set(key, {
            value: value.slice(),
            metadata,
            expiresAt: ttlMillis === undefined ? undefined : now + ttlMillis
          })
          changes.publish({ type: "write", database: ns.database, table: ns.table, key })
          return Effect.void
        }),
      remove: (ns, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const table = tableOf(ns, false)
          if (table === undefined) return Effect.void
          const visible = live(table.entries.get(key), now)
          if (!table.delete(key)) return Effect.void
          // Deleting an entry that had already expired (but was not swept yet) reports the expiry.
          changes.publish({ type: visible ? "delete" : "expire", database: ns.database, table: ns.table, key })
          return Effect.void
        }),
      watch: (ns, prefix) => changes.watch(ns, prefix)
    }
    return fromBackend(backend, settings)
  })
