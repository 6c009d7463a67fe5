import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { DynamicConfigError } from "../../DynamicConfig.js"

/** Right: the source may have changed (re-read it). Left: an error to report (the last good tree stays). */
export type Signal = Either.Either<void, DynamicConfigError>

export interface Signals {
  /** Safe to call from any callback (fs.watch, an EventEmitter). */
  readonly offer: (signal: Signal) => void
  /**
   * The signals, batched: after the first one, wait `window`, then emit the errors that arrived meanwhile
   * (the last of each message) followed by one "changed" if any arrived. A burst of events (an editor's
   * write + rename, many etcd puts in one transaction) becomes a single reload, with bounded latency
   * even when events never stop (unlike a trailing debounce).
   */
  readonly changes: Stream.Stream<Signal>
}

export const makeSignals = (window: Duration.DurationInput): Effect.Effect<Signals, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(Queue.unbounded<Signal>(), Queue.shutdown)
    const delay = Duration.decode(window)
    const batch = Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      if (Duration.toMillis(delay) > 0) yield* Effect.sleep(delay)
      const rest = yield* Queue.takeAll(queue)
      const errors = new Map<string, DynamicConfigError>()
      let changed = false
      for (const signal of [first, ...rest]) {
        if (Either.isRight(signal)) changed = true
        else errors.set(signal.left.message, signal.left)
      }
      const out: Array<Signal> = [...errors.values()].map(Either.left)
      if (changed) out.push(Either.right(undefined))
      return out
    })
    return {
      offer: (signal) => {
        Queue.unsafeOffer(queue, signal)
      },
      changes: Stream.repeatEffect(batch).pipe(Stream.flattenIterables)
    }
  })
