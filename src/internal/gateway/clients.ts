/**
 * The gateway's dynamic clients, one per service, cached so that a call is one round trip (not a
 * `Debug.Describe` and then the call). Bounded (least recently built goes first); an entry is dropped when
 * a registry event shows a node of its service advertising another describe digest (a new contract), or when
 * a call names an endpoint the cached description lacks or the server answers NotFound (then the next
 * request describes the service again). Concurrent misses for one service share one describe.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Client } from "../../Client.js"
import * as ClientModule from "../../Client.js"
import type { Description, EndpointDescription } from "../../Debug.js"
import type { CallError } from "../../Errors.js"
import { Registry } from "../../Registry.js"
import type { DynamicMethod } from "../rpc/dynamic.js"
import * as internalDynamic from "../rpc/dynamic.js"

/** One endpoint, ready to call: its description, its method and the statuses its errors declare. */
export interface GatewayEndpoint {
  readonly service: string
  readonly description: EndpointDescription
  readonly method: DynamicMethod
  /** `_tag` → HTTP status from the error's `x-http-status` (see internal/debug/describe.ts). */
  readonly errorStatus: ReadonlyMap<string, number>
}

export interface ServiceEntry {
  readonly description: Description
  readonly endpoints: ReadonlyMap<string, GatewayEndpoint>
}

/** `_tag` → status declared anywhere in an error JSON Schema (`x-http-status` beside a `_tag` enum). */
export const errorStatusOf = (errorSchema: string): ReadonlyMap<string, number> => {
  const statuses = new Map<string, number>()
  if (!errorSchema.includes("x-http-status")) return statuses
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) return node.forEach(visit)
    if (typeof node !== "object" || node === null) return
    const record = node as Record<string, unknown>
    const status = record["x-http-status"]
    const tag = (record.properties as { _tag?: { enum?: ReadonlyArray<unknown> } } | undefined)?._tag?.enum?.[0]
    if (typeof status === "number" && typeof tag === "string") statuses.set(tag, status)
    for (const key in record) visit(record[key])
  }
  try {
    visit(JSON.parse(errorSchema))
  } catch {
    // A description is the server's; a malformed schema just declares no statuses.
  }
  return statuses
}

export interface ClientCache {
  /** The service's entry: from the cache, or described now. */
  readonly get: (service: string) => Effect.Effect<ServiceEntry, CallError>
  /** The cached entry, if any (no I/O). */
  readonly peek: (service: string) => ServiceEntry | undefined
  /** Forget a service (its contract changed or an endpoint went missing). */
  readonly invalidate: (service: string, entry?: ServiceEntry) => void
  readonly size: () => number
}

/** Endpoints of a description with their methods. */
const fromDescription = (description: Description): Effect.Effect<ServiceEntry, never, Client> =>
  Effect.map(internalDynamic.fromDescription(description), (client) => {
    const endpoints = new Map<string, GatewayEndpoint>()
    for (const endpoint of description.endpoints) {
      const method = client.methods[endpoint.name]
      if (method === undefined) continue
      endpoints.set(endpoint.name, {
        service: description.service,
        description: endpoint,
        method,
        errorStatus: errorStatusOf(endpoint.error)
      })
    }
    return { description, endpoints }
  })

// The watch is best effort (a registry that cannot watch just leaves invalidation to NotFound).
const watchRetry = Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("10 seconds")))

export const make = (options: {
  readonly maxServices: number
}): Effect.Effect<ClientCache, never, Client | Registry | Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<Client>()
    const registry = yield* Registry
    const entries = new Map<string, ServiceEntry>()
    const pending = new Map<string, Deferred.Deferred<ServiceEntry, CallError>>()

    const remember = (service: string, entry: ServiceEntry) => {
      entries.delete(service)
      entries.set(service, entry)
      if (entries.size > options.maxServices) {
        const oldest = entries.keys().next().value
        if (oldest !== undefined) entries.delete(oldest)
      }
    }

    // The first request for a service describes it; requests arriving meanwhile wait for that answer.
    const describeNow = (service: string): Effect.Effect<ServiceEntry, CallError> => {
      const waiting = pending.get(service)
      if (waiting !== undefined) return Deferred.await(waiting)
      const deferred = Deferred.unsafeMake<ServiceEntry, CallError>(FiberId.none)
      pending.set(service, deferred)
      // Retried like a call (Client.describe is a probe and does not retry): a dead node must not fail it.
      return ClientModule.describe(service, { retry: undefined }).pipe(
        Effect.flatMap(fromDescription),
        Effect.tap((entry) => Effect.sync(() => remember(service, entry))),
        Effect.provide(context),
        Effect.exit,
        Effect.flatMap((exit) => {
          pending.delete(service)
          return Effect.zipRight(Deferred.done(deferred, exit), exit)
        }),
        Effect.uninterruptible
      )
    }

    yield* Effect.forkScoped(
      Stream.runForEach(
        Stream.retry(registry.watch(), watchRetry),
        (event) =>
          Effect.sync(() => {
            const entry = entries.get(event.service.name)
            if (entry === undefined) return
            // A node advertising another digest than the cached description's: the contract changed.
            const changed = event.service.nodes.some((node) => {
              const digest = node.metadata["describe"]
              return digest !== undefined && digest !== entry.description.digest
            })
            if (changed) entries.delete(event.service.name)
          })
      ).pipe(Effect.ignore)
    )

    return {
      get: (service) => {
        const entry = entries.get(service)
        return entry === undefined ? describeNow(service) : Effect.succeed(entry)
      },
      peek: (service) => entries.get(service),
      invalidate: (service, entry) => {
        if (entry === undefined || entries.get(service) === entry) entries.delete(service)
      },
      size: () => entries.size
    }
  })
