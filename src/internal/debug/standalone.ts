/**
 * The probe port of a process that runs no server (a worker that only subscribes, a gateway, a batch job):
 * the same `/health`, `/ready`, `/stats` and `/metrics` as a server's `http` option, with the process-wide
 * figures (broker, registry, memory, event-loop delay, GC) and no endpoints or connections.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Health, ProbeOptions, Stats } from "../../Debug.js"
import type { TransportError } from "../../Errors.js"
import { brokerCounters } from "../broker/counters.js"
import { registryCounters } from "../registry/counters.js"
import { listen } from "./http.js"
import * as processStats from "./process.js"

export const serve = (
  options: ProbeOptions
): Effect.Effect<{ readonly address: string }, TransportError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* processStats.acquire
    const startedAt = Date.now()
    const node = options.node ?? `${options.name}-${process.pid}`
    const version = options.version ?? "latest"
    let address = ""
    const health = Effect.sync((): Health => ({
      status: "serving",
      service: options.name,
      version,
      node,
      address,
      uptimeMillis: Date.now() - startedAt
    }))
    const stats = Effect.sync((): Stats => ({
      service: options.name,
      node,
      uptimeMillis: Date.now() - startedAt,
      endpoints: [],
      connections: { open: 0, accepted: 0, refused: 0 },
      bytes: { received: 0, sent: 0 },
      broker: { ...brokerCounters },
      registry: { ...registryCounters },
      ...processStats.snapshot()
    }))
    const probe = yield* listen(options, () => ({ health, stats }))
    address = probe.address
    return probe
  })
