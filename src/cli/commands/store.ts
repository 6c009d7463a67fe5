/**
 * `micro store get|put|list|delete|watch`: the data store from a terminal. The store is a backend, not a
 * service, so the CLI opens it directly: the embedded SQLite file a service uses (`--store path/to/store.db`,
 * safe next to the running service), Redis (`redis://…`) or Postgres (`postgres://…`).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Store from "../../Store.js"
import { UsageError } from "../exit.js"
import * as input from "../input.js"
import * as options from "../options.js"
import * as output from "../output.js"
import * as progress from "../progress.js"

const where = {
  store: Options.text("store").pipe(
    Options.withFallbackConfig(Config.string("MICRO_STORE")),
    Options.withDefault(".micro/store.db"),
    Options.withDescription(
      "A SQLite file (default .micro/store.db, the embedded store's default), redis://host:port[/db] or postgres://user@host/db. Env MICRO_STORE."
    )
  ),
  database: Options.text("database").pipe(
    Options.optional,
    Options.withDescription("Store database (namespace). Default micro.")
  ),
  table: Options.text("table").pipe(Options.optional, Options.withDescription("Store table. Default micro.")),
  asJson: options.output.asJson
}

interface Where {
  readonly store: string
  readonly database: Option.Option<string>
  readonly table: Option.Option<string>
}

// Plugins load only when named: their drivers are optional peer dependencies.
const plugin = <M>(load: () => Promise<M>, what: string) =>
  Effect.tryPromise({
    try: load,
    catch: (error) => new UsageError({ detail: `the ${what} store needs its driver installed: ${String(error)}` })
  })

const backend = (url: string): Layer.Layer<Store.Store, Store.StoreError | UsageError> => {
  if (/^rediss?:\/\//.test(url)) {
    return Layer.unwrapEffect(
      Effect.map(plugin(() => import("../../plugins/redis/RedisStore.js"), "redis"), (Redis) => Redis.layer({ url }))
    )
  }
  if (/^postgres(ql)?:\/\//.test(url)) {
    return Layer.unwrapEffect(
      Effect.map(
        plugin(() => import("../../plugins/postgres/PostgresStore.js"), "postgres"),
        (Postgres) => Postgres.layer({ connection: { url: Redacted.make(url) } })
      )
    )
  }
  return Store.layerSqlite({ filename: url.replace(/^sqlite:/, "") })
}

const namespace = (config: Where) => ({
  ...Option.match(config.database, { onNone: () => ({}), onSome: (database) => ({ database }) }),
  ...Option.match(config.table, { onNone: () => ({}), onSome: (table) => ({ table }) })
})

const withStore = <A, E>(config: Where, effect: Effect.Effect<A, E, Store.Store>) =>
  Effect.provide(effect, backend(config.store))

const strict = new TextDecoder("utf-8", { fatal: true })

/** A record as JSON: the value as text when it is UTF-8, else base64; expiry as milliseconds left. */
const recordJson = (record: Store.Record) => {
  let value: { readonly value: string } | { readonly base64: string }
  try {
    value = { value: strict.decode(record.value) }
  } catch {
    value = { base64: Buffer.from(record.value).toString("base64") }
  }
  return {
    key: record.key,
    ...value,
    metadata: record.metadata,
    ...(record.expiry === undefined ? {} : { expiresInMillis: Duration.toMillis(record.expiry) })
  }
}

const page = {
  limit: Options.integer("limit").pipe(Options.optional, Options.withDescription("At most this many.")),
  offset: Options.integer("offset").pipe(Options.optional, Options.withDescription("Skip this many first."))
}

const pageOf = (config: { readonly limit: Option.Option<number>; readonly offset: Option.Option<number> }) => ({
  ...Option.match(config.limit, { onNone: () => ({}), onSome: (limit) => ({ limit }) }),
  ...Option.match(config.offset, { onNone: () => ({}), onSome: (offset) => ({ offset }) })
})

const get = Command.make(
  "get",
  {
    ...where,
    ...page,
    key: Args.text({ name: "key" }),
    prefix: Options.boolean("prefix").pipe(Options.withDescription("Every record whose key starts with <key>."))
  },
  (config) =>
    withStore(
      config,
      Effect.gen(function*() {
        const store = yield* Store.Store
        const records = yield* store.read(config.key, {
          ...namespace(config),
          ...pageOf(config),
          prefix: config.prefix
        })
        if (config.asJson) return yield* output.json(config.prefix ? records.map(recordJson) : recordJson(records[0]!))
        if (!config.prefix) return yield* Effect.sync(() => process.stdout.write(records[0]!.value))
        for (const record of records) {
          const json = recordJson(record)
          yield* output.text(`${record.key}\t${"value" in json ? json.value : `base64:${json.base64}`}`)
        }
      })
    )
).pipe(Command.withDescription("Print a record's value (exit 3 if absent), or with --prefix every matching record."))

