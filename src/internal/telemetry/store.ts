/** Tracing wrapped around any `Store.Service`: one client span per read, write, delete and list. */
import * as Effect from "effect/Effect"
import type { NamespaceOptions, Store } from "../../Store.js"

export const wrapStore = (store: Store.Service): Store.Service => {
  const system = store.backend
  const traced = <A, E>(
    operation: string,
    key: string | undefined,
    options: NamespaceOptions | undefined,
    effect: Effect.Effect<A, E>
  ): Effect.Effect<A, E> =>
    Effect.withSpan(effect, `store.${operation}`, {
      kind: "client",
      captureStackTrace: false,
      attributes: {
        "db.system.name": system,
        "db.namespace": options?.database ?? store.defaults.database,
        "db.collection.name": options?.table ?? store.defaults.table,
        "db.operation.name": operation,
        ...(key !== undefined ? { "effect_micro.store.key": key } : {})
      }
    })
  return {
    ...store,
    read: (key, options) =>
      traced(
        "read",
        key,
        options,
        Effect.tap(
          store.read(key, options),
          (records) => Effect.annotateCurrentSpan("effect_micro.store.records", records.length)
        )
      ),
    write: (record, options) => traced("write", record.key, options, store.write(record, options)),
    delete: (key, options) => traced("delete", key, options, store.delete(key, options)),
    list: (options) => traced("list", options?.prefix, options, store.list(options))
  }
}
