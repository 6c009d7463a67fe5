/**
 * Which failures of a call may be retried on another node, which count against the node, and which are
 * paid from the retry budget.
 */
import type { MicroError, TransportError } from "../../Errors.js"
import { RetryBudgetExhausted } from "../../Errors.js"
import { isFromServer, isNotStarted } from "./endpoint.js"

/**
 * May this failure be retried on another node? Never for endpoint errors. Always when the request
 * provably did not run (refused/dial failures, 503 from a draining server). Otherwise — timeouts, resets —
 * only for idempotent endpoints, since the first node may have run it.
 */
export const isRetryable = (error: unknown, idempotent: boolean): boolean => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return false
  if (isNotStarted(error)) return true
  if (isFromServer(error)) {
    // Sent back by a server whose handler may have run (a 503 or TransportError it got downstream).
    const tag = (error as MicroError)._tag
    return idempotent && (tag === "ServiceUnavailable" || tag === "Timeout" || tag === "TransportError")
  }
  switch ((error as MicroError)._tag) {
    case "TransportError":
      return (error as TransportError).notDelivered || idempotent
    case "ServiceUnavailable":
      return true
    case "Timeout":
      return idempotent
    default:
      return false
  }
}

/** Does this failure say something about the node (unreachable, too slow, unavailable)? */
export const isNodeFailure = (error: unknown): boolean => {
  const tag = typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined
  return tag === "TransportError" || tag === "Timeout" || tag === "ServiceUnavailable"
}

/**
 * A refused or failed dial, or a call dropped before it was written, put no load on any server: retrying it
 * elsewhere cannot amplify a sick cluster's load, so it is not paid from the retry budget. (Otherwise a
 * registry still listing dead nodes — a static list, or the minutes before a TTL expires — turns every pick
 * of a dead node into a budget withdrawal, and callers get RetryBudgetExhausted although live nodes answer.)
 */
export const neverReachedAServer = (error: unknown): boolean =>
  typeof error === "object" && error !== null && (error as { readonly _tag?: unknown })._tag === "TransportError" &&
  (error as TransportError).notDelivered

export const budgetExhausted = (error: unknown): RetryBudgetExhausted => {
  const failure = error as Partial<MicroError>
  return RetryBudgetExhausted.of(
    `retry budget exhausted; not retrying ${failure._tag ?? "failure"}: ${failure.detail ?? String(error)}`
  )
}
