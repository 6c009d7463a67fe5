/**
 * Health of the nodes one client runtime talks to, keyed by node address: outlier ejection (a circuit
 * breaker per node), calls outstanding per node (for load-aware selection) and hung-node detection.
 *
 * Reusable by any caller of nodes (RPC client, HTTP broker publisher): it knows addresses, not protocols.
 * The protocol tells it when a call starts and ends and how (`begin`/`end`, `succeed`/`fail`/`release`),
 * and selection asks it which nodes are usable (`usable`) and how loaded they are (`load`).
 *
 * ## The breaker (per address)
 * ```
 *            refused/failed dial, hung, or `consecutiveFailures` failures in a row
 *   CLOSED ──────────────────────────────────────────────────────────────────────▶ OPEN (ejected for
 *     ▲                                                                              │  base × 2^n, capped)
 *     │ the trial succeeds                                                           │ time is up
 *     └──────────────────── HALF-OPEN (one trial call admitted) ◀────────────────────┘
 *                                │ the trial fails ─▶ OPEN again, for twice as long
 * ```
 * - Outcomes of calls that are not the trial are ignored while a node is open or half-open (stragglers),
 *   except that any success of a node ejected for *hanging* proves it answers again: it goes half-open at
 *   once (a SIGSTOPped process resumed by SIGCONT rejoins through its first trial, not after its ejection).
 * - The ejection count `n` starts again from 0 once a node has stayed closed for `maxTime`.
 * - Panic threshold: when fewer than `panicThreshold` of a call's candidates are usable, ejection is ignored
 *   for that call (ejected nodes are only scored worse), so ejection never empties a service.
 *
 * ## Cost on the call path
 * Synchronous, O(1), allocation-free: a call does one `Map` lookup (`state`), two increments and one
 * compare. No clock read per call: time is read when something fails, when a filter has to decide
 * (only while some node is not closed), and once per hung-node check.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import type { EjectionOptions, HungNodeOptions } from "../../Client.js"
import type { Node } from "../../Registry.js"
import type { Health } from "../../Selector.js"

/** Breaker status of a node. */
export const Status = { Closed: 0, Open: 1, HalfOpen: 2 } as const
export type Status = (typeof Status)[keyof typeof Status]

/**
 * How a call failed, as far as the node's health is concerned: `refused` (the node could not be reached:
 * refused or failed dial, ejects at once), `failure` (timeout, reset, 503: counted), `hung` (calls
 * outstanding, nothing received, PING unanswered: ejects at once).
 */
export type FailureKind = "refused" | "failure" | "hung"

/** Resolved defaults of `EjectionOptions` (documented there, in Client.ts). */
export const ejectionDefaults = {
  consecutiveFailures: 5,
  baseTime: Duration.seconds(1),
  maxTime: Duration.seconds(30),
  panicThreshold: 0.5
} as const

/** Resolved defaults of `HungNodeOptions` (documented there, in Client.ts). */
export const hungNodeDefaults = {
  interval: Duration.millis(50),
  quietMin: Duration.millis(200),
  quietMultiple: 8,
  pingTimeout: Duration.millis(250)
} as const

/** Score of an ejected node that panic let back in: it loses every draw against a usable node. */
const EJECTED_LOAD = 1e9

/** One node's state. Fields are public for the owner's hot path and for tests; mutate only through NodeHealth. */
export class NodeState {
  status: Status = Status.Closed
  /** Calls started and not yet ended. */
  outstanding = 0
  /**
   * Of those, the ones started since the node last sent anything (any frame): a node that stopped
   * answering runs this up with every call it gets, so it loses draws after two or three calls instead
   * of after as many as a healthy node has in flight.
   */
  unanswered = 0
  /** The connection's frame count when `unanswered` was last reset. */
  receivedSeen = -1
  /** Successful calls ever (for the latency estimate of the hung-node check). */
  completed = 0
  consecutiveFailures = 0
  /** Ejections in a row (the next one lasts base × 2^ejections). */
  ejections = 0
  /** While open: the epoch millis at which the node turns half-open. */
  ejectedUntil = 0
  /** Why it was last ejected. */
  reason: FailureKind | undefined = undefined
  /** When the node last closed (after a trial), for the ejection-count decay. */
  closedSince = Number.NEGATIVE_INFINITY
  /** While half-open: the call that is the trial (any object identifying it). */
  trialOwner: object | undefined = undefined
  /** When the trial was claimed: a claim older than `maxTime` is void (a call that never reported back). */
  trialSince = 0
  /** Looked up since the last sweep (see `NodeHealth.sweep`). */
  touched = true

