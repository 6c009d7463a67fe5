/**
 * The HTTP broker's publisher, per subscriber endpoint: the outbox of each subscription endpoint (batching,
 * pipelining, order) and the breaker of each subscriber process (`Endpoint`), both held by the broker's
 * `OutboxPool`. Synchronous and allocation-light: this is the publish path.
 */
import type * as Clock from "effect/Clock"
import type { FailureReason } from "../../Broker.js"
import type { Node } from "../../Registry.js"
import type { NodeState, ResolvedEjection } from "../rpc/nodeHealth.js"
import { NodeHealth, Status } from "../rpc/nodeHealth.js"
import type { BatchPoster, Item, Outcome } from "./httpBatch.js"
import { PATH_PREFIX } from "./httpWire.js"

/** How outboxes batch and pipeline (resolved `HttpBrokerOptions`). */
export interface OutboxLimits {
  readonly maxInFlight: number
  readonly maxBatchMessages: number
  readonly maxBatchBytes: number
}

/**
 * The publisher's breaker: the RPC client's per-node health (internal/rpc/nodeHealth.ts), with its semantics
 * and defaults (`ejection`), keyed by endpoint address (`host:port`: one subscriber process, whose
 * subscriptions share its connection). A connection-level failure (refused, reset, no connection within
 * `connectTimeout`) ejects the endpoint at once; publish timeouts, 503, 504 and other 5xx count towards
 * `consecutiveFailures`. While it is ejected, what is queued for it and what is published to it fails at
 * once with `Unreachable` (`retry`, so a queue group tries another member; a broadcast subscriber is
 * reported). Half-open, the next batch is the single trial: its success closes the breaker, its failure
 * ejects for twice as long. Batches in flight are counted per endpoint for queue-group selection.
 * Entries live as long as the broker, as the outboxes do (no sweep).
 */
export class OutboxPool {
  readonly endpoints = new Map<string, Endpoint>()
  readonly health: NodeHealth
  readonly maxInFlight: number
  readonly maxBatchMessages: number
  readonly maxBatchBytes: number
  private readonly byUrl = new Map<string, Outbox>()
  private readonly byNode = new WeakMap<Node, Outbox>()
  constructor(
    readonly clock: Clock.Clock,
    ejection: ResolvedEjection,
    readonly poster: BatchPoster,
    limits: OutboxLimits
  ) {
    this.health = new NodeHealth(clock, ejection, (state) => this.endpoints.get(state.address)?.ejected(state))
    this.maxInFlight = limits.maxInFlight
    this.maxBatchMessages = limits.maxBatchMessages
    this.maxBatchBytes = limits.maxBatchBytes
  }
  endpointOf(address: string): Endpoint {
    let endpoint = this.endpoints.get(address)
    if (endpoint === undefined) {
      endpoint = new Endpoint(this, this.health.state(address))
      this.endpoints.set(address, endpoint)
    }
    return endpoint
  }
  /** The outbox of a subscription node (one per endpoint URL). A property: it is passed to `map`. */
  readonly outboxOf = (node: Node): Outbox => {
    const known = this.byNode.get(node)
    if (known !== undefined) return known
    const url = `http://${node.address}${node.metadata.path ?? PATH_PREFIX + encodeURIComponent(node.id)}`
    let outbox = this.byUrl.get(url)
    if (outbox === undefined) {
      outbox = new Outbox(this, url, this.endpointOf(node.address))
      this.byUrl.set(url, outbox)
    }
    this.byNode.set(node, outbox)
    return outbox
  }
}

/**
 * The smallest batch a backlog is split into. 64 publishers awaiting delivery results publish a round of 64
 * at once: sent as one batch, publisher and subscriber took turns (each idle while the other worked through
 * the round); as two batches of 32 the subscriber handles the first while the publisher sends the second and
 * then handles its results. Measured (`effect-micro-http-64`, 3 alternating runs each, pinned): 125–128k
 * events/s in 2 of 3 runs against 64–84k with a minimum of 64, and 53k against 38k in the slow mode these
 * machines fall into at times.
 */
const MIN_SPREAD_BATCH = 32

/** One subscriber endpoint (process): its breaker state and the outboxes of its subscriptions. */
export class Endpoint {
  readonly outboxes: Array<Outbox> = []
  /** HTTP answers received (NodeHealth counts batches sent since the endpoint last answered). */
  answers = 0
  /** Detail of the failure being reported, for the ejection's detail. */
  lastFailure = ""
  /** The outcome of what is sent here while ejected. */
  ejection: Outcome
  constructor(readonly pool: OutboxPool, readonly state: NodeState) {
    this.ejection = { reason: "Unreachable", detail: `${state.address} (endpoint ejected)`, retry: true }
  }
  ejected(state: NodeState): void {
    const millis = state.ejectedUntil - this.pool.clock.unsafeCurrentTimeMillis()
    this.ejection = {
      reason: "Unreachable",
      detail: `${this.lastFailure} (endpoint ejected for ${millis} ms)`,
      retry: true
    }
    for (const outbox of this.outboxes) outbox.drain(this.ejection)
  }
}

