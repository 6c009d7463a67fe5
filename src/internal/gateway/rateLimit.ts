/**
 * Per-client token buckets: each key (the client's IP) has `burst` tokens refilled at `ratePerSecond`; a
 * request takes one or is refused with the seconds until the next token (for `Retry-After`). Plain code,
 * called once per request. Memory is bounded: at most `maxClients` buckets; when full, buckets that refilled
 * completely (idle clients, indistinguishable from new ones) are dropped, and if none, the oldest.
 */
export interface RateLimiter {
  /** 0 when the request may go, else the seconds to wait (an integer ≥ 1, for `Retry-After`). */
  readonly take: (key: string, nowMillis: number) => number
  readonly size: () => number
}

interface Bucket {
  tokens: number
  updatedMillis: number
}

export const make = (options: {
  readonly ratePerSecond: number
  readonly burst: number
  readonly maxClients: number
}): RateLimiter => {
  const { burst, maxClients, ratePerSecond } = options
  const perMilli = ratePerSecond / 1000
  const buckets = new Map<string, Bucket>()

  const refill = (bucket: Bucket, now: number) => {
    const elapsed = now - bucket.updatedMillis
    if (elapsed > 0) {
      bucket.tokens = Math.min(burst, bucket.tokens + elapsed * perMilli)
      bucket.updatedMillis = now
    }
  }

  const makeRoom = (now: number) => {
    for (const [key, bucket] of buckets) {
      refill(bucket, now)
      if (bucket.tokens >= burst) buckets.delete(key)
    }
    if (buckets.size >= maxClients) {
      const oldest = buckets.keys().next().value
      if (oldest !== undefined) buckets.delete(oldest)
    }
  }

  return {
    take: (key, now) => {
      let bucket = buckets.get(key)
      if (bucket === undefined) {
        if (buckets.size >= maxClients) makeRoom(now)
        bucket = { tokens: burst, updatedMillis: now }
        buckets.set(key, bucket)
      } else {
        refill(bucket, now)
      }
      if (bucket.tokens >= 1) {
        bucket.tokens -= 1
        return 0
      }
      return Math.max(1, Math.ceil((1 - bucket.tokens) / perMilli / 1000))
    },
    size: () => buckets.size
  }
}
