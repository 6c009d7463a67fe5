/**
 * The Redis store.
 *
 * Layout per namespace (database/table names cannot contain ':', so these never collide):
 *   `{keyPrefix}{database}:{table}:r:{key}`  a string: one blob holding metadata and value, with native TTL (PX)
 *   `{keyPrefix}{database}:{table}:i`        a sorted set of the namespace's keys (all scores 0)
 * A write is `MULTI SET blob [PX ttl]; ZADD index 0 key; EXEC`, so value, metadata and TTL change together
 * (no torn records, last write wins). Range reads walk the index with ZRANGEBYLEX (byte order = code point
 * order) in batches, then fetch the records; keys whose record has expired are skipped, then removed from
 * the index by a script that checks the record is still absent (a concurrent write may have revived it).
 *
 * Watch uses keyspace notifications (`notify-keyspace-events` must include K and the generic, string and
 * expired classes, e.g. `KEA`) on a dedicated subscriber connection per stream; a lost connection fails
 * the stream with reason Unavailable (changes made meanwhile are not replayed).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Redis, type RedisOptions } from "ioredis"
import type { Backend, Metadata, Namespace, Query } from "../../internal/store/common.js"
import {
  decodeMetadata,
  encodeMetadata,
  fromBackend,
  makeRecord,
  resolveSettings,
  toBuffer,
  unavailable,
  unsupported,
  upperBound
} from "../../internal/store/common.js"
import type { Change, Record as StoreRecord, Store, StoreOptions } from "../../Store.js"
import { StoreError } from "../../Store.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface RedisStoreOptions extends StoreOptions {
  /** `redis://[user:password@]host:port[/db]`. Default: `host`/`port`, else 127.0.0.1:6379. */
  readonly url?: string | undefined
  readonly host?: string | undefined
  readonly port?: number | undefined
  /** Redis logical database number. Default 0. */
  readonly db?: number | undefined
  readonly username?: string | undefined
  readonly password?: Redacted.Redacted | undefined
  /** Prefix of every Redis key the store uses. Default `micro:`. */
  readonly keyPrefix?: string | undefined
  /** How long to wait for the first connection. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /** A command that gets no reply in this time fails with reason Unavailable. Default 10 seconds. */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /** Extra ioredis options (win over the ones above). */
  readonly redis?: RedisOptions | undefined
}

const BATCH = 256
const BLOB_VERSION = 1

// Blob: [version u8][metadata length u32 BE][metadata JSON][value]
const encodeBlob = (metadata: Metadata, value: Uint8Array): Buffer => {
  const meta = Buffer.from(encodeMetadata(metadata), "utf8")
  const header = Buffer.allocUnsafe(5)
  header.writeUInt8(BLOB_VERSION, 0)
  header.writeUInt32BE(meta.byteLength, 1)
  return Buffer.concat([header, meta, toBuffer(value)])
}

const decodeBlob = (blob: Buffer): { readonly metadata: Metadata; readonly value: Uint8Array } => {
  if (blob.byteLength < 5 || blob.readUInt8(0) !== BLOB_VERSION) throw new Error("not a store record")
  const length = blob.readUInt32BE(1)
  const metadata = decodeMetadata(blob.toString("utf8", 5, 5 + length))
  const value = new Uint8Array(blob.buffer, blob.byteOffset + 5 + length, blob.byteLength - 5 - length)
  return { metadata, value }
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

// Removes index members whose record is gone, atomically with the check.
const CLEANUP = `for i, member in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[i + 1]) == 0 then redis.call('ZREM', KEYS[1], member) end
end
return 0`

const durationMillis = (input: Duration.DurationInput | undefined, fallback: number) =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/** Opens a connection (waiting until it is ready) and closes it with the scope. */
const connect = (
  options: RedisStoreOptions,
  role: string
): Effect.Effect<Redis, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: async (signal) => {
        const redisOptions: RedisOptions = {
          host: options.host ?? "127.0.0.1",
          port: options.port ?? 6379,
          db: options.db ?? 0,
          ...(options.username !== undefined ? { username: options.username } : {}),
          ...(options.password !== undefined ? { password: Redacted.value(options.password) } : {}),
          lazyConnect: true,
          connectTimeout: durationMillis(options.connectTimeout, 5_000),
          commandTimeout: durationMillis(options.commandTimeout, 10_000),
          // While Redis is unreachable, a command waits for at most two reconnection attempts, then
          // fails (Unavailable); reconnection goes on forever, at most 500 ms apart, so the same store
          // works again soon after Redis is back.
          maxRetriesPerRequest: 1,
          retryStrategy: (times: number) => Math.min(times * 50, 500),
          ...options.redis
        }
        const client = options.url === undefined ? new Redis(redisOptions) : new Redis(options.url, redisOptions)
        // Without a listener ioredis prints every connection error; failures surface through commands.
        client.on("error", () => {})
        const abort = () => client.disconnect()
        signal.addEventListener("abort", abort)
        try {
          await client.connect()
        } catch (cause) {
          client.disconnect()
          throw cause
        } finally {
          signal.removeEventListener("abort", abort)
        }
        return client
      },
      catch: (cause) => unavailable("redis", `cannot connect (${role})`, cause)
    }),
    (client) =>
      Effect.promise(() => client.quit().catch(() => undefined)).pipe(
        Effect.timeoutOption("1 second"),
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )

