import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { ServiceNotFound } from "../../Errors.js"
import type { Event, RegistryError, Service } from "../../Registry.js"
import { Registry } from "../../Registry.js"
import { registryCounters } from "./counters.js"

export interface Options {
  readonly ttl?: Duration.DurationInput | undefined
}

export const defaultTtl = Duration.minutes(1)

interface Entry {
  services: ReadonlyArray<Service>
  /** when the underlying registry last answered for this name; watch events do not move it */
  fetchedAt: number
}

type Lookup = Effect.Effect<ReadonlyArray<Service>, ServiceNotFound | RegistryError>

/**
 * A synchronous read of the cache, for hot paths inside this package (the HTTP broker's publish): the cached
 * services when the entry is fresh, else undefined (then use `getService`, which fetches). Not part of the
 * public `Registry` interface; found on the service object under this key.
 */
export const peekKey: unique symbol = Symbol.for("effect-micro/CachedRegistry/peek")

/** A registry service that may carry the synchronous cache read. */
export interface Peekable {
  readonly [peekKey]?: ((name: string) => ReadonlyArray<Service> | undefined) | undefined
}

/** Applies one watch event to a cached entry; returns the new list of versions. */
const apply = (services: ReadonlyArray<Service>, event: Event): ReadonlyArray<Service> => {
  const others = services.filter((s) => s.version !== event.service.version)
  return event.type === "delete" || event.service.nodes.length === 0 ? others : [...others, event.service]
}

export const make = (
  underlying: Registry.Service,
  options: Options = {}
): Effect.Effect<Registry.Service, never, Scope.Scope> =>
  Effect.gen(function*() {
    const ttlMillis = Duration.toMillis(Duration.decode(options.ttl ?? defaultTtl))
    // The clock of the fiber that builds the cache (TestClock in tests): read directly on every lookup, so a
    // hit costs one Effect step instead of a Clock service lookup plus a flatMap.
    const clock = yield* Effect.clock
    const cache = new Map<string, Entry>()
    // one underlying lookup per name at a time (go-micro's singleflight)
    const inflight = new Map<string, Deferred.Deferred<ReadonlyArray<Service>, ServiceNotFound | RegistryError>>()

    const onEvent = (event: Event) =>
      Effect.sync(() => {
        registryCounters.watchEvents++
        const entry = cache.get(event.service.name)
        if (entry === undefined) return // only names someone asked for are cached
        entry.services = apply(entry.services, event)
        if (entry.services.length === 0) cache.delete(event.service.name)
      })

    // The watch keeps entries fresh; if it breaks, events may be lost, so every entry is marked stale
    // (refreshed on next use, served meanwhile and while the registry is down) and the watch is restarted.
    yield* underlying.watch().pipe(
      Stream.runForEach(onEvent),
      Effect.ensuring(Effect.sync(() => {
        for (const entry of cache.values()) entry.fetchedAt = Number.NEGATIVE_INFINITY
      })),
      Effect.tapErrorCause((cause) => Effect.logDebug("cached registry: watch failed, restarting", cause)),
      Effect.retry(Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")))),
      Effect.forkScoped
    )

    const fetch = (name: string): Lookup =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const running = inflight.get(name)
          if (running !== undefined) return yield* restore(Deferred.await(running))
          const deferred = yield* Deferred.make<ReadonlyArray<Service>, ServiceNotFound | RegistryError>()
          inflight.set(name, deferred)
          registryCounters.lookups++
          const exit = yield* restore(underlying.getService(name)).pipe(Effect.exit)
          inflight.delete(name)
          if (Exit.isFailure(exit)) registryCounters.lookupFailures++
          const now = clock.unsafeCurrentTimeMillis()
          if (Exit.isSuccess(exit)) cache.set(name, { services: exit.value, fetchedAt: now })
          else if (Exit.isFailure(exit)) {
            const stale = cache.get(name)
            const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
            if (failure?._tag === "ServiceNotFound") cache.delete(name)
            else if (failure?._tag === "RegistryError" && stale !== undefined) {
              // the registry is unavailable: serve what we had (go-micro does the same)
              registryCounters.staleServed++
              yield* Deferred.succeed(deferred, stale.services)
              yield* Effect.logDebug(`cached registry: serving stale "${name}"`, failure.detail)
              return stale.services
            }
          }
          yield* Deferred.done(deferred, exit)
          return yield* exit
        })
      )

    const peek = (name: string): ReadonlyArray<Service> | undefined => {
      const entry = cache.get(name)
      return entry !== undefined && clock.unsafeCurrentTimeMillis() - entry.fetchedAt < ttlMillis &&
          entry.services.length > 0
        ? entry.services
        : undefined
    }

    // A stale entry is served at once while one background fetch refreshes it: a caller never waits on the
    // registry for a name it has seen (etcd starting up, listening but not ready, would hold every call up to
    // the registry's timeout). Only a name never seen, or known to be gone, waits for the registry.
    const scope = yield* Effect.scope
    const refresh = (name: string) => Effect.forkIn(Effect.ignore(fetch(name)), scope)

    const service: Registry.Service & Peekable = {
      register: underlying.register,
      deregister: underlying.deregister,
      listServices: underlying.listServices,
      watch: underlying.watch,
      getService: (name) =>
        Effect.suspend(() => {
          const entry = cache.get(name)
          if (entry === undefined || entry.services.length === 0) return fetch(name)
          if (clock.unsafeCurrentTimeMillis() - entry.fetchedAt < ttlMillis) return Effect.succeed(entry.services)
          return inflight.has(name) ? Effect.succeed(entry.services) : Effect.as(refresh(name), entry.services)
        }),
      [peekKey]: peek
    }
    return Registry.of(service)
  })

export const layer = (options?: Options): Layer.Layer<Registry, never, Registry> =>
  Layer.scoped(Registry, Effect.flatMap(Registry, (underlying) => make(underlying, options)))
