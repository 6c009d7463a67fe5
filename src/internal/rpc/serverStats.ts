/**
 * What a server counts about itself, for the built-in `Debug.Stats` endpoint and `/metrics`. Plain numbers on
 * objects made once per endpoint or server: the hot path increments fields, never allocates.
 */

import type { CallMetrics } from "../debug/metrics.js"

/** Upper bounds (ms) of the call-duration histogram buckets; a last, implicit one is +Inf. */
export const DURATION_BUCKETS_MS: ReadonlyArray<number> = [
  1,
  2.5,
  5,
  10,
  25,
  50,
  100,
  250,
  500,
  1000,
  2500,
  5000,
  10000
]

/** How a call ended, as counted. */
export const Outcome = { Succeeded: 0, Failed: 1, Cancelled: 2 } as const
export type Outcome = typeof Outcome[keyof typeof Outcome]

export class EndpointStats {
  /** Effect metrics of this endpoint, when `Debug.layerMetrics` is on. */
  metrics: CallMetrics | undefined = undefined
  started = 0
  succeeded = 0
  failed = 0
  /** Ended by the caller (CANCEL frame, connection lost) or by the server's stop. */
  cancelled = 0
  inFlight = 0
  /** Histogram counts per bucket (last = above every bound); cumulative when reported. */
  readonly durationCounts = new Float64Array(DURATION_BUCKETS_MS.length + 1)
  durationSumMillis = 0

  constructor(readonly endpoint: string) {}

  start(): void {
    this.started++
    this.inFlight++
    this.metrics?.start()
  }

  /** Failed calls by code (`"408"`, `"error"` …), made on the first failure. */
  failedByCode: Map<string, number> | undefined = undefined

  end(outcome: Outcome, millis: number, failCode = "error"): void {
    this.inFlight--
    if (outcome === Outcome.Succeeded) this.succeeded++
    else if (outcome === Outcome.Failed) {
      this.failed++
      const byCode = this.failedByCode ??= new Map()
      byCode.set(failCode, (byCode.get(failCode) ?? 0) + 1)
    } else this.cancelled++
    let bucket = 0
    while (bucket < DURATION_BUCKETS_MS.length && millis > DURATION_BUCKETS_MS[bucket]!) bucket++
    this.durationCounts[bucket]!++
    this.durationSumMillis += millis
    this.metrics?.end(outcome, millis, failCode)
  }
}

/** Per server: connections and bytes (every endpoint's figures are on its `EndpointStats`). */
export class ConnectionStats {
  open = 0
  accepted = 0
  /** Connections over `maxConnections`: their calls were refused. */
  refused = 0
  bytesIn = 0
  bytesOut = 0
}
