import * as Data from "effect/Data"

/**
 * A local (non-wire) failure of an Auth layer: the operation is not offered by this layer, the input is
 * invalid, or a key could not be used.
 */
export class AuthError extends Data.TaggedError("AuthError")<{
  readonly reason: "Unsupported" | "AccountExists" | "InvalidInput" | "InvalidKey"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `auth ${this.reason}: ${this.detail}`
  }
}