export const make = (options: RedisStoreOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const client = yield* connect(options, "commands")
    const keyPrefix = options.keyPrefix ?? "micro:"
    const dbNumber = options.redis?.db ?? options.db ?? (options.url === undefined ? 0 : client.options.db ?? 0)

    const base = (ns: Namespace) => `${keyPrefix}${ns.database}:${ns.table}:`
    const indexKey = (ns: Namespace) => `${base(ns)}i`
    const recordKey = (ns: Namespace, key: string) => `${base(ns)}r:${key}`

    const run = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, StoreError> =>
      Effect.tryPromise({ try: f, catch: (cause) => unavailable("redis", `${what} failed`, cause) })

    // MULTI/EXEC replies are [error, result] pairs; any error fails the whole operation.
    const exec = (what: string, multi: ReturnType<Redis["multi"]>) =>
      Effect.flatMap(run(what, () => multi.exec()), (replies) => {
        if (replies === null) return Effect.fail(unavailable("redis", `${what} aborted`, undefined))
        for (const [error] of replies) {
          if (error) return Effect.fail(unavailable("redis", `${what} failed`, error))
        }
        return Effect.succeed(replies.map(([, result]) => result))
      })

    const toRecord = (key: string, blob: Buffer, pttl: number): StoreRecord | StoreError => {
      try {
        const { metadata, value } = decodeBlob(blob)
        return makeRecord(key, value, metadata, pttl >= 0 ? Duration.millis(pttl) : undefined)
      } catch (cause) {
        return unavailable("redis", `record "${key}" is corrupt`, cause)
      }
    }

    const cleanup = (ns: Namespace, members: ReadonlyArray<string>) =>
      members.length === 0
        ? Effect.void
        : run("index cleanup", () =>
          client.eval(
            CLEANUP,
            members.length + 1,
            indexKey(ns),
            ...members.map((member) => recordKey(ns, member)),
            ...members
          )).pipe(Effect.ignore)

    /**
     * Walks the index in key order, BATCH members at a time, until `limit` live matches past `offset`
     * are collected. `fetch` loads a batch and returns, per member, the item or undefined (gone).
     */
    const walk = <A>(
      query: Query,
      fetch: (members: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<A | undefined>, StoreError>
    ): Effect.Effect<ReadonlyArray<A>, StoreError> =>
      Effect.gen(function*() {
        const { ns, prefix, suffix } = query
        const upper = prefix === undefined ? undefined : upperBound(prefix)
        const max = upper === undefined ? "+" : `(${upper}`
        let min = prefix === undefined ? "-" : `[${prefix}`
        let skip = query.offset
        const out: Array<A> = []
        while (true) {
          const members = yield* run("read index", () => client.zrangebylex(indexKey(ns), min, max, "LIMIT", 0, BATCH))
          if (members.length === 0) break
          min = `(${members[members.length - 1]}`
          const candidates = suffix === undefined ? members : members.filter((member) => member.endsWith(suffix))
          const items = candidates.length === 0 ? [] : yield* fetch(candidates)
          const gone: Array<string> = []
          for (let i = 0; i < items.length; i++) {
            const item = items[i]
            if (item === undefined) {
              gone.push(candidates[i]!)
              continue
            }
            if (skip > 0) {
              skip--
              continue
            }
            out.push(item)
            if (query.limit !== undefined && out.length >= query.limit) break
          }
          yield* cleanup(ns, gone)
          if ((query.limit !== undefined && out.length >= query.limit) || members.length < BATCH) break
        }
        return out
      })

    const fetchRecords = (ns: Namespace) => (members: ReadonlyArray<string>) => {
      const multi = client.multi()
      for (const member of members) multi.getBuffer(recordKey(ns, member)).pttl(recordKey(ns, member))
      return Effect.flatMap(exec("read", multi), (replies) => {
        const records: Array<StoreRecord | undefined> = []
        for (let i = 0; i < members.length; i++) {
          const blob = replies[2 * i] as Buffer | null
          if (blob === null) {
            records.push(undefined)
            continue
          }
          const record = toRecord(members[i]!, blob, replies[2 * i + 1] as number)
          if (record instanceof StoreError) return Effect.fail(record)
          records.push(record)
        }
        return Effect.succeed(records)
      })
    }

    const fetchKeys = (ns: Namespace) => (members: ReadonlyArray<string>) => {
      const pipeline = client.pipeline()
      for (const member of members) pipeline.exists(recordKey(ns, member))
      return Effect.map(exec("list", pipeline as any), (replies) =>
        members.map((member, i) => (replies[i] as number) === 1 ? member : undefined))
    }

    const backend: Backend = {
      name: "redis",
      get: (ns, key) =>
        Effect.flatMap(
          exec("read", client.multi().getBuffer(recordKey(ns, key)).pttl(recordKey(ns, key))),
          ([blob, pttl]) => {
            if (blob === null || blob === undefined) return Effect.succeed(Option.none())
            const record = toRecord(key, blob as Buffer, pttl as number)
            return record instanceof StoreError ? Effect.fail(record) : Effect.succeed(Option.some(record))
          }
        ),
      query: (query) => walk(query, fetchRecords(query.ns)),
      keys: (query) => walk(query, fetchKeys(query.ns)),
      put: (ns, key, value, metadata, ttlMillis) => {
        const blob = encodeBlob(metadata, value)
        const multi = client.multi()
        if (ttlMillis === undefined) multi.set(recordKey(ns, key), blob)
        else multi.set(recordKey(ns, key), blob, "PX", ttlMillis)
        multi.zadd(indexKey(ns), 0, key)
        return Effect.asVoid(exec("write", multi))
      },
      remove: (ns, key) => Effect.asVoid(exec("delete", client.multi().del(recordKey(ns, key)).zrem(indexKey(ns), key))),
      watch: (ns, prefix) => watch(options, dbNumber, base(ns), ns, prefix, client)
    }
    return fromBackend(backend, settings)
  })

