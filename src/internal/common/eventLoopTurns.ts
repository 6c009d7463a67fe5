/**
 * Hands the event loop back during long runs of synchronous operations.
 *
 * An operation whose Effect completes without suspending (a better-sqlite3 call) never returns to the
 * event loop by itself, and `Effect.yieldNow` does not either: Effect's scheduler resumes yielded fibers
 * in microtasks, per fiber, and falls back to a timer only after 2048 consecutive rounds. Four fibers
 * writing to the embedded store in a loop (yielding every few writes) measured 3.5–4.9 s without one turn
 * of the loop: no socket read or write, no timer, no registry renewal or lease in that time, while
 * stdout grew by 1.6 MB in memory.
 *
 * `step` is called at the start of each operation. Every 16th call it looks at the clock: the first look
 * after a turn arms a `setImmediate` that marks the next turn; a look more than `budgetMillis` after that
 * with no turn in between returns an Effect that waits for the loop's next check phase (≈ a few µs when
 * nothing else is pending). Operations driven by I/O, the normal case, see a turn between every two
 * looks and never wait.
 */
import * as Effect from "effect/Effect"

const CHECK_EVERY = 16

const nextTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

export class EventLoopTurns {
  private calls = 0
  /** `performance.now()` of the first look since the last turn; -1 once the loop has turned. */
  private since = -1
  private readonly turned = () => {
    this.since = -1
  }

  constructor(private readonly budgetMillis: number) {}

  /** `undefined` (run the operation now), or an Effect to run first that waits for the event loop's turn. */
  step(): Effect.Effect<void> | undefined {
    if (++this.calls % CHECK_EVERY !== 0) return undefined
    const now = performance.now()
    if (this.since < 0) {
      this.since = now
      setImmediate(this.turned)
      return undefined
    }
    return now - this.since < this.budgetMillis ? undefined : nextTurn
  }
}
