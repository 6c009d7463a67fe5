import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type { Broker } from "../../Broker.js"

/**
 * Messages counted by every broker of the process, for `Debug.Stats` and `/metrics`. Plain numbers: the
 * publish and delivery paths increment them, never allocate.
 */
export const brokerCounters = {
  /** Messages a publish handed to the broker successfully. */
  published: 0,
  /** Publishes that failed (no subscriber reachable, broker down, timeout). */
  publishFailed: 0,
  /** Messages a local handler processed. */
  delivered: 0,
  /** Messages a local handler failed on (rejected or died). */
  deliveryFailed: 0
}

const countPublish = (exit: Exit.Exit<unknown, unknown>) =>
  Effect.sync(() => {
    if (Exit.isSuccess(exit)) brokerCounters.published++
    else brokerCounters.publishFailed++
  })

/** `publish` that counts its outcomes in `brokerCounters`. */
export const countingPublish =
  (publish: Broker.Service["publish"]): Broker.Service["publish"] => (topic, body, options) =>
    Effect.onExit(publish(topic, body, options), countPublish)