const hasKeyspaceEvents = (flags: string) =>
  flags.includes("K") && (flags.includes("A") || (flags.includes("g") && flags.includes("$") && flags.includes("x")))

const watch = (
  options: RedisStoreOptions,
  dbNumber: number,
  base: string,
  ns: Namespace,
  prefix: string,
  client: Redis
): Stream.Stream<Change, StoreError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    // Managed Redis often forbids CONFIG; then we cannot tell and subscribe anyway.
    const config = yield* Effect.tryPromise(() => client.config("GET", "notify-keyspace-events") as Promise<Array<string>>)
      .pipe(Effect.option)
    if (Option.isSome(config) && !hasKeyspaceEvents(config.value[1] ?? "")) {
      return yield* unsupported(
        `redis keyspace notifications are off (notify-keyspace-events="${config.value[1] ?? ""}"); set it to KEA to watch`
      )
    }
    const mailbox = yield* Mailbox.make<Change, StoreError>()
    const subscriber = yield* connect(options, "watch")
    const channelPrefix = `__keyspace@${dbNumber}__:${base}r:`
    subscriber.on("pmessage", (_pattern: string, channel: string, event: string) => {
      if (!channel.startsWith(channelPrefix)) return
      const type = event === "set" ? "write" : event === "del" ? "delete" : event === "expired" ? "expire" : event === "evicted" ? "delete" : undefined
      if (type === undefined) return
      mailbox.unsafeOffer({ type, database: ns.database, table: ns.table, key: channel.slice(channelPrefix.length) })
    })
    // A dropped connection ends the stream: ioredis would resubscribe on reconnect, but the changes made
    // meanwhile are lost, and a watcher must learn that (retry the stream and re-read; see docs/store.md).
    subscriber.on("close", () => {
      mailbox.unsafeDone(
        Exit.fail(unavailable("redis", "watch connection lost (changes may have been missed)", undefined))
      )
    })
    yield* Effect.tryPromise({
      try: () => subscriber.psubscribe(`${escapeGlob(channelPrefix + prefix)}*`),
      catch: (cause) => unavailable("redis", "subscribe failed", cause)
    })
    return Mailbox.toStream(mailbox)
  }))