const put = Command.make(
  "put",
  {
    ...where,
    key: Args.text({ name: "key" }),
    value: Args.text({ name: "value" }).pipe(
      Args.withDescription("The value as text; '-' or nothing reads stdin (bytes as they are)."),
      Args.optional
    ),
    ttl: Options.text("ttl").pipe(Options.optional, Options.withDescription("Expire after this long, e.g. 30s.")),
    metadata: Options.keyValueMap("metadata").pipe(
      Options.withAlias("m"),
      Options.optional,
      Options.withDescription("Record metadata, key=value (repeatable; values are strings).")
    )
  },
  (config) =>
    withStore(
      config,
      Effect.gen(function*() {
        const value = yield* input.bytes(config.value)
        const ttl = yield* Option.match(config.ttl, {
          onNone: () => Effect.succeed(undefined),
          onSome: options.parseDuration
        })
        const store = yield* Store.Store
        yield* store.write(
          {
            key: config.key,
            value,
            ...Option.match(config.metadata, {
              onNone: () => ({}),
              onSome: (map) => ({ metadata: Object.fromEntries(HashMap.toEntries(map)) })
            })
          },
          { ...namespace(config), ...(ttl === undefined ? {} : { ttl }) }
        )
        yield* config.asJson ? output.json({ key: config.key, written: value.byteLength }) : Effect.void
      })
    )
).pipe(Command.withDescription("Write a record (last write wins)."))

const list = Command.make(
  "list",
  {
    ...where,
    ...page,
    prefix: Options.text("prefix").pipe(Options.optional, Options.withDescription("Only keys starting with this.")),
    suffix: Options.text("suffix").pipe(Options.optional, Options.withDescription("Only keys ending with this."))
  },
  (config) =>
    withStore(
      config,
      Effect.gen(function*() {
        const store = yield* Store.Store
        const keys = yield* store.list({
          ...namespace(config),
          ...pageOf(config),
          ...Option.match(config.prefix, { onNone: () => ({}), onSome: (prefix) => ({ prefix }) }),
          ...Option.match(config.suffix, { onNone: () => ({}), onSome: (suffix) => ({ suffix }) })
        })
        yield* config.asJson ? output.json(keys) : keys.length === 0 ? Effect.void : output.text(keys.join("\n"))
      })
    )
).pipe(Command.withDescription("List keys, ordered."))

const remove = Command.make(
  "delete",
  { ...where, key: Args.text({ name: "key" }) },
  (config) =>
    withStore(
      config,
      Effect.flatMap(Store.Store, (store) => store.delete(config.key, namespace(config))).pipe(
        Effect.zipRight(config.asJson ? output.json({ key: config.key, deleted: true }) : Effect.void)
      )
    )
).pipe(Command.withDescription("Delete a record (a missing key is not an error)."))

const watch = Command.make(
  "watch",
  {
    ...where,
    prefix: Options.text("prefix").pipe(Options.optional, Options.withDescription("Only keys starting with this.")),
    count: Options.integer("count").pipe(Options.optional, Options.withDescription("Exit after this many changes."))
  },
  (config) =>
    withStore(
      config,
      Effect.gen(function*() {
        const store = yield* Store.Store
        let seen = 0
        const changes = store.watch({
          ...namespace(config),
          ...Option.match(config.prefix, { onNone: () => ({}), onSome: (prefix) => ({ prefix }) })
        })
        yield* progress.note("watching")
        yield* progress.show(() => `${seen} change(s) (Ctrl-C to stop)`)
        yield* changes.pipe(
          Option.match(config.count, { onNone: () => (s: typeof changes) => s, onSome: (n) => Stream.take(n) }),
          Stream.runForEach((change) =>
            Effect.suspend(() => {
              seen++
              return config.asJson ? output.json(change) : output.text(`${change.type}\t${change.key}`)
            })
          )
        )
      }).pipe(Effect.scoped)
    )
).pipe(Command.withDescription("Print writes, deletes and expiries as they happen."))

export const store = Command.make("store").pipe(
  Command.withDescription("Read and write the data store (SQLite file, Redis or Postgres)."),
  Command.withSubcommands([get, put, list, remove, watch])
)
