/**
 * A Store that opens its backend on first use, in the layer's scope: a process that never touches the
 * store creates nothing (no database file), which is what a default layer shared by every service needs.
 */
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
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
    const layerScope = yield* Effect.scope
    const lock = yield* Effect.makeSemaphore(1)
    let store: Store.Service | undefined
    // One open at a time (concurrent first calls share it). A failed open is not remembered: the call fails
    // with its StoreError, whatever it acquired is released, and the next call tries again.
    const attempt = Effect.flatMap(Scope.fork(layerScope, ExecutionStrategy.sequential), (scope) =>
      Scope.extend(open, scope).pipe(
        Effect.tap((opened) => {
          store = opened
        }),
        Effect.onExit((exit) =>
          Exit.isFailure(exit) ? Scope.close(scope, exit) : Effect.void
        )
      ))
    const opened: Effect.Effect<Store.Service, StoreError> = Effect.suspend(() =>
      store !== undefined
        ? Effect.succeed(store)
        : lock.withPermits(1)(Effect.suspend(() => store !== undefined ? Effect.succeed(store) : attempt))
    )
    return {
      [TypeId]: TypeId,
      backend,
      defaults,
      read: (key, options) => Effect.flatMap(opened, (s) => s.read(key, options)),
      write: (record, options) => Effect.flatMap(opened, (s) => s.write(record, options)),
      delete: (key, options) => Effect.flatMap(opened, (s) => s.delete(key, options)),
      list: (options) => Effect.flatMap(opened, (s) => s.list(options)),
      watch: (options) => Stream.unwrap(Effect.map(opened, (s) => s.watch(options)))
    } satisfies Store.Service
  })
