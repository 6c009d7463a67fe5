/**
 * Client-side load balancing: pick one node of a service for a call, skipping nodes this call already
 * tried, and learn from the outcome.
 *
 * Strategies: `layerRandom` (default), `layerRoundRobin`. Filters (version, metadata) come with each call.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import { NoAvailableNodes } from "./Errors.js"
import type { Node, Service } from "./Registry.js"

/**
 * Which nodes a call may use.
 * @since 0.1.0
 * @category models
 */
export interface Filter {
  /** Only nodes of this service version. */
  readonly version?: string | undefined
  /** Only nodes whose metadata contains all these pairs. */
  readonly metadata?: Readonly<Record<string, string>> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SelectRequest {
  readonly service: string
  readonly versions: ReadonlyArray<Service>
  readonly filter?: Filter | undefined
  /** Node ids this call already tried; avoided while any other node remains. */
  readonly tried?: ReadonlySet<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type Outcome = "success" | "failure"

/**
 * @since 0.1.0
 * @category tags
 */
export class Selector extends Context.Tag("effect-micro/Selector")<Selector, Selector.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Selector {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly select: (request: SelectRequest) => Effect.Effect<Node, NoAvailableNodes>
    /** Feedback after an attempt (a circuit breaker or latency-aware strategy uses it). */
    readonly mark: (service: string, node: Node, outcome: Outcome) => Effect.Effect<void>
  }
}

/**
 * The nodes a call may use: filtered, and without the ones already tried unless nothing else is left
 * (a single-node service can still be retried).
 * @since 0.1.0
 * @category utils
 */
export const candidates = (request: SelectRequest): ReadonlyArray<Node> => {
  const { filter, tried } = request
  let nodes: Array<Node> = []
  for (const service of request.versions) {
    if (filter?.version !== undefined && service.version !== filter.version) continue
    for (const node of service.nodes) {
      if (filter?.metadata !== undefined && !matchesMetadata(node, service, filter.metadata)) continue
      nodes.push(node)
    }
  }
  if (tried !== undefined && tried.size > 0 && nodes.length > 1) {
    const fresh = nodes.filter((node) => !tried.has(node.id))
    if (fresh.length > 0) nodes = fresh
  }
  return nodes
}

const matchesMetadata = (node: Node, service: Service, wanted: Readonly<Record<string, string>>): boolean => {
  for (const key in wanted) {
    const value = node.metadata[key] ?? service.metadata[key]
    if (value !== wanted[key]) return false
  }
  return true
}

const noNodes = (request: SelectRequest) =>
  NoAvailableNodes.of(
    `no node of "${request.service}" matches` +
      (request.filter?.version !== undefined ? ` version ${request.filter.version}` : "") +
      (request.filter?.metadata !== undefined ? ` metadata ${JSON.stringify(request.filter.metadata)}` : "")
  )

/**
 * Uniformly random among candidates (Effect's `Random`, so tests can seed it).
 * @since 0.1.0
 * @category constructors
 */
export const makeRandom: Selector.Service = Selector.of({
  select: (request) => {
    const nodes = candidates(request)
    if (nodes.length === 0) return Effect.fail(noNodes(request))
    if (nodes.length === 1) return Effect.succeed(nodes[0]!)
    return Effect.map(Random.nextIntBetween(0, nodes.length), (i) => nodes[i]!)
  },
  mark: () => Effect.void
})

/**
 * Round-robin per service, in node-id order so every client walks the same ring.
 * @since 0.1.0
 * @category constructors
 */
export const makeRoundRobin = (): Selector.Service => {
  const counters = new Map<string, number>()
  return Selector.of({
    select: (request) =>
      Effect.suspend(() => {
        const nodes = [...candidates(request)].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        if (nodes.length === 0) return Effect.fail(noNodes(request))
        const next = counters.get(request.service) ?? 0
        counters.set(request.service, next + 1)
        return Effect.succeed(nodes[next % nodes.length]!)
      }),
    mark: () => Effect.void
  })
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRandom: Layer.Layer<Selector> = Layer.succeed(Selector, makeRandom)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRoundRobin: Layer.Layer<Selector> = Layer.sync(Selector, makeRoundRobin)

/**
 * The default strategy (random, like go-micro).
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Selector> = layerRandom
