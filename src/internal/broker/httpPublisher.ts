/**
 * The HTTP broker's publisher side: looks the topic's service up in the Registry in context (use the cached
 * one), groups its nodes into targets (`httpPublication`) and queues the publication on their outboxes
 * (`httpOutbox`), which POST batches (`httpBatch`). Assembled by `http.ts`.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Scope from "effect/Scope"
import type { Broker, PublishOptions } from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { Registry, Service as RegisteredService } from "../../Registry.js"
import type { Peekable } from "../registry/cached.js"
import { peekKey } from "../registry/cached.js"
import type { DeadlineWheel } from "../rpc/deadlines.js"
import { normalizeHeaders, OCTET_STREAM } from "./core.js"
import { BatchPoster } from "./httpBatch.js"
import { OutboxPool } from "./httpOutbox.js"
import { backlogged, makeTargetsOf, Publication, send } from "./httpPublication.js"
import type { BrokerState, Settings } from "./httpSettings.js"

/** The broker's `publish`; the dispatcher it starts lives in `layerScope`. */
export const makePublisher = (
  settings: Settings,
  registry: Registry.Service,
  layerScope: Scope.Scope,
  deadlines: DeadlineWheel,
  state: BrokerState
): Effect.Effect<Broker.Service["publish"]> =>
  Effect.gen(function*() {
    const { connectTimeout, maxInFlight, maxPending, servicePrefix } = settings
    // One connection per subscriber endpoint with up to `maxInFlight` batches pipelined on it: TCP keeps
    // them in order and the endpoint handles them in arrival order, so order per publisher is kept while the
    // publisher prepares the next batch as the subscriber handles the previous one. POSTs are marked
    // idempotent only so that undici pipelines them (undici never retries by itself).
    const poster = new BatchPoster(deadlines, settings.publishTimeout, settings.maxBodySize)
    // Created by the first publish, with undici loaded then: ≈100–150 ms of module loading (measured) that
    // subscribe-only processes, and every process's start-up, would otherwise pay.
    const startDispatcher = yield* Effect.cached(
      Effect.acquireRelease(
        Effect.promise(() => import("@effect/platform-node/Undici")).pipe(
          Effect.map((Undici) =>
            new Undici.Agent({
              connections: 1,
              pipelining: maxInFlight,
              // A subscriber host that vanished (no answer to SYN) fails here, and is ejected, before the publish timeout.
              connect: { timeout: Math.max(1, Math.round(Math.min(Duration.toMillis(connectTimeout), 2_147_483_647))) }
            })
          )
        ),
        (agent) => Effect.promise(() => agent.destroy().catch(() => undefined))
      ).pipe(
        Effect.map((agent) => {
          poster.dispatcher = agent
        }),
        // Lives in the layer's scope, not the first publisher's.
        Scope.extend(layerScope)
      )
    )

    const pool = new OutboxPool(deadlines.clock, settings.ejection, poster, settings)
    const targetsOf = makeTargetsOf(pool)

    const publishTo = (
      topic: string,
      services: ReadonlyArray<RegisteredService>,
      body: Uint8Array,
      publishOptions: PublishOptions | undefined
    ): Effect.Effect<void, BrokerError> => {
      if (state.draining) {
        return Effect.fail(
          new BrokerError({ reason: "Closed", topic, detail: "broker closed", failures: [], cause: undefined })
        )
      }
      const targets = targetsOf(topic, services)
      if (targets.count === 0) return Effect.void
      const fireAndForget = publishOptions?.fireAndForget === true
      const publication = new Publication(
        topic,
        publishOptions?.contentType ?? OCTET_STREAM,
        normalizeHeaders(publishOptions?.headers),
        body,
        targets,
        !fireAndForget
      )
      if (fireAndForget && !backlogged(targets, maxPending)) {
        // No Effect.async on this path: queue and return (results are dropped).
        send(publication)
        return Effect.void
      }
      // Waits for the results; fire-and-forget waits too while an outbox is over `maxPending` (backpressure).
      return Effect.async<void, BrokerError>((resume) => {
        publication.resume = resume
        send(publication)
      })
    }

    // The registry lookup and its error mapping in one step (no catchAll wrapper on the success path).
    const lookup = (
      topic: string,
      body: Uint8Array,
      publishOptions?: PublishOptions
    ): Effect.Effect<void, BrokerError> =>
      Effect.matchEffect(registry.getService(serviceName(topic)), {
        onFailure: (cause) =>
          cause._tag === "ServiceNotFound"
            ? publishTo(topic, noServices, body, publishOptions)
            : Effect.fail(
              new BrokerError({
                reason: "Unavailable",
                topic,
                detail: `registry: ${cause.message}`,
                failures: [],
                cause
              })
            ),
        onSuccess: (services) => publishTo(topic, services, body, publishOptions)
      })

    // `<servicePrefix><topic>` per topic, built once (no string concatenation and hashing per publish).
    const serviceNames = new Map<string, string>()
    const serviceName = (topic: string): string => {
      let name = serviceNames.get(topic)
      if (name === undefined) {
        if (serviceNames.size >= 10_000) serviceNames.clear()
        name = servicePrefix + topic
        serviceNames.set(topic, name)
      }
      return name
    }

    // With the cached registry (what publishers use), a fresh entry is read synchronously: a publish is then
    // one Effect step plus its Effect.async, instead of a registry Effect and a matchEffect around it.
    const peek = (registry as Peekable)[peekKey]
    const publish = peek === undefined ?
      lookup :
      (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
        Effect.suspend(() => {
          const services = peek(serviceName(topic))
          return services !== undefined
            ? publishTo(topic, services, body, publishOptions)
            : lookup(topic, body, publishOptions)
        })

    const ready = (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
      poster.dispatcher !== undefined
        ? publish(topic, body, publishOptions)
        : Effect.zipRight(startDispatcher, publish(topic, body, publishOptions))

    const publishWithTimeout = (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
      publishOptions?.timeout === undefined
        ? ready(topic, body, publishOptions)
        : Effect.timeoutFail(ready(topic, body, publishOptions), {
          duration: publishOptions.timeout,
          onTimeout: () =>
            new BrokerError({
              reason: "Timeout",
              topic,
              detail: "no delivery result within the publish timeout",
              failures: []
            })
        })

    return publishWithTimeout
  })

const noServices: ReadonlyArray<RegisteredService> = []
