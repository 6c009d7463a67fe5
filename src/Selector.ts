/**
 * Client-side load balancing: pick one node of a service for a call, skipping nodes this call already
 * tried and nodes the client runtime has ejected (see `Health`).
 *
 * Strategies: `layerLeastOutstanding` (default: the less loaded of two random nodes), `layerRandom`,
 * `layerRoundRobin`, `layerHashed` (sticky by a per-call key), `layerLeastLatency` (the faster of two random
 * nodes). Filters (version, metadata) come with each call.
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
  /** The call's affinity key (`ClientOptions.key`), for strategies that keep a key on one node. */
  readonly key?: string | undefined
  /**
   * The endpoint being called: versions that advertise their endpoints but not this one are avoided (a
   * rolling upgrade where only new nodes serve a new endpoint) unless no other node is left.
   */
  readonly endpoint?: string | undefined
  /**
   * The client runtime's view of node health: ejected nodes are left out of `candidates`, and load-aware
   * strategies read each node's load. Set by the client on every call.
   */
  readonly health?: Health | undefined
}

/**
 * Node health as the client runtime tracks it (outlier ejection and calls in flight, shared by every call
 * of that runtime). Keyed by node address.
 * @since 0.1.0
 * @category models
 */
export interface Health {
  /** Nodes currently ejected or half-open, over all services; 0 when all are healthy. */
  readonly unhealthy: number
  /**
   * Of `nodes`, those new calls may use: ejected nodes (and half-open ones whose single trial call is out)
   * are dropped, unless fewer than the panic threshold would remain, in which case all are returned.
   * Returns `nodes` itself when nothing is dropped.
   */
  readonly usable: (nodes: ReadonlyArray<Node>) => ReadonlyArray<Node>
  /** The node's load: calls in flight from this client, weighted by its failure state. Lower is better. */
  readonly load: (node: Node) => number
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
    /**
     * Feedback after a failed attempt, for custom strategies. The built-in ones need none: ejection lives in
     * the client runtime and reaches every strategy through `SelectRequest.health`.
     */
    readonly mark: (service: string, node: Node, outcome: Outcome) => Effect.Effect<void>
    /**
     * Latency of each successful unary call, for strategies that use it (the client measures only when
     * this is defined). Synchronous: it runs on the reply path.
     */
    readonly observe?: ((service: string, node: Node, latencyMillis: number) => void) | undefined
  }
}

/**
 * The nodes a call may use: filtered, preferring versions that serve the endpoint, without ejected nodes
 * (unless too few would remain: the panic threshold), and without the ones already tried unless nothing
 * else is left (a single-node service can still be retried).
 * @since 0.1.0
 * @category utils
 */
export const candidates = (request: SelectRequest): ReadonlyArray<Node> => {
  const { endpoint, filter, health, tried } = request
  // The common call: one version that serves the endpoint, no filter, nothing tried yet, every node
  // healthy — its nodes as they are (no copy per call).
  if (
    filter === undefined && request.versions.length === 1 && (tried === undefined || tried.size === 0) &&
    (endpoint === undefined || serves(request.versions[0]!, endpoint))
  ) {
    const nodes = request.versions[0]!.nodes
    return health === undefined || health.unhealthy === 0 ? nodes : health.usable(nodes)
  }
  let nodes: Array<Node> = []
  let others: Array<Node> | undefined
  for (const service of request.versions) {
    if (filter?.version !== undefined && service.version !== filter.version) continue
    const preferred = endpoint === undefined || serves(service, endpoint)
    for (const node of service.nodes) {
      if (filter?.metadata !== undefined && !matchesMetadata(node, service, filter.metadata)) continue
      if (preferred) nodes.push(node)
      else (others ??= []).push(node)
    }
  }
  // Nobody advertises the endpoint: try the others anyway (the server answers NotFound if it truly lacks it).
  if (nodes.length === 0 && others !== undefined) nodes = others
  // Health before `tried`: a retry prefers a healthy node it already tried over an ejected one.
  if (health !== undefined && health.unhealthy > 0) nodes = health.usable(nodes) as Array<Node>
  if (tried !== undefined && tried.size > 0 && nodes.length > 1) {
    const fresh = nodes.filter((node) => !tried.has(node.id))
    if (fresh.length > 0) nodes = fresh
  }
  return nodes
}

/** Endpoint names per registered version (computed once per Service object). */
const endpointNames = new WeakMap<Service, ReadonlySet<string>>()