  // Hung-node check bookkeeping (touched once per check, never per call).
  /** Frames received on the node's connection at the last check. */
  seenReceived = -1
  /** Since when the node has had calls outstanding and sent nothing. */
  quietSince = 0
  /** When the pending PING was sent, or -1. */
  pingSentAt = -1
  /** `completed` at the last check. */
  completedAtCheck = 0
  /** Smoothed latency estimate (ms), from Little's law at each check; 0 until known. */
  latencyMillis = 0

  constructor(readonly address: string) {}
}

/** What the hung-node check needs of a node's connection (the RPC client's ClientConnection has both). */
export interface Probeable {
  /** Frames received so far (any frame: a reply, a PONG ...). */
  readonly received: number
  /** Sends a PING (the answer shows up in `received`). */
  ping(): void
}

export interface ResolvedEjection {
  readonly enabled: boolean
  readonly consecutiveFailures: number
  readonly baseMillis: number
  readonly maxMillis: number
  readonly panicThreshold: number
}

export const resolveEjection = (options: EjectionOptions | false | undefined): ResolvedEjection => ({
  enabled: options !== false,
  consecutiveFailures: Math.max(1, (options || undefined)?.consecutiveFailures ?? ejectionDefaults.consecutiveFailures),
  baseMillis: Duration.toMillis(Duration.decode((options || undefined)?.baseTime ?? ejectionDefaults.baseTime)),
  maxMillis: Duration.toMillis(Duration.decode((options || undefined)?.maxTime ?? ejectionDefaults.maxTime)),
  panicThreshold: Math.min(1, Math.max(0, (options || undefined)?.panicThreshold ?? ejectionDefaults.panicThreshold))
})

export class NodeHealth implements Health {
  private readonly states = new Map<string, NodeState>()
  /** Nodes not closed (open or half-open). 0 on a healthy cluster: selection then takes its fast path. */
  unhealthy = 0
  /** Calls outstanding over all nodes. */
  outstanding = 0

  constructor(
    private readonly clock: Clock.Clock,
    readonly options: ResolvedEjection = resolveEjection(undefined),
    /** Called on every ejection (logging, tests). */
    private readonly onEject?: (state: NodeState) => void
  ) {}

  /** The node's state, created closed on first use. */
  state(address: string): NodeState {
    let state = this.states.get(address)
    if (state === undefined) {
      state = new NodeState(address)
      this.states.set(address, state)
    } else state.touched = true
    return state
  }

  peek(address: string): NodeState | undefined {
    return this.states.get(address)
  }

  /** Every node seen so far (the hung-node check walks them). */
  all(): IterableIterator<NodeState> {
    return this.states.values()
  }

  /**
   * Forgets nodes no call went to since the previous sweep and with nothing outstanding, so that churn
   * (every restart on an ephemeral port is a new address) does not grow the map without bound. Run it at
   * an interval longer than `maxTime`: a node still listed gets its trial call within `maxTime`.
   */
  sweep(): void {
    for (const [address, state] of this.states) {
      if (state.touched || state.outstanding > 0) {
        state.touched = false
        continue
      }
      if (state.status !== Status.Closed) this.unhealthy--
      this.states.delete(address)
    }
  }

  // ----- selection (Selector.Health) -----

  /** Whether a new call may go to the node now: closed, or half-open with its trial slot free. */
  available(state: NodeState, now: number): boolean {
    switch (state.status) {
      case Status.Closed:
        return true
      case Status.Open:
        // A node ejected for silence gets no timed trial while calls are still stuck on it: a trial would
        // only join them. The hung-node check keeps pinging it; an answer gives it its trial at once.
        if (now < state.ejectedUntil || (state.reason === "hung" && state.outstanding > 0)) return false
        state.status = Status.HalfOpen
        state.trialOwner = undefined
        return true
      default:
        return state.trialOwner === undefined || now - state.trialSince >= this.options.maxMillis
    }
  }

