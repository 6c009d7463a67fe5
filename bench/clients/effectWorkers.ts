/**
 * `LoadClient.workers` for Effect clients: `count` fibers, each running `call` in a loop and reporting every
 * outcome, forked from the client's runtime.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Runtime from "effect/Runtime"
import { performance } from "node:perf_hooks"

export const workers =
  <R>(runtime: Runtime.Runtime<R>, call: () => Effect.Effect<unknown, unknown, R>) =>
  (count: number, settled: (error: unknown, startedAt: number) => boolean): void => {
    const loop: Effect.Effect<void, never, R> = Effect.suspend(() => {
      const startedAt = performance.now()
      return Effect.flatMap(
        Effect.exit(call()),
        (exit) => settled(Exit.isSuccess(exit) ? undefined : exit.cause, startedAt) ? loop : Effect.void
      )
    })
    const runFork = Runtime.runFork(runtime)
    for (let i = 0; i < count; i++) runFork(loop)
  }
