/** The client runtime behind the `Client` Tag: pool, timing wheel, node health, retry budget, plugins. */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Client, ClientLayerOptions, ClientMiddleware, ClientOptions, NodeStatus } from "../../Client.js"
import { Codecs } from "../../Codec.js"
import * as Debug from "../../Debug.js"
import { Registry } from "../../Registry.js"
import { Selector } from "../../Selector.js"
import { Transport } from "../../Transport.js"
import { DeadlineWheel } from "./deadlines.js"
import type { NodeState, ResolvedHungNode } from "./nodeHealth.js"
import { checkHungNodes, NodeHealth, resolveEjection, resolveHungNode, Status } from "./nodeHealth.js"
import { Pool } from "./pool.js"
import { ProtocolDialers } from "./protocols.js"
import { RetryBudget } from "./retryBudget.js"
import { DEFAULT_MAX_FRAME_SIZE } from "./wire.js"

/** The runtime behind the public `Client.Service` (the Tag's value is this object). */
export interface ClientService extends Client.Service {
  readonly pool: Pool
  readonly maxFrameSize: number
  readonly deadlines: DeadlineWheel
  readonly registry: Registry["Type"]
  readonly selector: Selector["Type"]
  readonly codecs: Codecs["Type"]
  readonly defaults: ClientOptions
  readonly middleware: ReadonlyArray<ClientMiddleware>
  /** Per-node health (ejection, calls in flight) shared by every call of this runtime. */
  readonly health: NodeHealth
  /** Runs the hung-node check while calls are in flight; undefined when turned off. */
  readonly hungWatch: HungWatch | undefined
  /** Undefined when retries are not budgeted. */
  readonly budget: RetryBudget | undefined
  /** `Debug.layerMetrics` was provided: calls report to Effect metrics. */
  readonly metrics: boolean
}

/**
 * Schedules the hung-node check on the client's timing wheel every `intervalMillis` while any unary call
 * is in flight (an idle client pays nothing). Every `sweepEvery` checks, forgotten nodes are swept.
 */
export class HungWatch {
  armed = false
  private lastCheck = 0
  private checks = 0
  private readonly sweepEvery: number

  constructor(
    private readonly health: NodeHealth,
    private readonly options: ResolvedHungNode,
    private readonly pool: Pool,
    private readonly deadlines: DeadlineWheel
  ) {
    // At least twice the longest ejection between sweeps (see NodeHealth.sweep).
    this.sweepEvery = Math.max(100, Math.ceil((2 * health.options.maxMillis) / Math.max(1, options.intervalMillis)))
  }

  arm(): void {
    this.armed = true
    this.lastCheck = this.deadlines.clock.unsafeCurrentTimeMillis()
    this.deadlines.add(this.options.intervalMillis, this.tick)
  }

  private readonly tick = (): void => {
    const now = this.deadlines.clock.unsafeCurrentTimeMillis()
    checkHungNodes(this.health, this.options, (address) => this.pool.peek(address), now, now - this.lastCheck)
    this.lastCheck = now
    if (++this.checks % this.sweepEvery === 0) this.health.sweep()
    if (this.health.outstanding > 0 && !this.pool.closed) this.deadlines.add(this.options.intervalMillis, this.tick)
    else this.armed = false
  }
}

export const makeService = (
  options?: ClientLayerOptions
): Effect.Effect<ClientService, never, Scope.Scope | Registry | Selector | Transport | Codecs> =>
  Effect.gen(function*() {
    const transport = yield* Transport
    const maxFrameSize = options?.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE
    const deadlines = new DeadlineWheel(yield* Effect.clock)
    yield* Effect.forkScoped(deadlines.run)
    const pool = new Pool(transport, maxFrameSize, deadlines, yield* ProtocolDialers)
    yield* Effect.addFinalizer(() => Effect.sync(() => pool.closeAll()))
    const health = new NodeHealth(deadlines.clock, resolveEjection(options?.ejection))
    return {
      pool,
      deadlines,
      maxFrameSize,
      health,
      hungWatch: options?.hungNodes === false
        ? undefined
        : new HungWatch(health, resolveHungNode(options?.hungNodes), pool, deadlines),
      budget: options?.retryBudget === false ? undefined : new RetryBudget(deadlines.clock, options?.retryBudget),
      registry: yield* Registry,
      selector: yield* Selector,
      codecs: yield* Codecs,
      defaults: options ?? {},
      nodes: () => Array.from(health.all(), statusOf),
      middleware: options?.middleware ?? [],
      metrics: yield* Debug.Metrics
    }
  })

const statusNames = { [Status.Closed]: "closed", [Status.Open]: "open", [Status.HalfOpen]: "half-open" } as const

const statusOf = (state: NodeState): NodeStatus => ({
  address: state.address,
  status: statusNames[state.status],
  outstanding: state.outstanding,
  consecutiveFailures: state.consecutiveFailures,
  ejectedUntil: state.status === Status.Open ? state.ejectedUntil : undefined,
  reason: state.reason
})

/** The runtime behind a `Client.Service` (every `Client.Service` value is made by `makeService`). */
export const runtimeOf = (service: Client.Service): ClientService => service as ClientService
