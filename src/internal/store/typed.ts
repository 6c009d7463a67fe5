import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type { Codec, SchemaCodec } from "../../Codec.js"
import { Codecs } from "../../Codec.js"
import type { NamespaceOptions, Record as StoreRecord, Table } from "../../Store.js"
import { Store, StoreError } from "../../Store.js"
import { validateName } from "./common.js"

/** Metadata entry naming the codec a value was written with. */
export const CONTENT_TYPE = "content-type"

export const table = <A, I>(
  schema: Schema.Schema<A, I, never>,
  options: NamespaceOptions & { readonly contentType?: string | undefined }
): Effect.Effect<Table<A>, StoreError, Store | Codecs> =>
  Effect.gen(function*() {
    const store = yield* Store
    const codecs = yield* Codecs
    const database = validateName("database", options.database ?? store.defaults.database)
    if (database instanceof StoreError) return yield* database
    const tableName = validateName("table", options.table ?? store.defaults.table)
    if (tableName instanceof StoreError) return yield* tableName
    const selected = options.contentType === undefined ? Either.right(codecs.default) : codecs.get(options.contentType)
    if (Either.isLeft(selected)) {
      return yield* new StoreError({ reason: "Invalid", detail: selected.left.detail, cause: selected.left })
    }
    const writer: Codec = selected.right
    const compiled = new Map<string, SchemaCodec<A>>()
    const codecFor = (codec: Codec): SchemaCodec<A> => {
      let c = compiled.get(codec.contentType)
      if (c === undefined) {
        c = codec.compile(schema)
        compiled.set(codec.contentType, c)
      }
      return c
    }
    const ns = { database, table: tableName }

    // Decode with the codec the record was written with when this process has it, else the table's.
    const decode = (record: StoreRecord): Either.Either<A, StoreError> => {
      const written = record.metadata[CONTENT_TYPE]
      const codec = typeof written === "string" ? Either.getOrElse(codecs.get(written), () => writer) : writer
      return Either.mapLeft(codecFor(codec).decode(record.value), (cause) =>
        new StoreError({
          reason: "Codec",
          detail: `${database}/${tableName}/${record.key}: ${cause.detail}`,
          key: record.key,
          cause
        }))
    }

    const get = (key: string) =>
      Effect.flatMap(store.read(key, ns), (records) => {
        const record = records[0]
        return record === undefined
          ? Effect.fail(new StoreError({ reason: "NotFound", detail: `no record "${key}"`, key }))
          : decode(record)
      })

    const service: Table<A> = {
      database,
      table: tableName,
      get,
      getOption: (key) =>
        get(key).pipe(
          Effect.map(Option.some),
          Effect.catchIf((error) => error.reason === "NotFound", () => Effect.succeed(Option.none<A>()))
        ),
      set: (key, value, setOptions) =>
        Effect.flatMap(
          Either.mapLeft(
            codecFor(writer).encode(value),
            (cause) =>
              new StoreError({
                reason: "Codec",
                detail: `${database}/${tableName}/${key}: ${cause.detail}`,
                key,
                cause
              })
          ),
          (bytes) =>
            store.write(
              { key, value: bytes, metadata: { ...setOptions?.metadata, [CONTENT_TYPE]: writer.contentType } },
              { ...ns, ttl: setOptions?.ttl }
            )
        ),
      delete: (key) => store.delete(key, ns),
      list: (listOptions) => store.list({ ...listOptions, ...ns }),
      entries: (entriesOptions) =>
        Effect.flatMap(
          store.read(entriesOptions?.prefix ?? "", {
            ...ns,
            prefix: true,
            limit: entriesOptions?.limit,
            offset: entriesOptions?.offset
          }),
          (records) =>
            Effect.forEach(records, (record) => Effect.map(decode(record), (value) => [record.key, value] as const))
        ),
      watch: (watchOptions) => store.watch({ ...ns, prefix: watchOptions?.prefix })
    }
    return service
  })
