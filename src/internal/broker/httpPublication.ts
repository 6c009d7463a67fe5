/**
 * The HTTP broker's publisher, one publish: the subscribers a topic's registry entry yields (broadcast
 * subscribers and queue groups, grouped once per registry answer), the message queued for each of them, the
 * pick of one member per queue group (and of another on a refusal) and the delivery results the publish
 * waits for. Hot path: one object per publish, plus one per target when there is more than one.
 */
import * as Effect from "effect/Effect"
import type { BrokerError, DeliveryFailure } from "../../Broker.js"
import type { Metadata } from "../../Metadata.js"
import type { Node, Service as RegisteredService } from "../../Registry.js"
import { deliveryFailed } from "./core.js"
import type { Item, Outcome, Prepared } from "./httpBatch.js"
import type { Outbox, OutboxPool } from "./httpOutbox.js"

export interface Group {
  readonly queue: string
  readonly members: ReadonlyArray<Node>
  readonly outboxes: ReadonlyArray<Outbox>
  /** The outboxes' pool: its breakers steer the pick of a member. */
  readonly pool: OutboxPool
}
export interface Targets {
  readonly broadcast: ReadonlyArray<Node>
  readonly broadcastOutboxes: ReadonlyArray<Outbox>
  readonly groups: ReadonlyArray<Group>
  /** Delivery results a publish waits for: one per broadcast subscriber, one per queue group. */
  readonly count: number
  /** One broadcast subscriber and no group: the publication is queued as its own item. */
  readonly single: boolean
}

/** A topic's targets among the services the registry returned, through the pool's outboxes. */
export const makeTargetsOf = (pool: OutboxPool) => {
  const outboxOf = pool.outboxOf
  // The cached registry returns the same array until something changes: group once per array.
  const targetsCache = new WeakMap<ReadonlyArray<RegisteredService>, Targets>()
  return (topic: string, services: ReadonlyArray<RegisteredService>): Targets => {
    const cached = targetsCache.get(services)
    if (cached !== undefined) return cached
    const broadcast: Array<Node> = []
    const groups = new Map<string, Array<Node>>()
    for (const service of services) {
      for (const node of service.nodes) {
        if (node.metadata.broker !== "http" || node.metadata.topic !== topic) continue
        const queue = node.metadata.queue
        if (queue === undefined) broadcast.push(node)
        else {
          const members = groups.get(queue)
          if (members === undefined) groups.set(queue, [node])
          else members.push(node)
        }
      }
    }
    const targets: Targets = {
      broadcast,
      broadcastOutboxes: broadcast.map(outboxOf),
      groups: [...groups].map(([queue, members]) => ({ queue, members, outboxes: members.map(outboxOf), pool })),
      count: broadcast.length + groups.size,
      single: broadcast.length === 1 && groups.size === 0
    }
    targetsCache.set(services, targets)
    return targets
  }
}

/** Some outbox of the targets holds `maxPending` messages or more. */
export const backlogged = (targets: Targets, maxPending: number): boolean => {
  for (const outbox of targets.broadcastOutboxes) if (outbox.pending.length >= maxPending) return true
  for (const group of targets.groups) {
    for (const outbox of group.outboxes) if (outbox.pending.length >= maxPending) return true
  }
  return false
}

/**
 * One publish: the message as the outboxes queue it (shared by every target) and the delivery results
 * still due. Hot path (one object per publish, no closures): with a single broadcast subscriber it is
 * itself the queued item. `resume` is set while a publish waits for its results.
 */
export class Publication implements Prepared, Item {
  readonly size: number
  left: number
  failures: Array<DeliveryFailure> | undefined = undefined
  resume: ((effect: Effect.Effect<void, BrokerError>) => void) | undefined = undefined
  constructor(
    readonly topic: string,
    readonly contentType: string,
    readonly headers: Metadata,
    readonly body: Uint8Array,
    readonly targets: Targets,
    /** False for fire-and-forget: delivery failures are dropped. */
    readonly reportFailures: boolean
  ) {
    this.size = body.byteLength + 64
    this.left = targets.count
  }
  get message(): Prepared {
    return this
  }
  /** As the item of its single broadcast subscriber. */
  resolve(outcome: Outcome | undefined): void {
    this.settle(broadcastResult(this.targets.broadcast[0]!, outcome))
  }
  /** Called once per broadcast subscriber and once per queue group. */
  settle(failure: DeliveryFailure | undefined): void {
    if (failure !== undefined) (this.failures ??= []).push(failure)
    if (--this.left === 0 && this.resume !== undefined) {
      const resume = this.resume
      this.resume = undefined
      resume(
        this.failures === undefined || !this.reportFailures
          ? Effect.void
          : Effect.fail(deliveryFailed(this.topic, this.failures))
      )
    }
  }
}

