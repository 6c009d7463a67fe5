/**
 * Key/value records that outlive the process: read, write, delete, list and watch, namespaced by
 * database and table, with TTLs.
 *
 * Semantics are the same for every backend (see docs/store.md): results are ordered by key (Unicode code
 * point order, i.e. UTF-8 byte order), prefix/suffix filters are applied before `offset`/`limit`, `limit`
 * is a count (0 returns nothing, absent means no limit), expired records are invisible everywhere, and
 * database/table are isolated namespaces (default `micro`/`micro`, as in go-micro).
 *
 * Layers: `layerMemory` (tests; expiry on `Clock`), `layer`/`layerSqlite` (embedded, durable, the default),
 * `plugins/redis/RedisStore` and `plugins/postgres/PostgresStore` (separate entry points).
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Codecs } from "./Codec.js"
import { resolveSettings } from "./internal/store/common.js"
import * as lazy from "./internal/store/lazy.js"
import * as memory from "./internal/store/memory.js"
import type * as sqlite from "./internal/store/sqlite.js"
import * as typed from "./internal/store/typed.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-micro/Store")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * A metadata value: JSON scalars only, so every backend round-trips it exactly.
 * @since 0.1.0
 * @category models
 */
export type MetadataValue = string | number | boolean | null

/**
 * A stored record. On reads `expiry` is the time left to live (absent: never expires); on writes it is
 * the TTL (like go-micro's `Record.Expiry`), overridden by `WriteOptions.ttl`.
 * @since 0.1.0
 * @category models
 */
export interface Record {
  readonly key: string
  readonly value: Uint8Array
  readonly metadata: { readonly [name: string]: MetadataValue }
  readonly expiry?: Duration.Duration | undefined
}

/**
 * What `write` accepts: a record whose metadata and expiry are optional.
 * @since 0.1.0
 * @category models
 */
export interface RecordInput {
  readonly key: string
  readonly value: Uint8Array
  readonly metadata?: { readonly [name: string]: MetadataValue } | undefined
  readonly expiry?: Duration.DurationInput | undefined
}

/**
 * A database/table pair. Defaults come from the layer's options (`micro`/`micro` unless changed).
 * Names: 1–64 characters of `[A-Za-z0-9_.-]`.
 * @since 0.1.0
 * @category models
 */
export interface NamespaceOptions {
  /** Database of the operation. Default: the layer's `database`. */
  readonly database?: string | undefined
  /** Table of the operation. Default: the layer's `table`. */
  readonly table?: string | undefined
}

/**
 * `offset` records are skipped after filtering, then at most `limit` are returned.
 * Both are non-negative integers; `limit` absent means "all", `limit: 0` means none.
 * @since 0.1.0
 * @category models
 */
export interface PageOptions {
  /** Most records (or keys) returned; 0 returns none. Default: all. */
  readonly limit?: number | undefined
  /** Records (or keys) skipped after filtering. Default 0. */
  readonly offset?: number | undefined
}

/**
 * Options of `read`. As in go-micro, `prefix`/`suffix` make the key a pattern: `read("user/", { prefix: true })`
 * returns every live record whose key starts with `user/` (an empty list when none); both flags together
 * require both. Without them `read` looks up exactly one key and fails with `NotFound` if it is absent.
 * @since 0.1.0
 * @category models
 */
export interface ReadOptions extends NamespaceOptions, PageOptions {
  /** Read every live record whose key starts with the given key. Default false: exactly that key. */
  readonly prefix?: boolean | undefined
  /** Read every live record whose key ends with the given key. Default false: exactly that key. */
  readonly suffix?: boolean | undefined
}

/**
 * Options of `write`. `ttl` wins over the record's `expiry`; absent or infinite means no expiry.
 * @since 0.1.0
 * @category models
 */
export interface WriteOptions extends NamespaceOptions {
  /** Lifetime of the record (positive); wins over the record's `expiry`. Default: its `expiry`, else none. */
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * Options of `delete`.
 * @since 0.1.0
 * @category models
 */
export interface DeleteOptions extends NamespaceOptions {}

/**
 * Options of `list`: keys starting with `prefix` and ending with `suffix`, then paged.
 * @since 0.1.0
 * @category models
 */
export interface ListOptions extends NamespaceOptions, PageOptions {
  /** Only keys starting with this. Default: every key. */
  readonly prefix?: string | undefined
  /** Only keys ending with this. Default: every key. */
  readonly suffix?: string | undefined
}

/**
 * Options of `watch`: changes to keys starting with `prefix` in one namespace.
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions extends NamespaceOptions {
  /** Only changes to keys starting with this. Default: every key of the namespace. */
  readonly prefix?: string | undefined
}

