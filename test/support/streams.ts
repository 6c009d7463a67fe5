/** Stream helpers shared by the suites. */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Stream from "effect/Stream"

/** Reads a stream one element at a time (subscribed from the first `next`); each read is bounded. */
export const reader = <A, E>(stream: Stream.Stream<A, E>, timeout: Duration.DurationInput = "5 seconds") =>
  Effect.map(Stream.toPull(stream), (pull) => {
    const buffer: Array<A> = []
    const next: Effect.Effect<A, Option.Option<E>> = Effect.suspend(() =>
      buffer.length > 0
        ? Effect.succeed(buffer.shift()!)
        : Effect.flatMap(pull, (chunk) => {
          for (const item of chunk) buffer.push(item)
          return next
        })
    )
    return { next: next.pipe(Effect.timeout(timeout)) }
  })
