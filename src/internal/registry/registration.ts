/**
 * How a server keeps its node registered: register (three attempts, backing off from 100 ms), renew every
 * `interval` before the TTL runs out (a failed renewal is logged and tried again next interval), deregister when
 * the scope closes. Shared by the native server and the gRPC server.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Registry, RegistryError, Service } from "../../Registry.js"
import { registryCounters } from "./counters.js"

export const registrationDefaults = {
  ttl: Duration.seconds(90),
  interval: Duration.seconds(30),
  attempts: 3
} as const

export interface RegistrationOptions {
  readonly ttl?: Duration.DurationInput | undefined
  readonly interval?: Duration.DurationInput | undefined
  /** For the renewal failure's log line (`re-registration of <label> failed`). */
  readonly label: string
  /** Runs just before the deregistration (a server stops being ready from that moment). */
  readonly onDeregister?: Effect.Effect<void> | undefined
}

export const keepRegistered = (
  registry: Registry.Service,
  service: Service,
  options: RegistrationOptions
): Effect.Effect<void, RegistryError, Scope.Scope> =>
  Effect.gen(function*() {
    const register = registry.register(service, { ttl: options.ttl ?? registrationDefaults.ttl }).pipe(
      Effect.tapBoth({
        onFailure: () => Effect.sync(() => registryCounters.registrationFailures++),
        onSuccess: () => Effect.sync(() => registryCounters.registrations++)
      })
    )
    yield* Effect.acquireRelease(
      Effect.retry(
        register,
        Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(registrationDefaults.attempts - 1)))
      ),
      () => Effect.zipRight(options.onDeregister ?? Effect.void, Effect.ignoreLogged(registry.deregister(service)))
    )
    yield* Effect.sleep(options.interval ?? registrationDefaults.interval).pipe(
      Effect.zipRight(register),
      Effect.tapError((error) => Effect.logWarning(`re-registration of ${options.label} failed`, error)),
      Effect.ignore,
      Effect.forever,
      Effect.forkScoped
    )
  })