/**
 * A change seen by `watch`. `expire` is reported when the backend drops an expired record (memory and
 * sql backends: at their next sweep; Redis: when Redis expires the key). Read the key for its new value.
 * @since 0.1.0
 * @category models
 */
export interface Change {
  readonly type: "write" | "delete" | "expire"
  readonly database: string
  readonly table: string
  readonly key: string
}

/**
 * Why a store operation failed.
 * @since 0.1.0
 * @category models
 */
export type StoreErrorReason = "NotFound" | "Unavailable" | "Invalid" | "TooLarge" | "Unsupported" | "Codec"

/**
 * The one error of this module. `NotFound`: exact `read` of a missing (or expired) key. `Invalid`: bad
 * input (empty key, negative limit, bad namespace, non-bytes value). `TooLarge`: a value longer than the
 * layer's `maxValueSize` (checked before the backend). `Unavailable`: the backend failed.
 * `Unsupported`: the backend cannot do it. `Codec`: a typed table could not
 * encode/decode a value.
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Data.TaggedError("StoreError")<{
  readonly reason: StoreErrorReason
  readonly detail: string
  readonly key?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return `store ${this.reason}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("effect-micro/Store")<Store, Store.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Store {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly [TypeId]: TypeId
    /** Which backend this is ("memory", "sqlite", "redis", "postgres"). */
    readonly backend: string
    /** The namespace used when an operation names none. */
    readonly defaults: { readonly database: string; readonly table: string }
    /** One record by key (NotFound if absent), or every record matching a prefix/suffix pattern. */
    readonly read: (key: string, options?: ReadOptions) => Effect.Effect<ReadonlyArray<Record>, StoreError>
    /** Creates or replaces a record (last write wins). */
    readonly write: (record: RecordInput, options?: WriteOptions) => Effect.Effect<void, StoreError>
    /** Removes a record; deleting a missing key succeeds. */
    readonly delete: (key: string, options?: DeleteOptions) => Effect.Effect<void, StoreError>
    /** Keys of live records, ordered, filtered, paged. */
    readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<string>, StoreError>
    /** Changes from the moment the stream starts; fails with reason Unsupported where the backend cannot. */
    readonly watch: (options?: WatchOptions) => Stream.Stream<Change, StoreError>
  }
}

/**
 * Options every layer shares.
 * @since 0.1.0
 * @category models
 */
export interface StoreOptions {
  /** Database used when an operation names none. Default `micro`. */
  readonly database?: string | undefined
  /** Table used when an operation names none. Default `micro`. */
  readonly table?: string | undefined
  /**
   * Largest value accepted by `write`, in bytes (`value.byteLength`; key and metadata not counted).
   * A larger value fails with reason `TooLarge` before reaching the backend. Default 16 MiB.
   */
  readonly maxValueSize?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions extends StoreOptions {
  /** How often expired records are dropped (and `expire` changes published). Default 1 second. */
  readonly sweepInterval?: Duration.DurationInput | undefined
}

/**
 * An in-process store: every operation is atomic, expiry follows `Clock` (so `TestClock` drives it),
 * `watch` sees writes, deletes and expiries. A bad default namespace in the options is a defect.
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: MemoryOptions) => Effect.Effect<Store.Service, never, Scope.Scope> = memory.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: MemoryOptions): Layer.Layer<Store> => Layer.scoped(Store, memory.make(options))

/**
 * Options of the embedded store (SQLite, one file).
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions extends StoreOptions {
  /** Database file; its directory is created. Default `.micro/store.db` under the working directory. */
  readonly filename?: string | undefined
  /**
   * `FULL` (default): every commit is fsynced, surviving process kill, OS crash and power loss.
   * `NORMAL`: with WAL, commits survive a process kill (SIGKILL) but the last ones may be lost on OS
   * crash or power loss; faster writes. See docs/store.md.
   */
  readonly synchronous?: "FULL" | "NORMAL" | undefined
  /** How often expired rows are deleted. Default 1 minute. They are invisible before that. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /**
   * How long an operation waits for another connection (process) holding the file's lock, counted from
   * the first `SQLITE_BUSY`. Default 5 seconds; 0 fails at once. The wait never blocks the event loop:
   * the statement is retried on `Clock` (1, 2, 4, 8, 16 ms, then every 25 ms, jittered). After it the
   * operation fails with reason `Unavailable` and `SQLITE_BUSY` in the detail. See docs/store.md.
   */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /**
   * How often `watch` looks for changes made by other connections (processes) on the file; this process'
   * own writes are seen at the next look too. Default 100 ms. The looking starts with the first `watch` (before
   * it, nothing is polled) and lasts as long as the store.
   */
  readonly watchInterval?: Duration.DurationInput | undefined
}

