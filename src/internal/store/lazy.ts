/**
 * A Store that opens its backend on first use, in the layer's scope: a process that never touches the
 * store creates nothing (no database file), which is what a default layer shared by every service needs.
 */
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Store, StoreError } from "../../Store.js"
import { TypeId } from "../../Store.js"

export const make = (
  backend: string,
  defaults: Store.Service["defaults"],
  open: Effect.Effect<Store.Service, StoreError, Scope.Scope>
): Effect.Effect<Store.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    // Opened once (concurrent first calls share one open); a failed open fails every call with its error.
    const opened = yield* Effect.cached(Scope.extend(open, scope))
    return {
      [TypeId]: TypeId,
      backend,
      defaults,
      read: (key, options) => Effect.flatMap(opened, (store) => store.read(key, options)),
      write: (record, options) => Effect.flatMap(opened, (store) => store.write(record, options)),
      delete: (key, options) => Effect.flatMap(opened, (store) => store.delete(key, options)),
      list: (options) => Effect.flatMap(opened, (store) => store.list(options)),
      watch: (options) => Stream.unwrap(Effect.map(opened, (store) => store.watch(options)))
    } satisfies Store.Service
  })
