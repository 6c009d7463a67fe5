/**
 * What every store backend shares: input validation, option defaults, key order and the mapping from the
 * public `Store.Service` to a small `Backend` each engine implements. Validation lives here once so every
 * backend rejects the same inputs with the same typed errors.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as Debug from "../../Debug.js"
import type {
  Change,
  ListOptions,
  MetadataValue,
  ReadOptions,
  Record as StoreRecord,
  RecordInput,
  Store,
  StoreOptions,
  WatchOptions,
  WriteOptions
} from "../../Store.js"
import { StoreError, TypeId } from "../../Store.js"
import { measuredStore } from "../debug/metrics.js"

export type Metadata = { readonly [name: string]: MetadataValue }

export interface Namespace {
  readonly database: string
  readonly table: string
}

/** A validated range query: filters first, then `offset`, then `limit` (undefined = no limit, never 0). */
export interface Query {
  readonly ns: Namespace
  readonly prefix: string | undefined
  readonly suffix: string | undefined
  readonly offset: number
  readonly limit: number | undefined
}

/** The engine-specific part of a store. Inputs are validated; outputs contain only live records. */
export interface Backend {
  readonly name: string
  /** An exact read: the live record as a one-element array (what `read` returns), else reason NotFound. */
  readonly get: (ns: Namespace, key: string) => Effect.Effect<ReadonlyArray<StoreRecord>, StoreError>
  readonly query: (query: Query) => Effect.Effect<ReadonlyArray<StoreRecord>, StoreError>
  readonly keys: (query: Query) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** `ttlMillis` undefined: no expiry. */
  readonly put: (
    ns: Namespace,
    key: string,
    value: Uint8Array,
    metadata: Metadata,
    ttlMillis: number | undefined
  ) => Effect.Effect<void, StoreError>
  readonly remove: (ns: Namespace, key: string) => Effect.Effect<void, StoreError>
  readonly watch: (ns: Namespace, prefix: string) => Stream.Stream<Change, StoreError>
}

/** The one table of the SQL backends (SQLite, Postgres) and its migrations table. */
export const TABLE = "effect_micro_store"
export const MIGRATIONS_TABLE = "effect_micro_store_migrations"

/** The SQL backends' expiry sweep period: 1 minute unless set. */
export const defaultSweepInterval = (input: Duration.DurationInput | undefined): Duration.Duration =>
  input === undefined ? Duration.minutes(1) : Duration.decode(input)

export const DEFAULT_DATABASE = "micro"
export const DEFAULT_TABLE = "micro"
/** Default `maxValueSize`: 16 MiB, well under every engine's own limit (Redis 512 MB, Postgres bytea 1 GB). */
export const DEFAULT_MAX_VALUE_SIZE = 16 * 1024 * 1024
/** Longest key in UTF-8 bytes: keeps every engine's index happy (Postgres btree rows max out near 2.7 kB). */
export const MAX_KEY_BYTES = 1024

const NAME = /^[A-Za-z0-9_.-]{1,64}$/

export const invalid = (detail: string, key?: string): StoreError => new StoreError({ reason: "Invalid", detail, key })

export const unavailable = (backend: string, detail: string, cause: unknown): StoreError =>
  new StoreError({ reason: "Unavailable", detail: `${backend}: ${detail}`, cause })

export const unsupported = (detail: string): StoreError => new StoreError({ reason: "Unsupported", detail })

export const notFound = (ns: Namespace, key: string): StoreError =>
  new StoreError({ reason: "NotFound", detail: `no record "${key}" in ${ns.database}/${ns.table}`, key })

export const validateName = (kind: "database" | "table", name: unknown): string | StoreError =>
  typeof name === "string" && NAME.test(name)
    ? name
    : invalid(`${kind} name must be 1-64 characters of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`)

/** What every layer takes from `StoreOptions`, validated once. */
export interface Settings {
  readonly defaults: Namespace
  /** Largest accepted `value.byteLength`; larger writes fail with reason TooLarge before the backend. */
  readonly maxValueSize: number
  /** `Debug.layerMetrics` was provided: operations report to Effect metrics. */
  readonly metrics?: boolean | undefined
}