/** Queues a publication for every target. */
export const send = (publication: Publication): void => {
  const targets = publication.targets
  if (targets.single) return targets.broadcastOutboxes[0]!.push(publication)
  for (let i = 0; i < targets.broadcast.length; i++) {
    targets.broadcastOutboxes[i]!.push(new BroadcastItem(publication, targets.broadcast[i]!))
  }
  for (const group of targets.groups) {
    new GroupItem(publication, group).next()
  }
}

export class BroadcastItem implements Item {
  constructor(readonly message: Publication, readonly node: Node) {}
  resolve(outcome: Outcome | undefined): void {
    this.message.settle(broadcastResult(this.node, outcome))
  }
}

/** One message for one queue group: sent to one member; on a refusal, to another not yet tried. */
export class GroupItem implements Item {
  /** Members tried so far (indices), from the first retry on. */
  tried: Array<number> | undefined = undefined
  /** The member it was last sent to. */
  index = 0
  constructor(readonly message: Publication, readonly group: Group) {}
  /**
   * Sends to a member not tried yet: of two drawn at random, the one whose endpoint has fewer batches in
   * flight (power of two choices on `NodeHealth.load`, as the RPC client's default selector), so a hung
   * endpoint stops getting messages long before its timeouts fire; endpoints that are not ejected first.
   * Panic, as the client's: when fewer than `panicThreshold` of the group's members (or none) are usable,
   * ejection is ignored and the message goes to an ejected member rather than failing.
   */
  next(): void {
    const members = this.group.members
    const n = members.length
    const tried = this.tried
    const pool = this.group.pool
    const health = pool.health
    if (tried === undefined && health.unhealthy === 0) {
      this.index = n === 1 ? 0 : this.pickOfTwo(n, undefined)
      return this.group.outboxes[this.index]!.push(this)
    }
    const now = pool.clock.unsafeCurrentTimeMillis()
    let usable = 0
    const fresh: Array<number> = []
    let freshUsable: Array<number> | undefined
    for (let i = 0; i < n; i++) {
      const ok = health.available(this.group.outboxes[i]!.node, now)
      if (ok) usable++
      if (tried !== undefined && tried.includes(i)) continue
      fresh.push(i)
      if (ok) (freshUsable ??= []).push(i)
    }
    const candidates = freshUsable ?? fresh
    this.index = candidates.length === 1 ? candidates[0]! : this.pickOfTwo(candidates.length, candidates)
    const panic = usable === 0 || usable < health.options.panicThreshold * n
    this.group.outboxes[this.index]!.push(this, panic)
  }
  /** Two distinct candidates at random (indices into `candidates`, or members), the less loaded wins. */
  pickOfTwo(count: number, candidates: ReadonlyArray<number> | undefined): number {
    const first = Math.floor(Math.random() * count)
    let second = Math.floor(Math.random() * (count - 1))
    if (second >= first) second++
    const a = candidates === undefined ? first : candidates[first]!
    const b = candidates === undefined ? second : candidates[second]!
    const members = this.group.members
    const health = this.group.pool.health
    return health.load(members[b]!) < health.load(members[a]!) ? b : a
  }
  resolve(outcome: Outcome | undefined): void {
    if (outcome === undefined) return this.message.settle(undefined)
    if (outcome.retry && (this.tried?.length ?? 0) + 1 < this.group.members.length) {
      ;(this.tried ??= []).push(this.index)
      return this.next()
    }
    this.message.settle({
      subscriber: this.group.members[this.index]!.id,
      queue: this.group.queue,
      reason: outcome.reason,
      detail: outcome.detail
    })
  }
}

/**
 * A broadcast subscriber's result: one whose endpoint answers that the subscription is gone or leaving
 * (404/503) no longer exists, so it is skipped; one that cannot be reached (refused, reset, ejected, timed out)
 * is reported, as for a queue group none of whose members could be reached.
 */
const broadcastResult = (node: Node, outcome: Outcome | undefined): DeliveryFailure | undefined =>
  outcome === undefined || outcome.left === true
    ? undefined
    : { subscriber: node.id, queue: undefined, reason: outcome.reason, detail: outcome.detail }
