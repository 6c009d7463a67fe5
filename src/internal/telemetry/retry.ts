/**
 * Retries as span events. Called only once an attempt has failed (the retry path), so calls that succeed
 * at the first attempt, and every call when no span is current, pay nothing for it.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

const tagOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : "unknown"

/**
 * Adds a `retry` event to the current span (the client span of `Tracing.client`, or the caller's own):
 * which attempt starts, and the failure and node address of the one before it.
 */
export const recordRetry = (error: unknown, attempt: number, failedAddress: string | undefined): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const span = fiber.currentSpan
    if (span === undefined || span._tag !== "Span") return Effect.void
    return Effect.map(Clock.currentTimeNanos, (now) =>
      span.event("retry", now, {
        "rpc.retry.attempt": attempt,
        "error.type": tagOf(error),
        ...(failedAddress !== undefined ? { "rpc.retry.failed_address": failedAddress } : {})
      }))
  })