// SQLite (a native module) is loaded only when an embedded store is built, so importing this module
// for the Tag or the memory layer costs nothing.
const loadSqlite = Effect.tryPromise({
  try: () => import("./internal/store/sqlite.js") as Promise<typeof sqlite>,
  catch: (cause) =>
    new StoreError({
      reason: "Unavailable",
      detail: "the embedded store needs better-sqlite3 installed",
      cause
    })
})

/**
 * The embedded durable store: SQLite in WAL mode through better-sqlite3. An acknowledged
 * write is committed to the file (see `synchronous`). Expiry follows `Clock`. `watch` sees the writes, deletes
 * and expiries of every process using the file, within `watchInterval` (a change log kept by triggers).
 * @since 0.1.0
 * @category constructors
 */
export const makeSqlite = (options?: SqliteOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.flatMap(loadSqlite, (module) => module.make(options ?? {}))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (options?: SqliteOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeSqlite(options))

/**
 * The embedded store with options read from `Config`.
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteConfig = (
  config: Config.Config.Wrap<SqliteOptions>
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), makeSqlite))

/**
 * The embedded store, opened on first use (in the layer's scope): a process that never reads or writes
 * creates no database file. `Defaults.layer` provides this one. Options are checked when the layer is built
 * (reason `Invalid`); while the file cannot be opened, each call fails with that `StoreError` (and the next
 * call tries again).
 * @since 0.1.0
 * @category layers
 */
export const layerSqliteLazy = (options?: SqliteOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(
    Store,
    Effect.flatMap(resolveSettings(options), (settings) => lazy.make("sqlite", settings.defaults, makeSqlite(options)))
  )

/**
 * The default store: the embedded durable one.
 * @since 0.1.0
 * @category layers
 */
export const layer: (options?: SqliteOptions) => Layer.Layer<Store, StoreError> = layerSqlite

/**
 * A table bound to a Schema: values are encoded with a codec from `Codecs` (the content-type is kept in
 * the record's metadata and used to decode, so a table can change codec without a migration).
 * @since 0.1.0
 * @category models
 */
export interface Table<A> {
  readonly database: string
  readonly table: string
  /** The decoded value, NotFound if absent, Codec if it does not decode. */
  readonly get: (key: string) => Effect.Effect<A, StoreError>
  /** Like `get`, with absence as `Option.none()`. */
  readonly getOption: (key: string) => Effect.Effect<Option.Option<A>, StoreError>
  readonly set: (
    key: string,
    value: A,
    options?: {
      readonly ttl?: Duration.DurationInput | undefined
      readonly metadata?: { readonly [name: string]: MetadataValue } | undefined
    }
  ) => Effect.Effect<void, StoreError>
  readonly delete: (key: string) => Effect.Effect<void, StoreError>
  readonly list: (options?: Omit<ListOptions, "database" | "table">) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Decoded entries whose key starts with `prefix` (all when absent), ordered by key and paged. */
  readonly entries: (
    options?: PageOptions & { readonly prefix?: string | undefined }
  ) => Effect.Effect<ReadonlyArray<readonly [key: string, value: A]>, StoreError>
  readonly watch: (options?: { readonly prefix?: string | undefined }) => Stream.Stream<Change, StoreError>
}

/**
 * Binds a table to a Schema. `contentType` picks the codec (default: the Codecs default, usually JSON).
 * @example
 * import * as Effect from "effect/Effect"
 * import * as Schema from "effect/Schema"
 * import * as Store from "effect-micro/Store"
 *
 * class User extends Schema.Class<User>("User")({ name: Schema.String, age: Schema.Number }) {}
 *
 * export const program = Effect.gen(function*() {
 *   const users = yield* Store.table(User, { table: "users" })
 *   yield* users.set("ada", new User({ name: "Ada", age: 36 }))
 *   return yield* users.get("ada") // Effect<User, StoreError>
 * })
 * @since 0.1.0
 * @category constructors
 */
export const table: <A, I>(
  schema: Schema.Schema<A, I, never>,
  options: NamespaceOptions & { readonly contentType?: string | undefined }
) => Effect.Effect<Table<A>, StoreError, Store | Codecs> = typed.table
