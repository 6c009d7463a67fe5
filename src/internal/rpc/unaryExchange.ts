/** One unary call on a connection: its callbacks, its deadline, the waiting fiber, and the node's health. */
import type * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type { TransportError } from "../../Errors.js"
import { TransportError as TransportErrors } from "../../Errors.js"
import type { Node } from "../../Registry.js"
import type { Selector } from "../../Selector.js"
import type { CallMetrics } from "../debug/metrics.js"
import { frameworkCode } from "./callTarget.js"
import type { CallConnection, CallHandlers } from "./clientConnection.js"
import type { HungWatch } from "./clientService.js"
import type { DeadlineEntry, DeadlineWheel } from "./deadlines.js"
import type { CompiledEndpoint } from "./endpoint.js"
import { decodeError } from "./endpoint.js"
import type { NodeHealth, NodeState } from "./nodeHealth.js"
import { isNodeFailure } from "./retryRules.js"
import { Outcome } from "./serverStats.js"

/**
 * The unary call a fiber is waiting on, so that the server hears CANCEL when that fiber is interrupted.
 *
 * Not `Effect.async`'s canceller: returning one wraps every call in `onInterrupt` (an uninterruptible
 * mask, a restore and a cause match), measured at ≈3 µs of CPU per call, a tenth of the client's whole
 * path. A fiber waits on at most one call at a time, and a fiber interrupted while waiting either exits
 * (its observer abandons the call) or, from a finalizer, goes on to make another call (which abandons the
 * one left behind first). So CANCEL is sent when the interrupted fiber exits or calls again.
 */
export class WaitingCall {
  call: UnaryExchange | undefined = undefined
  readonly onFiberExit = (): void => {
    const call = this.call
    this.call = undefined
    call?.abandon()
  }
}

const waitingByFiber = new WeakMap<Fiber.RuntimeFiber<unknown, unknown>, WaitingCall>()

export const waitingOf = (fiber: Fiber.RuntimeFiber<any, any>): WaitingCall => {
  let waiting = waitingByFiber.get(fiber)
  if (waiting === undefined) {
    waiting = new WaitingCall()
    fiber.addObserver(waiting.onFiberExit)
    waitingByFiber.set(fiber, waiting)
  }
  return waiting
}

/** Reports a successful call's latency (from the Clock, sub-millisecond) to a latency-aware selector. */
export class LatencyObserver {
  private readonly started: bigint
  constructor(
    private readonly observe: NonNullable<Selector["Type"]["observe"]>,
    private readonly service: string,
    private readonly node: Node,
    private readonly clock: Clock.Clock
  ) {
    this.started = clock.unsafeCurrentTimeNanos()
  }
  done(): void {
    this.observe(this.service, this.node, Number(this.clock.unsafeCurrentTimeNanos() - this.started) / 1e6)
  }
}

/** What every unary exchange of one endpoint's caller shares (one object per caller, not per call). */
export interface ExchangeContext {
  readonly service: string
  readonly deadlines: DeadlineWheel
  readonly health: NodeHealth
  readonly selector: Selector["Type"]
  /** Undefined when the hung-node check is off. */
  readonly hungWatch: HungWatch | undefined
}

/**
 * One unary call in flight: the connection's callbacks for it, settling the waiting Effect once, and
 * telling the node's health how it went (it is also the call's identity as a half-open trial).
 */
export class UnaryExchange implements CallHandlers {
  id = 0
  deadline: DeadlineEntry | undefined = undefined
  settled = false
  observe: LatencyObserver | undefined = undefined
  /** With `Debug.layerMetrics`: the endpoint's client metrics and when this attempt started. */
  metrics: CallMetrics | undefined = undefined
  startedAt = 0

  constructor(
    private readonly compiled: CompiledEndpoint,
    private readonly connection: CallConnection,
    private readonly context: ExchangeContext,
    private readonly node: Node,
    /** The waiting fiber's slot; undefined for a Promise caller (nothing to interrupt). */
    private readonly waiting: WaitingCall | undefined,
    private readonly resume: (result: Effect.Effect<unknown, unknown>) => void,
    private readonly state: NodeState,
    /** The logical call, for the node's health (its half-open trial is identified by it). */
    private readonly owner: object
  ) {
    if (waiting !== undefined) {
      // Still set: the fiber was interrupted while waiting on that call and is now calling again.
      waiting.call?.abandon()
      waiting.call = this
    }
    context.health.begin(state, owner, connection.received)
    const watch = context.hungWatch
    if (watch !== undefined && !watch.armed) watch.arm()
  }

  /** Marks the call finished (once): no longer waited on, no deadline, not outstanding. False if it already was. */
  private finish(): boolean {
    if (this.settled) return false
    this.settled = true
    if (this.waiting !== undefined && this.waiting.call === this) this.waiting.call = undefined
    this.context.deadlines.remove(this.deadline)
    this.context.health.end(this.state)
    return true
  }

  private succeed(value: unknown): void {
    if (!this.finish()) return
    this.metrics?.end(Outcome.Succeeded, performance.now() - this.startedAt)
    this.context.health.succeed(this.state, this.owner)
    this.resume(Effect.succeed(value))
  }

  /**
   * Fails the call; `nodeFailed` says whether the outcome counts against the node's health (else: it
   * answered). Failures that say something about the node are also reported to the selector's `mark`.
   */
  fail(error: unknown, nodeFailed: boolean): void {
    if (!this.finish()) return
    this.metrics?.end(Outcome.Failed, performance.now() - this.startedAt, frameworkCode(error))
    const health = this.context.health
    if (nodeFailed) health.fail(this.state, this.owner, "failure")
    else health.succeed(this.state, this.owner)
    // A Promise caller (no waiting fiber) reads an Exit without running it; a fiber's failure captures its span.
    const failed = this.waiting === undefined ? Exit.fail(error) : Effect.fail(error)
    this.resume(
      isNodeFailure(error)
        ? Effect.zipRight(this.context.selector.mark(this.context.service, this.node, "failure"), failed)
        : failed
    )
  }

  onReply(reply: Buffer): void {
    const decoded = this.compiled.response.decode(reply)
    if (Either.isRight(decoded)) {
      this.observe?.done()
      this.succeed(decoded.right)
    } else this.fail(decoded.left, false)
  }
  onError(kind: number, payload: Buffer): void {
    const error = decodeError(this.compiled, kind, payload)
    this.fail(error, isNodeFailure(error))
  }
  onClosed(error: TransportError): void {
    this.fail(error, true)
  }
  onData(): void {
    this.connection.cancel(this.id)
    this.fail(protocolError(this.connection.address, "DATA frame on a unary call"), true)
  }
  onEnd(): void {
    this.fail(protocolError(this.connection.address, "END frame on a unary call"), true)
  }
  onCredit(): void {}
  /** The waiting fiber was interrupted: forget the deadline and cancel on the server. */
  abandon(): void {
    if (!this.finish()) return
    this.metrics?.end(Outcome.Cancelled, performance.now() - this.startedAt)
    this.context.health.release(this.state, this.owner)
    this.connection.cancel(this.id)
  }
}

export const protocolError = (address: string, detail: string) => TransportErrors.of("protocol", address, detail, false)
