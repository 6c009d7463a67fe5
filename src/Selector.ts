/**
 * Client-side load balancing: pick one node of a service for a call, skipping nodes this call already
 * tried, and learn from the outcome.
 *
 * Strategies: `layerRandom` (default), `layerRoundRobin`. Filters (version, metadata) come with each call.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
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
  // The common call: one version, no filter, nothing tried yet — its nodes as they are (no copy per call).
  if (filter === undefined && request.versions.length === 1 && (tried === undefined || tried.size === 0)) {
    return request.versions[0]!.nodes
  }
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
 * @since 0.1.0
 * @category models
 */
export interface StrategyOptions {
  /**
   * How long a node that just failed (refused, reset, timed out) is avoided while other nodes remain, so a
   * dead node the registry still lists (until its TTL runs out) does not cost every call a failed attempt.
   * Default 5 seconds; 0 disables.
   */
  readonly cooldown?: Duration.DurationInput | undefined
}

/** Nodes that failed recently, by id → the epoch millis until which they are avoided. */
class Cooldown {
  private readonly until = new Map<string, number>()
  constructor(private readonly millis: number) {}

  mark(node: Node, outcome: Outcome): Effect.Effect<void> {
    if (outcome === "success") return this.until.size === 0 ? Effect.void : Effect.sync(() => this.until.delete(node.id))
    if (this.millis <= 0) return Effect.void
    return Effect.map(Clock.currentTimeMillis, (now) => {
      this.until.set(node.id, now + this.millis)
    })
  }

  /** Drops avoided nodes unless that would leave none. Healthy services (the common case) pay nothing. */
  filter(nodes: ReadonlyArray<Node>): Effect.Effect<ReadonlyArray<Node>> {
    if (this.until.size === 0) return Effect.succeed(nodes)
    return Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [id, until] of this.until) if (until <= now) this.until.delete(id)
      const healthy = nodes.filter((node) => !this.until.has(node.id))
      return healthy.length > 0 ? healthy : nodes
    })
  }
}

const cooldownOf = (options?: StrategyOptions) =>
  new Cooldown(Duration.toMillis(Duration.decode(options?.cooldown ?? "5 seconds")))

/**
 * Uniformly random among candidates (Effect's `Random`, so tests can seed it).
 * @since 0.1.0
 * @category constructors
 */
export const makeRandom = (options?: StrategyOptions): Selector.Service => {
  const cooldown = cooldownOf(options)
  return Selector.of({
    select: (request) => {
      const nodes = candidates(request)
      if (nodes.length === 0) return Effect.fail(noNodes(request))
      if (nodes.length === 1) return Effect.succeed(nodes[0]!)
      return Effect.flatMap(cooldown.filter(nodes), (usable) =>
        usable.length === 1
          ? Effect.succeed(usable[0]!)
          : Effect.map(Random.nextIntBetween(0, usable.length), (i) => usable[i]!))
    },
    mark: (_service, node, outcome) => cooldown.mark(node, outcome)
  })
}

/**
 * Round-robin per service, in node-id order so every client walks the same ring.
 * @since 0.1.0
 * @category constructors
 */
export const makeRoundRobin = (options?: StrategyOptions): Selector.Service => {
  const cooldown = cooldownOf(options)
  const counters = new Map<string, number>()
  return Selector.of({
    select: (request) =>
      Effect.suspend(() => {
        const nodes = candidates(request)
        if (nodes.length === 0) return Effect.fail(noNodes(request))
        return Effect.map(cooldown.filter(nodes), (usable) => {
          const sorted = [...usable].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
          const next = counters.get(request.service) ?? 0
          counters.set(request.service, next + 1)
          return sorted[next % sorted.length]!
        })
      }),
    mark: (_service, node, outcome) => cooldown.mark(node, outcome)
  })
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRandom = (options?: StrategyOptions): Layer.Layer<Selector> =>
  Layer.sync(Selector, () => makeRandom(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRoundRobin = (options?: StrategyOptions): Layer.Layer<Selector> =>
  Layer.sync(Selector, () => makeRoundRobin(options))

/**
 * The default strategy (random, like go-micro).
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Selector> = Layer.suspend(() => layerRandom())
