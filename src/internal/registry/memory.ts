import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ServiceNotFound } from "../../Errors.js"
import type { Event, Service } from "../../Registry.js"
import { Registry } from "../../Registry.js"
import { didYouMean } from "../common/text.js"
import { expiryOf, matchesWatch, RegistryView } from "./view.js"

export const makeMemory: Effect.Effect<Registry.Service, never, Scope.Scope> = Effect.gen(function*() {
  const view = new RegistryView()
  const events = yield* Effect.acquireRelease(PubSub.unbounded<Event>(), PubSub.shutdown)
  const publish = (event: Event | undefined) => event === undefined ? Effect.void : PubSub.publish(events, event)

  // Expiries must produce delete events for watchers, so a reaper runs on the Clock.
  yield* Clock.currentTimeMillis.pipe(
    Effect.flatMap((now) => PubSub.publishAll(events, view.expire(now))),
    Effect.repeat(Schedule.spaced("1 second")),
    Effect.forkScoped
  )

  return Registry.of({
    register: (service, options) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => publish(view.upsert(service, expiryOf(now, options)))),
    deregister: (service) => Effect.suspend(() => publish(view.remove(service))),
    getService: (name) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const found = view.get(name, now)
        return found.length > 0
          ? Effect.succeed(found)
          : Effect.fail(ServiceNotFound.of(
            `service "${name}" is not registered (memory registry)${
              didYouMean(name, view.list(now).map((s) => s.name))
            }`
          ))
      }),
    listServices: Effect.map(Clock.currentTimeMillis, (now) => view.list(now)),
    watch: (options) => Stream.fromPubSub(events).pipe(Stream.filter(matchesWatch(options)))
  })
})

export const layerStatic = (services: Readonly<Record<string, ReadonlyArray<string>>>): Layer.Layer<Registry> => {
  // One array per service, returned as is by every lookup (callers may cache work on its identity).
  const entries = new Map<string, ReadonlyArray<Service>>()
  for (const [name, addresses] of Object.entries(services)) {
    entries.set(name, [{
      name,
      version: "",
      metadata: {},
      endpoints: [],
      nodes: addresses.map((address) => ({ id: `${name}-${address}`, address, metadata: {} }))
    }])
  }
  return Layer.succeed(
    Registry,
    Registry.of({
      register: () => Effect.void,
      deregister: () => Effect.void,
      getService: (name) => {
        const versions = entries.get(name)
        return versions === undefined
          ? Effect.fail(ServiceNotFound.of(`service "${name}" is not in the static registry`))
          : Effect.succeed(versions)
      },
      listServices: Effect.sync(() => [...entries.values()].flat()),
      watch: () => Stream.never
    })
  )
}