  usable(nodes: ReadonlyArray<Node>): ReadonlyArray<Node> {
    if (this.unhealthy === 0 || nodes.length === 0) return nodes
    const now = this.clock.unsafeCurrentTimeMillis()
    let usable: Array<Node> | undefined
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i]!
      const state = this.states.get(node.address)
      const ok = state === undefined || this.available(state, now)
      if (usable === undefined) {
        if (ok) continue
        usable = nodes.slice(0, i)
      } else if (ok) usable.push(node)
    }
    if (usable === undefined) return nodes
    // Panic: too few usable nodes left; ejection is ignored rather than overloading the few (or none).
    return usable.length === 0 || usable.length < this.options.panicThreshold * nodes.length ? nodes : usable
  }

  load(node: Node): number {
    const state = this.states.get(node.address)
    if (state === undefined) return 0
    switch (state.status) {
      case Status.Closed: {
        // Calls in flight, plus the square of those not answered since the node last spoke (≈ 0–2 on a
        // healthy node, growing with every call sent to a silent one).
        const load = state.outstanding + state.unanswered * state.unanswered
        return state.consecutiveFailures === 0 ? load : (load + 1) * (1 + state.consecutiveFailures)
      }
      case Status.HalfOpen:
        // Its trial is due: as attractive as an idle node (unless the trial is already out).
        return state.trialOwner === undefined ? state.outstanding : EJECTED_LOAD + state.outstanding
      default:
        return EJECTED_LOAD + state.outstanding
    }
  }

  // ----- calls -----

  /**
   * A call starts on the node. If the node is half-open and its trial slot is free, this call (`owner`)
   * becomes the trial and `true` is returned. Pair with `end`.
   */
  begin(state: NodeState, owner: object, received = -1): boolean {
    state.outstanding++
    this.outstanding++
    if (received !== state.receivedSeen) {
      state.receivedSeen = received
      state.unanswered = 1
    } else state.unanswered++
    if (state.status === Status.Closed) return false
    return this.claimTrial(state, owner)
  }

  /** The call started with `begin` ended (whatever the outcome; report it with succeed/fail/release). */
  end(state: NodeState): void {
    state.outstanding--
    this.outstanding--
    if (state.unanswered > state.outstanding) state.unanswered = state.outstanding
  }

  /**
   * Claims the half-open trial for `owner` if the slot is free (true also when `owner` already holds it).
   * Claim it as soon as the node is selected, before anything that may yield (a dial), so that calls
   * selected meanwhile do not pile onto the node. Release it (`release`) if the call never starts.
   */
  claimTrial(state: NodeState, owner: object): boolean {
    if (state.status === Status.Closed) return false
    const now = this.clock.unsafeCurrentTimeMillis()
    if (state.status === Status.Open) this.available(state, now)
    if (state.status !== Status.HalfOpen) return false
    if (state.trialOwner === owner) return true
    // Someone holds it, unless that claim is void (interrupted between selection and sending, say).
    if (state.trialOwner !== undefined && now - state.trialSince < this.options.maxMillis) return false
    state.trialOwner = owner
    state.trialSince = now
    return true
  }

  /** The node answered (`owner`'s call succeeded, or failed with an error of its endpoint). */
  succeed(state: NodeState, owner: object): void {
    state.completed++
    switch (state.status) {
      case Status.Closed:
        state.consecutiveFailures = 0
        return
      case Status.HalfOpen:
        if (state.trialOwner === owner) this.close(state)
        return
      default:
        this.revive(state)
    }
  }

  /** A node ejected for silence answered after all (a reply, a PONG): it gets its trial now. */
  revive(state: NodeState): void {
    if (state.status !== Status.Open || state.reason !== "hung") return
    state.ejectedUntil = 0
    state.status = Status.HalfOpen
    state.trialOwner = undefined
  }

  /** `owner`'s call failed in a way that says something about the node. */
  fail(state: NodeState, owner: object | undefined, kind: FailureKind): void {
    if (!this.options.enabled) return
    switch (state.status) {
      case Status.Closed:
        if (kind !== "failure" || ++state.consecutiveFailures >= this.options.consecutiveFailures) {
          this.eject(state, kind)
        }
        return
      case Status.HalfOpen:
        // The trial failed, or the node is plainly unreachable or frozen whoever asked.
        if (state.trialOwner === owner || kind !== "failure") this.eject(state, kind)
        return
      default:
        return
    }
  }

  /** `owner`'s call ended without saying anything about the node (interrupted): frees the trial slot. */
  release(state: NodeState, owner: object): void {
    if (state.trialOwner === owner) state.trialOwner = undefined
  }

  private close(state: NodeState): void {
    state.status = Status.Closed
    state.trialOwner = undefined
    state.consecutiveFailures = 0
    state.reason = undefined
    state.closedSince = this.clock.unsafeCurrentTimeMillis()
    this.unhealthy--
  }

  private eject(state: NodeState, kind: FailureKind): void {
    const now = this.clock.unsafeCurrentTimeMillis()
    if (state.status === Status.Closed) {
      this.unhealthy++
      // Healthy for a long while: this is a new incident, not a relapse.
      if (now - state.closedSince >= this.options.maxMillis) state.ejections = 0
    }
    const millis = Math.min(this.options.maxMillis, this.options.baseMillis * 2 ** Math.min(state.ejections, 30))
    state.ejections++
    state.status = Status.Open
    state.ejectedUntil = now + millis
    state.reason = kind
    state.trialOwner = undefined
    state.consecutiveFailures = 0
    state.pingSentAt = -1
    this.onEject?.(state)
  }
}

