/** Small text helpers shared across subsystems. */

/** The message of a thrown value, whatever was thrown. */
export const errorMessage = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** A short random id for node and subscription ids: unique enough per process start, not a secret. */
export const randomId = (): string => Math.random().toString(36).slice(2, 10) + Math.random().toString(36).slice(2, 6)
