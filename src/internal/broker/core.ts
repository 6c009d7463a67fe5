/** Pieces every broker shares: running a handler into a delivery result, and shaping publish errors. */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type { DeliveryFailure, FailureReason, Handler, Message } from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { Metadata } from "../../Metadata.js"
import { brokerCounters } from "./counters.js"

export const OCTET_STREAM = "application/octet-stream"

/** What one delivery to one local subscriber produced: undefined on success. */
export interface LocalFailure {
  readonly reason: FailureReason
  readonly detail: string
}

const isRejection = (error: unknown): boolean => {
  const tag = typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined
  return tag === "BadRequest" || tag === "CodecError"
}

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { _tag, detail, message } = error as { _tag?: unknown; detail?: unknown; message?: unknown }
    const text = typeof detail === "string" ? detail : typeof message === "string" ? message : undefined
    if (text !== undefined) return typeof _tag === "string" ? `${_tag}: ${text}` : text
  }
  return String(error)
}

/** `Unauthorized` / `Forbidden` (auth refused the message): reported under their own reason, with their detail. */
const authReason = (error: unknown): "Unauthorized" | "Forbidden" | undefined => {
  const tag = typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined
  return tag === "Unauthorized" || tag === "Forbidden" ? tag : undefined
}

/** Maps a handler's failure cause to a delivery failure (rejection, auth refusal or handler failure). */
export const failureOfCause = (cause: Cause.Cause<unknown>): LocalFailure => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") {
    const auth = authReason(failure.value)
    if (auth !== undefined) {
      const detail = (failure.value as { detail?: unknown }).detail
      return { reason: auth, detail: typeof detail === "string" ? detail : describe(failure.value) }
    }
    return isRejection(failure.value)
      ? { reason: "Rejected", detail: describe(failure.value) }
      : { reason: "HandlerFailed", detail: describe(failure.value) }
  }
  const defect = Cause.dieOption(cause)
  if (defect._tag === "Some") return { reason: "HandlerFailed", detail: `defect: ${describe(defect.value)}` }
  return { reason: "HandlerFailed", detail: "handler interrupted" }
}

/**
 * Runs a handler for one message and resolves to its delivery result (never fails). With `autoAck` false the
 * delivery succeeds only if the handler called `message.ack`.
 */
export const deliverLocal = (
  handler: Handler,
  autoAck: boolean,
  topic: string,
  body: Uint8Array,
  contentType: string,
  headers: Metadata
): Effect.Effect<LocalFailure | undefined> => {
  if (autoAck) {
    const message: Message = { topic, body, contentType, headers, ack: Effect.void }
    // Hot path: no generator, one catch.
    return Effect.matchCause(Effect.suspend(() => handler(message)), {
      onFailure: (cause) => {
        brokerCounters.deliveryFailed++
        return failureOfCause(cause)
      },
      onSuccess: () => {
        brokerCounters.delivered++
        return undefined
      }
    })
  }
  return Effect.suspend(() => {
    let acked = false
    const message: Message = {
      topic,
      body,
      contentType,
      headers,
      ack: Effect.sync(() => {
        acked = true
      })
    }
    return Effect.matchCauseEffect(Effect.suspend(() => handler(message)), {
      onFailure: (cause) => {
        brokerCounters.deliveryFailed++
        return acked
          ? Effect.as(Effect.logWarning(`handler for ${topic} failed after ack`, cause), undefined)
          : Effect.succeed(failureOfCause(cause))
      },
      onSuccess: () => {
        if (acked) brokerCounters.delivered++
        else brokerCounters.deliveryFailed++
        return Effect.succeed(
          acked
            ? undefined
            : { reason: "NotAcknowledged", detail: "handler returned without calling ack" } as LocalFailure
        )
      }
    })
  })
}

/** The publish error for a set of failed deliveries. */
export const deliveryFailed = (topic: string, failures: ReadonlyArray<DeliveryFailure>): BrokerError =>
  new BrokerError({
    reason: failures.every((failure) => failure.reason === "Timeout") ? "Timeout" : "DeliveryFailed",
    topic,
    detail: failures.map((f) =>
      `${f.subscriber}${f.queue !== undefined ? ` (queue ${f.queue})` : ""}: ${f.reason}: ${f.detail}`
    )
      .join("; "),
    failures
  })

/** Lowercases header keys (as Metadata does) without copying when already lowercase. */
export const normalizeHeaders = (headers: Metadata | undefined): Metadata => {
  if (headers === undefined) return emptyHeaders
  for (const key in headers) {
    if (key !== key.toLowerCase()) {
      const out: Record<string, string> = {}
      for (const k in headers) out[k.toLowerCase()] = headers[k]!
      return out
    }
  }
  return headers
}

/** The headers of a message published without any (one shared frozen object). */
export const emptyHeaders: Metadata = Object.freeze({})
