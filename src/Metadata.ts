/**
 * Per-call metadata: a string map sent from client to server with every call (auth token, trace ids,
 * tenant, ...). Keys are lowercased on the way out, as HTTP headers are.
 *
 * Handlers read it from their `headers` argument or with `Metadata.currentCall`; callers add it per call
 * (`{ metadata }`) or for a whole region of code with `Metadata.withOutgoing`.
 *
 * @since 0.1.0
 */
import { NoSuchElementException } from "effect/Cause"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import { dual } from "effect/Function"

/**
 * @since 0.1.0
 * @category models
 */
export type Metadata = Readonly<Record<string, string>>

/**
 * The empty metadata (the initial outgoing metadata; compared by reference on the client's fast path).
 * @since 0.1.0
 * @category constructors
 */
export const empty: Metadata = Object.freeze({})

/**
 * What the server knows about the call being handled.
 * @since 0.1.0
 * @category models
 */
export interface IncomingCall {
  readonly service: string
  readonly endpoint: string
  readonly contentType: string
  readonly metadata: Metadata
  /** Epoch millis after which the caller no longer waits (the handler is stopped then). */
  readonly deadline: number | undefined
  readonly peer: { readonly address: string; readonly identity: string | undefined }
}

/**
 * The call being handled, inside a server handler or server middleware.
 * @since 0.1.0
 * @category references
 */
// A plain reference rather than an Option: fiber-ref writes compare old and new values, and comparing
// Options hashes the fresh call object on every request (measured a few µs and GC churn per call).
export const currentCallRef: FiberRef.FiberRef<IncomingCall | undefined> = FiberRef.unsafeMake<
  IncomingCall | undefined
>(
  undefined
)

/**
 * The call being handled; fails with NoSuchElementException outside a handler.
 * @since 0.1.0
 * @category accessors
 */
export const currentCall: Effect.Effect<IncomingCall, NoSuchElementException> = Effect.flatMap(
  FiberRef.get(currentCallRef),
  (call) =>
    call === undefined ? Effect.fail(new NoSuchElementException("not inside a call handler")) : Effect.succeed(call)
)

/**
 * Metadata added to every call made inside a region of code.
 * @since 0.1.0
 * @category references
 */
export const outgoingRef: FiberRef.FiberRef<Metadata> = FiberRef.unsafeMake<Metadata>(empty)

/**
 * Adds metadata to every call made by `self`.
 * @since 0.1.0
 * @category combinators
 */
export const withOutgoing: {
  (metadata: Metadata): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: Metadata): Effect.Effect<A, E, R>
} = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, metadata: Metadata): Effect.Effect<A, E, R> =>
    Effect.locallyWith(self, outgoingRef, (current) => merge(current, metadata))
)

/**
 * Merges metadata maps (later wins) with lowercased keys.
 * @since 0.1.0
 * @category utils
 */
export const merge = (...maps: ReadonlyArray<Metadata | undefined>): Metadata => {
  let out: Record<string, string> | undefined
  for (const map of maps) {
    if (map === undefined) continue
    for (const key in map) {
      out ??= {}
      out[key.toLowerCase()] = map[key]!
    }
  }
  return out ?? empty
}
