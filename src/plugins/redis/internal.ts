/**
 * The Redis store.
 *
 * Layout per namespace (database/table names cannot contain ':', so these never collide):
 *   `{keyPrefix}{database}:{table}:r:{key}`  a string: one blob holding metadata and value, with native TTL (PX)
 *   `{keyPrefix}{database}:{table}:i`        a sorted set of the namespace's keys (all scores 0)
 * A write is one script doing `SET blob [PX ttl]; ZADD index 0 key` (atomic like MULTI/EXEC, one command
 * instead of four), so value, metadata and TTL change together (no torn records, last write wins); exact
 * reads (`GET` + `PTTL`) and deletes are scripts too. Range reads walk the index with ZRANGEBYLEX (byte order = code point
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
  notFound,
  resolveSettings,
  unavailable,
  unsupported,
  upperBound
} from "../../internal/store/common.js"
import type { Change, Record as StoreRecord, Store } from "../../Store.js"
import { StoreError } from "../../Store.js"
import type { RedisStoreOptions } from "./RedisStore.js"

const BATCH = 256
const BLOB_VERSION = 1

// Blob: [version u8][metadata length u32 BE][metadata JSON][value]
const encodeBlob = (metadata: Metadata, value: Uint8Array): Buffer => {
  const meta = encodeMetadata(metadata)
  const metaLength = Buffer.byteLength(meta, "utf8")
  const blob = Buffer.allocUnsafe(5 + metaLength + value.byteLength)
  blob[0] = BLOB_VERSION
  blob.writeUInt32BE(metaLength, 1)
  blob.write(meta, 5, "utf8")
  blob.set(value, 5 + metaLength)
  return blob
}

const decodeBlob = (blob: Buffer): { readonly metadata: Metadata; readonly value: Uint8Array } => {
  if (blob.byteLength < 5 || blob.readUInt8(0) !== BLOB_VERSION) throw new Error("not a store record")
  const length = blob.readUInt32BE(1)
  const metadata = decodeMetadata(blob.toString("utf8", 5, 5 + length))
  const value = new Uint8Array(blob.buffer, blob.byteOffset + 5 + length, blob.byteLength - 5 - length)
  return { metadata, value }
}

const escapeGlob = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`)

// Single-record operations are scripts: one command, one reply, atomic like MULTI/EXEC (4 commands and
// 4 replies each, which cost more on both sides than the script call).
// KEYS: record. Reply: [blob or nil, PTTL].
const GET = `return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}`
// KEYS: record, index. ARGV: blob, key[, ttl millis].
const PUT =
  `if ARGV[3] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3]) else redis.call('SET', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[2], 0, ARGV[2])
return 0`
// KEYS: record, index. ARGV: key.
const DEL = `redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 0`

/** The scripts, registered on the client with `defineCommand` (EVALSHA, falling back to EVAL on NOSCRIPT). */
interface Scripts {
  storeGetBuffer(record: string): Promise<[Buffer | null, number]>
  storePut(record: string, index: string, blob: Buffer, key: string, ttl?: number): Promise<number>
  storeDel(record: string, index: string, key: string): Promise<number>
}

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

    client.defineCommand("storeGet", { numberOfKeys: 1, lua: GET })
    client.defineCommand("storePut", { numberOfKeys: 2, lua: PUT })
    client.defineCommand("storeDel", { numberOfKeys: 2, lua: DEL })
    const scripts = client as unknown as Scripts

    /** One command: its reply goes through `onReply` in the same async step (no extra flatMap). */
    const call = <R, A>(
      what: string,
      f: () => Promise<R>,
      onReply: (reply: R) => Effect.Effect<A, StoreError>
    ): Effect.Effect<A, StoreError> =>
      Effect.async<A, StoreError>((resume) => {
        let promise: Promise<R>
        try {
          promise = f()
        } catch (cause) {
          return resume(Effect.fail(unavailable("redis", `${what} failed`, cause)))
        }
        promise.then(
          (reply) => resume(onReply(reply)),
          (cause) => resume(Effect.fail(unavailable("redis", `${what} failed`, cause)))
        )
      })
    const done = () => Effect.void

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
      return Effect.map(
        exec("list", pipeline),
        (replies) => members.map((member, i) => (replies[i] as number) === 1 ? member : undefined)
      )
    }

    const backend: Backend = {
      name: "redis",
      get: (ns, key) =>
        call("read", () => scripts.storeGetBuffer(recordKey(ns, key)), ([blob, pttl]) => {
          if (blob === null || blob === undefined) return Effect.fail(notFound(ns, key))
          const record = toRecord(key, blob, pttl)
          return record instanceof StoreError ? Effect.fail(record) : Effect.succeed([record])
        }),
      query: (query) => walk(query, fetchRecords(query.ns)),
      keys: (query) => walk(query, fetchKeys(query.ns)),
      put: (ns, key, value, metadata, ttlMillis) =>
        call(
          "write",
          () =>
            ttlMillis === undefined
              ? scripts.storePut(recordKey(ns, key), indexKey(ns), encodeBlob(metadata, value), key)
              : scripts.storePut(recordKey(ns, key), indexKey(ns), encodeBlob(metadata, value), key, ttlMillis),
          done
        ),
      remove: (ns, key) => call("delete", () => scripts.storeDel(recordKey(ns, key), indexKey(ns), key), done),
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
    const config = yield* Effect.tryPromise(() =>
      client.config("GET", "notify-keyspace-events") as Promise<Array<string>>
    )
      .pipe(Effect.option)
    if (Option.isSome(config) && !hasKeyspaceEvents(config.value[1] ?? "")) {
      return yield* unsupported(
        `redis keyspace notifications are off (notify-keyspace-events="${
          config.value[1] ?? ""
        }"); set it to KEA to watch`
      )
    }
    const mailbox = yield* Mailbox.make<Change, StoreError>()
    const subscriber = yield* connect(options, "watch")
    const channelPrefix = `__keyspace@${dbNumber}__:${base}r:`
    subscriber.on("pmessage", (_pattern: string, channel: string, event: string) => {
      if (!channel.startsWith(channelPrefix)) return
      const type = event === "set"
        ? "write"
        : event === "del"
        ? "delete"
        : event === "expired"
        ? "expire"
        : event === "evicted"
        ? "delete"
        : undefined
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