/** Whether a version serves `endpoint`; versions that advertise no endpoints (static registry) may. */
const serves = (service: Service, endpoint: string): boolean => {
  if (service.endpoints.length === 0) return true
  let names = endpointNames.get(service)
  if (names === undefined) {
    names = new Set(service.endpoints.map((e) => e.name))
    endpointNames.set(service, names)
  }
  return names.has(endpoint)
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
 * Options of the built-in strategies. Ejection of failing nodes is not a selector option: it lives in the
 * client runtime (`Client.layer({ ejection })`), shared by every call and every strategy.
 * @since 0.1.0
 * @category models
 */
export interface StrategyOptions {}

const noFeedback = (): Effect.Effect<void> => Effect.void
/**
 * Uniformly random among candidates (Effect's `Random`, so tests can seed it).
 * @since 0.1.0
 * @category constructors
 */
export const makeRandom = (_options?: StrategyOptions): Selector.Service =>
  Selector.of({ select: selectRandom, mark: noFeedback })

const selectRandom = (request: SelectRequest): Effect.Effect<Node, NoAvailableNodes> => {
  const nodes = candidates(request)
  if (nodes.length === 0) return Effect.fail(noNodes(request))
  if (nodes.length === 1) return Effect.succeed(nodes[0]!)
  return Effect.map(Random.nextIntBetween(0, nodes.length), (i) => nodes[i]!)
}

const byId = (a: Node, b: Node): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/**
 * Candidates in node-id order, sorted once per candidate array. The common call's candidates are the
 * registry's (or the cache's) own node array, the same object until the service changes, so the sort is
 * paid once per change instead of on every call: sorting per call cost 119 µs/call at 3,000 nodes against
 * 0.5 µs at 3 (bench group `scale`). Arrays built for one call (filters, retries, ejections) are sorted each
 * time, O(n log n) on top of the O(n) that built them.
 */
const ringOrder = new WeakMap<ReadonlyArray<Node>, ReadonlyArray<Node>>()
const sortedById = (nodes: ReadonlyArray<Node>): ReadonlyArray<Node> => {
  let sorted = ringOrder.get(nodes)
  if (sorted === undefined) {
    sorted = [...nodes].sort(byId)
    ringOrder.set(nodes, sorted)
  }
  return sorted
}

/**
 * Round-robin per service, in node-id order so every client walks the same ring. O(1) per call while the
 * service's nodes do not change (the ring is sorted once per node list).
 * @since 0.1.0
 * @category constructors
 */
export const makeRoundRobin = (_options?: StrategyOptions): Selector.Service => {
  const counters = new Map<string, number>()
  return Selector.of({
    select: (request) =>
      Effect.suspend(() => {
        const nodes = candidates(request)
        if (nodes.length === 0) return Effect.fail(noNodes(request))
        const sorted = sortedById(nodes)
        const next = counters.get(request.service) ?? 0
        counters.set(request.service, next + 1)
        return Effect.succeed(sorted[next % sorted.length]!)
      }),
    mark: noFeedback
  })
}

/** murmur3's 32-bit finaliser: similar inputs ("node-1", "node-2") get unrelated values. */
const fmix32 = (value: number): number => {
  let hash = value
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0
}

/** FNV-1a, 32 bits, then `fmix32`: fast and well spread for short strings (node ids, keys). */
const fnv1a = (text: string): number => {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return fmix32(hash)
}

/**
 * The hashed strategy's per-call work, made independent of the node count for a node list that does not
 * change (the registry's or cache's own array, the same object until the service changes). Measured in the
 * `scale` bench before: 0.6 µs/call at 3 nodes, 230 µs/call at 3,000 (a string built and hashed per node per
 * call). Now each node id is hashed once per list, a key's score against a node is one integer mix, and on
 * lists of `WINNER_MEMO_MIN_NODES` nodes or more the winner of each key is remembered (at most
 * `WINNER_MEMO_MAX_KEYS` keys per list; the memo is dropped when full). Lists built for one call (filters,
 * retries, ejections) are scored in O(n) integer operations.
 */
const nodeHashes = new WeakMap<ReadonlyArray<Node>, Uint32Array>()
const winners = new WeakMap<ReadonlyArray<Node>, Map<string, Node>>()
const WINNER_MEMO_MIN_NODES = 32
const WINNER_MEMO_MAX_KEYS = 4096

const highestScore = (nodes: ReadonlyArray<Node>, key: string): Node => {
  const memo = nodes.length >= WINNER_MEMO_MIN_NODES ? winners.get(nodes) : undefined
  const known = memo?.get(key)
  if (known !== undefined) return known
  let hashes = nodeHashes.get(nodes)
  if (hashes === undefined) {
    hashes = new Uint32Array(nodes.length)
    for (let i = 0; i < nodes.length; i++) hashes[i] = fnv1a(nodes[i]!.id)
    nodeHashes.set(nodes, hashes)
  }
  const keyHash = fnv1a(key)
  let best = 0
  let bestScore = -1
  for (let i = 0; i < nodes.length; i++) {
    const score = fmix32(keyHash ^ hashes[i]!)
    if (score > bestScore || (score === bestScore && nodes[i]!.id < nodes[best]!.id)) {
      best = i
      bestScore = score
    }
  }
  const winner = nodes[best]!
  if (nodes.length >= WINNER_MEMO_MIN_NODES) {
    let table = memo
    if (table === undefined) winners.set(nodes, table = new Map())
    else if (table.size >= WINNER_MEMO_MAX_KEYS) table.clear()
    table.set(key, winner)
  }
  return winner
}

/**
 * Sticky by key: calls with the same `key` (`ClientOptions.key`) go to the same node as long as it is a
 * candidate. Rendezvous hashing (each node scores `mix(hash(key) ^ hash(node id))`, the highest wins), so when
 * a node joins or leaves only the keys that scored highest on it move. An ejected node, or one this call
 * already tried, passes its keys to the next-highest node. Calls without a key are random. O(1) per call for
 * a key seen before on an unchanged list of 32 nodes or more (see `highestScore`).
 * @since 0.1.0
 * @category constructors
 */
export const makeHashed = (_options?: StrategyOptions): Selector.Service =>
  Selector.of({
    select: (request) => {
      const key = request.key
      if (key === undefined) return selectRandom(request)
      const nodes = candidates(request)
      if (nodes.length === 0) return Effect.fail(noNodes(request))
      if (nodes.length === 1) return Effect.succeed(nodes[0]!)
      return Effect.succeed(highestScore(nodes, key))
    },
    mark: noFeedback
  })

/**
 * Two distinct candidates drawn at random ("power of two choices"), the one `better` prefers wins.
 * One `Random` draw for both indices.
 */
const pickOfTwo = (
  nodes: ReadonlyArray<Node>,
  better: (a: Node, b: Node) => Node
): Effect.Effect<Node> =>
  Effect.map(Random.nextIntBetween(0, nodes.length * (nodes.length - 1)), (draw) => {
    const first = Math.floor(draw / (nodes.length - 1))
    let second = draw % (nodes.length - 1)
    if (second >= first) second++
    return better(nodes[first]!, nodes[second]!)
  })

/**
 * Least outstanding, the default: of two candidates drawn at random, the one with fewer calls in flight
 * from this client (weighted by its failure state: a node with recent failures, or half-open with its trial
 * out, scores worse). "Power of two choices" on load, as Finagle, Linkerd and Envoy balance: a node that
 * stops answering keeps its calls outstanding, so new calls go elsewhere within milliseconds, long before
 * any timeout; a slow node gets fewer calls in proportion. Without a load view (a selector used outside a
 * client runtime) it is random.
 * @since 0.1.0
 * @category constructors
 */
export const makeLeastOutstanding = (_options?: StrategyOptions): Selector.Service =>
  Selector.of({
    select: (request) => {
      const health = request.health
      if (health === undefined) return selectRandom(request)
      const nodes = candidates(request)
      if (nodes.length === 0) return Effect.fail(noNodes(request))
      if (nodes.length === 1) return Effect.succeed(nodes[0]!)
      return pickOfTwo(nodes, (a, b) => (health.load(b) < health.load(a) ? b : a))
    },
    mark: noFeedback
  })

/**
 * Options of the least-latency strategy.
 * @since 0.1.0
 * @category models
 */
export interface LeastLatencyOptions extends StrategyOptions {
  /** Weight of the newest sample in each node's moving average (0–1]. Default 0.2. */
  readonly smoothing?: number | undefined
}

/**
 * Least latency: of two nodes drawn at random, the one with the lower moving average of recent call
 * latencies ("power of two choices": it follows speed without sending every call to the single fastest
 * node). Nodes with no samples yet count as fastest, so new nodes get traffic and get measured.
 * @since 0.1.0
 * @category constructors
 */
export const makeLeastLatency = (options?: LeastLatencyOptions): Selector.Service => {
  const smoothing = Math.min(1, Math.max(Number.EPSILON, options?.smoothing ?? 0.2))
  /** Moving average of latency (ms) by node id. */
  const averages = new Map<string, number>()
  const latencyOf = (node: Node): number => averages.get(node.id) ?? 0
  return Selector.of({
    select: (request) => {
      const nodes = candidates(request)
      if (nodes.length === 0) return Effect.fail(noNodes(request))
      if (nodes.length === 1) return Effect.succeed(nodes[0]!)
      return pickOfTwo(nodes, (a, b) => (latencyOf(b) < latencyOf(a) ? b : a))
    },
    mark: noFeedback,
    observe: (_service, node, latencyMillis) => {
      const previous = averages.get(node.id)
      averages.set(node.id, previous === undefined ? latencyMillis : previous + smoothing * (latencyMillis - previous))
    }
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
 * @since 0.1.0
 * @category layers
 */
export const layerHashed = (options?: StrategyOptions): Layer.Layer<Selector> =>
  Layer.sync(Selector, () => makeHashed(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerLeastLatency = (options?: LeastLatencyOptions): Layer.Layer<Selector> =>
  Layer.sync(Selector, () => makeLeastLatency(options))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerLeastOutstanding = (options?: StrategyOptions): Layer.Layer<Selector> =>
  Layer.sync(Selector, () => makeLeastOutstanding(options))

/**
 * The default strategy: least outstanding (power of two choices on calls in flight per node). Measured
 * against random in docs/reliability.md: the same throughput on a healthy cluster, and a hung node stops
 * getting new calls within milliseconds instead of stalling every caller until its timeouts fire.
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Selector> = Layer.suspend(() => layerLeastOutstanding())