/** The layer's shared settings; a bad default namespace or `maxValueSize` fails the layer with reason Invalid. */
export const resolveSettings = (options: StoreOptions | undefined): Effect.Effect<Settings, StoreError> => {
  const database = validateName("database", options?.database ?? DEFAULT_DATABASE)
  if (database instanceof StoreError) return Effect.fail(database)
  const table = validateName("table", options?.table ?? DEFAULT_TABLE)
  if (table instanceof StoreError) return Effect.fail(table)
  const maxValueSize = options?.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE
  if (typeof maxValueSize !== "number" || !Number.isSafeInteger(maxValueSize) || maxValueSize < 0) {
    return Effect.fail(invalid(`maxValueSize must be a non-negative integer (bytes), got ${String(maxValueSize)}`))
  }
  return Effect.map(Debug.Metrics, (metrics) => ({ defaults: { database, table }, maxValueSize, metrics }))
}

/** The one place the value size limit is enforced (every backend goes through `fromBackend`). */
export const checkValueSize = (key: string, value: Uint8Array, maxValueSize: number): StoreError | undefined =>
  value.byteLength > maxValueSize
    ? new StoreError({
      reason: "TooLarge",
      detail: `value of "${key}" is ${value.byteLength} bytes, more than maxValueSize (${maxValueSize})`,
      key
    })
    : undefined

const namespaceOf = (
  defaults: Namespace,
  options: { readonly database?: string | undefined; readonly table?: string | undefined } | undefined
): Namespace | StoreError => {
  if (options?.database === undefined && options?.table === undefined) return defaults
  const database = options.database === undefined ? defaults.database : validateName("database", options.database)
  if (database instanceof StoreError) return database
  const table = options.table === undefined ? defaults.table : validateName("table", options.table)
  if (table instanceof StoreError) return table
  return { database, table }
}

/** A key or pattern: a well-formed string without NUL, at most MAX_KEY_BYTES; `allowEmpty` for patterns. */
export const validateKey = (key: unknown, allowEmpty: boolean): string | StoreError => {
  if (typeof key !== "string") return invalid(`key must be a string, got ${typeof key}`)
  if (key.length === 0 && !allowEmpty) return invalid("key must not be empty", key)
  if (key.includes("\u0000")) return invalid("key must not contain NUL characters", key)
  if (!isWellFormed(key)) return invalid("key must be well-formed Unicode (no lone surrogates)", key)
  if (Buffer.byteLength(key, "utf8") > MAX_KEY_BYTES) return invalid(`key longer than ${MAX_KEY_BYTES} bytes`, key)
  return key
}

const isWellFormed = (s: string): boolean => {
  const f = (s as { isWellFormed?: () => boolean }).isWellFormed
  if (f !== undefined) return f.call(s)
  return !/\p{Surrogate}/u.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""))
}

const validateCount = (name: "limit" | "offset", n: unknown): number | undefined | StoreError => {
  if (n === undefined) return undefined
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    return invalid(`${name} must be a non-negative integer, got ${String(n)}`)
  }
  return n
}

/** The metadata of a record written without any (shared: never mutated, compared by identity). */
export const NO_METADATA: Metadata = Object.freeze({})

export const validateMetadata = (metadata: unknown): Metadata | StoreError => {
  if (metadata === undefined) return NO_METADATA
  if (metadata === null || typeof metadata !== "object" || Array.isArray(metadata)) {
    return invalid("metadata must be an object")
  }
  const out: { [name: string]: MetadataValue } = {}
  for (const [name, value] of Object.entries(metadata)) {
    if (
      value === null || typeof value === "string" || typeof value === "boolean" ||
      (typeof value === "number" && Number.isFinite(value))
    ) {
      out[name] = value
    } else {
      return invalid(`metadata "${name}" must be a string, finite number, boolean or null`)
    }
  }
  return out
}