export interface ResolvedHungNode {
  readonly intervalMillis: number
  readonly quietMinMillis: number
  readonly quietMultiple: number
  readonly pingTimeoutMillis: number
}

export const resolveHungNode = (options: HungNodeOptions | undefined): ResolvedHungNode => ({
  intervalMillis: Duration.toMillis(Duration.decode(options?.interval ?? hungNodeDefaults.interval)),
  quietMinMillis: Duration.toMillis(Duration.decode(options?.quietMin ?? hungNodeDefaults.quietMin)),
  quietMultiple: options?.quietMultiple ?? hungNodeDefaults.quietMultiple,
  pingTimeoutMillis: Duration.toMillis(Duration.decode(options?.pingTimeout ?? hungNodeDefaults.pingTimeout))
})

/**
 * One hung-node check over every node with calls outstanding (run every `intervalMillis` while any call
 * is outstanding). A node is quiet when it has calls outstanding and nothing at all arrived from it since
 * the last check. Quiet for longer than max(quietMin, quietMultiple × its latency) → PING; PING unanswered
 * for `pingTimeout` → hung: ejected at once. The calls already on it are left alone (they keep their own
 * deadlines). A node ejected as hung keeps being pinged; when it answers, it goes half-open.
 *
 * The latency estimate comes from Little's law (outstanding ÷ completions per ms between checks), so the
 * call path reads no clock for it.
 */
export const checkHungNodes = (
  health: NodeHealth,
  options: ResolvedHungNode,
  connectionOf: (address: string) => Probeable | undefined,
  now: number,
  elapsedMillis: number
): void => {
  for (const state of health.all()) {
    const completed = state.completed - state.completedAtCheck
    state.completedAtCheck = state.completed
    if (completed > 0 && state.outstanding > 0 && elapsedMillis > 0) {
      const sample = state.outstanding * elapsedMillis / completed
      state.latencyMillis = state.latencyMillis === 0
        ? sample
        : state.latencyMillis + 0.2 * (sample - state.latencyMillis)
    }
    const connection = connectionOf(state.address)
    if (connection === undefined || state.outstanding === 0) {
      state.seenReceived = -1
      state.pingSentAt = -1
      continue
    }
    if (connection.received !== state.receivedSeen) state.unanswered = 0
    if (connection.received !== state.seenReceived) {
      // Something arrived (or the check just started watching): not quiet.
      const wasQuiet = state.seenReceived !== -1
      state.seenReceived = connection.received
      state.quietSince = now
      state.pingSentAt = -1
      // Ejected for silence, and it answers again (e.g. SIGCONT): its trial is due now.
      if (wasQuiet) health.revive(state)
      continue
    }
    if (state.pingSentAt === -1) {
      const quietFor = Math.max(options.quietMinMillis, options.quietMultiple * state.latencyMillis)
      if (now - state.quietSince >= quietFor) {
        state.pingSentAt = now
        connection.ping()
      }
    } else if (now - state.pingSentAt >= options.pingTimeoutMillis) {
      health.fail(state, undefined, "hung")
      // Keep pinging an ejected node: its answer ends the ejection early (see above).
      state.pingSentAt = now
      connection.ping()
    }
  }
}
