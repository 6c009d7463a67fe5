/**
 * Registry activity of the process, for `Debug.Stats`, `/metrics` and `Debug.layerMetrics`. Plain numbers,
 * bumped off the per-call path (a cached lookup that is fresh counts nothing).
 */
export const registryCounters = {
  /** Registrations and renewals of this process' servers that succeeded, and that failed. */
  registrations: 0,
  registrationFailures: 0,
  /** Lookups the cache sent to the registry (a miss or a stale entry), and those that failed. */
  lookups: 0,
  lookupFailures: 0,
  /** Lookups answered with the last known nodes because the registry was unavailable. */
  staleServed: 0,
  /** Watch events the cache applied. */
  watchEvents: 0
}
