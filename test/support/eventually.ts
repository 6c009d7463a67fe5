/**
 * Waiting on a real condition instead of a fixed sleep: poll it (live clock) until it holds, bounded.
 * Tests wait on signals (this, a Deferred, an event, a child's readiness line), never on "long enough".
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

const describe = (value: unknown): string => {
  try {
    return JSON.stringify(value)?.slice(0, 2000) ?? String(value)
  } catch {
    return String(value) // circular, bigint...
  }
}

/** Polls (live clock) until `predicate` holds for the value, or fails after `timeout`. */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  predicate: (a: A) => boolean,
  timeout: Duration.DurationInput = "10 seconds"
): Effect.Effect<A, E | Error, R> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(Duration.decode(timeout))
    let last: A = yield* effect
    while (!predicate(last)) {
      if (Date.now() > deadline) {
        return yield* Effect.fail(new Error(`condition not met in time; last: ${describe(last)}`))
      }
      yield* Effect.sleep("20 millis")
      last = yield* effect
    }
    return last
  })