/** TTL in whole milliseconds (sub-millisecond rounds up), undefined for none/infinite. */
export const validateTtl = (ttl: unknown): number | undefined | StoreError => {
  if (ttl === undefined) return undefined
  const decoded = Duration.decodeUnknown(ttl)
  if (Option.isNone(decoded)) return invalid(`ttl is not a duration: ${String(ttl)}`)
  const duration = decoded.value
  if (!Duration.isFinite(duration)) return undefined
  const millis = Duration.toMillis(duration)
  if (!(millis > 0)) return invalid(`ttl must be positive, got ${Duration.format(duration)}`)
  return Math.ceil(millis)
}

/**
 * Code point order (= UTF-8 byte order), the order Redis ZRANGEBYLEX, SQLite BINARY and Postgres
 * `COLLATE "C"` use. JS `<` compares UTF-16 code units, which puts U+E000..U+FFFF after astral characters.
 */
export const compareKeys = (a: string, b: string): number => {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    if (x >= 0xd800 && y >= 0xd800) {
      // Move surrogates above the rest of the BMP (ICU's code point order fix-up).
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }
    return x - y
  }
  return a.length - b.length
}

/**
 * The smallest string greater than every string starting with `prefix` (code point order), or undefined
 * when there is none. `prefix <= key < upperBound(prefix)` is exactly "key starts with prefix".
 */
export const upperBound = (prefix: string): string | undefined => {
  const points = Array.from(prefix, (c) => c.codePointAt(0)!)
  while (points.length > 0) {
    const last = points.pop()!
    if (last < 0x10ffff) {
      points.push(last === 0xd7ff ? 0xe000 : last + 1)
      return String.fromCodePoint(...points)
    }
  }
  return undefined
}

export const matches = (key: string, prefix: string | undefined, suffix: string | undefined): boolean =>
  (prefix === undefined || key.startsWith(prefix)) && (suffix === undefined || key.endsWith(suffix))

export const expiryOf = (expiresAt: number | undefined, now: number): Duration.Duration | undefined =>
  expiresAt === undefined ? undefined : Duration.millis(Math.max(0, expiresAt - now))

export const makeRecord = (
  key: string,
  value: Uint8Array,
  metadata: Metadata,
  expiry: Duration.Duration | undefined
): StoreRecord => expiry === undefined ? { key, value, metadata } : { key, value, metadata, expiry }

// ----- metadata / value encodings shared by engines that store bytes -----

export const encodeMetadata = (metadata: Metadata): string => metadata === NO_METADATA ? "{}" : JSON.stringify(metadata)

/** Always a fresh object: records are never shared with the store's state or with each other. */
export const decodeMetadata = (text: string | null | undefined): Metadata => {
  if (text === null || text === undefined || text === "" || text === "{}") return {}
  const parsed = JSON.parse(text)
  return parsed !== null && typeof parsed === "object" ? parsed : {}
}

/** Drivers return Buffers; records always carry a plain Uint8Array (zero-copy view), whatever the backend. */
export const toUint8Array = (bytes: Uint8Array): Uint8Array =>
  Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes

export const toBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

// ----- Store.Service from a Backend -----

const fail = (error: StoreError) => Effect.fail(error)