/** The outbox of one subscription endpoint (see `push` and `flush`). */
export class Outbox {
  pending: Array<Item> = []
  inFlight = 0
  scheduled = false
  /** Half-open: the trial this outbox claimed for its next batch (see `admit`). */
  trial: object | undefined = undefined
  readonly node: NodeState
  readonly origin: string
  readonly path: string
  constructor(readonly pool: OutboxPool, readonly url: string, readonly endpoint: Endpoint) {
    const parsed = new URL(url)
    this.origin = parsed.origin
    this.path = parsed.pathname + parsed.search
    this.node = endpoint.state
    endpoint.outboxes.push(this)
  }
  /** `force`: a queue group in panic (see `GroupItem.next`) sends to an ejected endpoint anyway. */
  push(item: Item, force = false): void {
    if (this.node.status !== Status.Closed && this.trial === undefined && !this.admit(force)) {
      return item.resolve(this.endpoint.ejection)
    }
    this.pending.push(item)
    // Gather what this turn of the event loop publishes into one batch (flushed in the check phase) instead
    // of spending a slot on a single message. Also when idle: publishers resumed by one reply (a service
    // publishing once per request it handles) publish from separate callbacks, and sending the first at
    // once split every round into a batch of 1 and one of the rest (64 publishers: average batch 32 → 64,
    // and rounds fell out of step into ever smaller batches: 23–65k → 47–69k events/s). A lone publisher
    // pays one turn of the loop (a few µs against a ≈200 µs round trip).
    if (this.inFlight < this.pool.maxInFlight && !this.scheduled) {
      this.scheduled = true
      setImmediate(this.flushScheduled)
    }
  }
  /**
   * The endpoint is not closed: claims its half-open trial for this outbox's next batch (what is pushed
   * until that batch leaves joins it). Claimed at push rather than at flush so that, of several
   * subscriptions on one endpoint, only one sends while the trial is out.
   */
  admit(force: boolean): boolean {
    const trial = {}
    if (!this.pool.health.claimTrial(this.node, trial)) return force
    this.trial = trial
    return true
  }
  /** The endpoint was ejected: what is queued fails with `ejection`. */
  drain(ejection: Outcome): void {
    this.trial = undefined
    if (this.pending.length === 0) return
    const pending = this.pending
    this.pending = []
    for (const item of pending) item.resolve(ejection)
  }
  readonly flushScheduled = (): void => {
    this.scheduled = false
    if (this.pending.length > 0 && this.inFlight < this.pool.maxInFlight) this.flush()
  }
  flush(): void {
    const pool = this.pool
    const health = pool.health
    // Spread a backlog over the free slots so the subscriber handles one batch while the next is encoded.
    const spread = Math.max(
      MIN_SPREAD_BATCH,
      Math.ceil(this.pending.length / Math.max(1, pool.maxInFlight - this.inFlight))
    )
    const limit = Math.min(pool.maxBatchMessages, spread)
    let count = 0
    let bytes = 0
    while (count < this.pending.length && count < limit) {
      bytes += this.pending[count]!.message.size
      if (count > 0 && bytes > pool.maxBatchBytes) break
      count++
    }
    let batch: Array<Item>
    if (count === this.pending.length) {
      batch = this.pending
      this.pending = []
    } else batch = this.pending.splice(0, count)
    // The batch's identity for the breaker (the trial's, if this outbox holds it).
    const owner: object = this.trial ?? batch
    this.trial = undefined
    const node = this.node
    this.inFlight++
    health.begin(node, owner, this.endpoint.answers)
    pool.poster.post(this.origin, this.path, this.url, batch, (outcomes) => {
      this.inFlight--
      health.end(node)
      const fault = outcomes === undefined || Array.isArray(outcomes) ? undefined : (outcomes as Outcome).fault
      if (fault === undefined) {
        this.endpoint.answers++
        health.succeed(node, owner)
      } else if (fault === "unsent") health.release(node, owner)
      else {
        // May eject the endpoint, which fails what is queued for it (`Endpoint.ejected`).
        this.endpoint.lastFailure = (outcomes as Outcome).detail
        health.fail(node, owner, fault)
      }
      if (Array.isArray(outcomes)) {
        for (let i = 0; i < batch.length; i++) {
          const result = outcomes[i] as { reason: FailureReason; detail: string } | null
          batch[i]!.resolve(
            result === null ? undefined : { reason: result.reason, detail: result.detail, retry: false }
          )
        }
      } else for (const item of batch) item.resolve(outcomes as Outcome | undefined)
      if (this.pending.length > 0) this.flush()
    })
  }
}