/** Validates every input once, then delegates to the backend. */
export const fromBackend = (backend: Backend, settings: Settings): Store.Service => {
  const { defaults, maxValueSize } = settings

  const page = (options: { readonly limit?: number | undefined; readonly offset?: number | undefined } | undefined) => {
    const limit = validateCount("limit", options?.limit)
    if (limit instanceof StoreError) return limit
    const offset = validateCount("offset", options?.offset)
    if (offset instanceof StoreError) return offset
    return { limit, offset: offset ?? 0 }
  }

  const read = (key: string, options?: ReadOptions): Effect.Effect<ReadonlyArray<StoreRecord>, StoreError> => {
    if (options === undefined) {
      // The common case, an exact read in the default namespace: only the key to check.
      const checked = validateKey(key, false)
      return checked instanceof StoreError ? fail(checked) : backend.get(defaults, checked)
    }
    const ns = namespaceOf(defaults, options)
    if (ns instanceof StoreError) return fail(ns)
    const paging = page(options)
    if (paging instanceof StoreError) return fail(paging)
    const pattern = options?.prefix === true || options?.suffix === true
    const checked = validateKey(key, pattern)
    if (checked instanceof StoreError) return fail(checked)
    if (!pattern) {
      // The backend fails with NotFound first; offset/limit then apply to the one-element result.
      const found = backend.get(ns, checked)
      return paging.offset === 0 && paging.limit !== 0
        ? found
        : Effect.map(found, (records) => slice(records, paging.offset, paging.limit))
    }
    if (paging.limit === 0) return Effect.succeed([])
    return backend.query({
      ns,
      prefix: options?.prefix === true && checked !== "" ? checked : undefined,
      suffix: options?.suffix === true && checked !== "" ? checked : undefined,
      offset: paging.offset,
      limit: paging.limit
    })
  }

  const write = (record: RecordInput, options?: WriteOptions): Effect.Effect<void, StoreError> => {
    if (record === null || typeof record !== "object") return fail(invalid("record must be an object"))
    const ns = namespaceOf(defaults, options)
    if (ns instanceof StoreError) return fail(ns)
    const key = validateKey(record.key, false)
    if (key instanceof StoreError) return fail(key)
    if (!(record.value instanceof Uint8Array)) return fail(invalid("value must be a Uint8Array", key))
    const tooLarge = checkValueSize(key, record.value, maxValueSize)
    if (tooLarge !== undefined) return fail(tooLarge)
    const metadata = validateMetadata(record.metadata)
    if (metadata instanceof StoreError) return fail(metadata)
    const ttl = validateTtl(options?.ttl !== undefined ? options.ttl : record.expiry)
    if (ttl instanceof StoreError) return fail(ttl)
    return backend.put(ns, key, record.value, metadata, ttl)
  }

  const del = (
    key: string,
    options?: { readonly database?: string | undefined; readonly table?: string | undefined }
  ) => {
    const ns = namespaceOf(defaults, options)
    if (ns instanceof StoreError) return fail(ns)
    const checked = validateKey(key, false)
    if (checked instanceof StoreError) return fail(checked)
    return backend.remove(ns, checked)
  }

  const list = (options?: ListOptions): Effect.Effect<ReadonlyArray<string>, StoreError> => {
    const ns = namespaceOf(defaults, options)
    if (ns instanceof StoreError) return fail(ns)
    const paging = page(options)
    if (paging instanceof StoreError) return fail(paging)
    const prefix = options?.prefix === undefined ? "" : validateKey(options.prefix, true)
    if (prefix instanceof StoreError) return fail(prefix)
    const suffix = options?.suffix === undefined ? "" : validateKey(options.suffix, true)
    if (suffix instanceof StoreError) return fail(suffix)
    if (paging.limit === 0) return Effect.succeed([])
    return backend.keys({
      ns,
      prefix: prefix === "" ? undefined : prefix,
      suffix: suffix === "" ? undefined : suffix,
      offset: paging.offset,
      limit: paging.limit
    })
  }

  const watch = (options?: WatchOptions): Stream.Stream<Change, StoreError> => {
    const ns = namespaceOf(defaults, options)
    if (ns instanceof StoreError) return Stream.fail(ns)
    const prefix = options?.prefix === undefined ? "" : validateKey(options.prefix, true)
    if (prefix instanceof StoreError) return Stream.fail(prefix)
    return backend.watch(ns, prefix)
  }

  const service: Store.Service = {
    [TypeId]: TypeId,
    backend: backend.name,
    defaults,
    read,
    write,
    delete: del,
    list,
    watch
  }
  return settings.metrics ? measuredStore(service) : service
}

export const slice = <A>(items: ReadonlyArray<A>, offset: number, limit: number | undefined): ReadonlyArray<A> =>
  offset === 0 && (limit === undefined || limit >= items.length)
    ? items
    : items.slice(offset, limit === undefined ? undefined : offset + limit)
