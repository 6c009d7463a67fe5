/**
 * Runs server handlers on pooled, long-lived fibers instead of a fresh root fiber per call.
 *
 * Why: `Runtime.runFork` adds every fiber to Effect's global `Set` of root fibers and removes it on exit. At
 * 100k calls/s that `Set` rehashes its table every few dozen calls, and once the table has been promoted (it
 * is, during start-up) V8 allocates each rehashed table in the old generation: ≈ 2 MB/s of old-space garbage
 * and 15–20 MB of extra peak RSS in a 5 s run (bench/README.md). A pooled worker is a root fiber once.
 *
 * What a call sees is what a fresh fiber gives it: the route's FiberRefs (plus the current call) are set at
 * the start of every job, the job runs interruptible, and fibers it forked are interrupted before its exit
 * is reported (as a fiber's children are when it ends). Cancelling a job interrupts its worker, which then
 * ends instead of taking another job: an interruption can never reach a later job. An idle worker waits with
 * a scheduler that resumes it at once when woken outside any fiber (a socket callback), so a call starts
 * on the stack that read it, as `runFork` starts it; inside a fiber the wake-up is deferred as usual.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as FiberRefs from "effect/FiberRefs"
import * as Option from "effect/Option"
import * as Runtime from "effect/Runtime"
import * as Scheduler from "effect/Scheduler"

/**
 * Two methods of Effect 3's fiber runtime that its public `RuntimeFiber` type does not declare: replacing
 * the fiber's refs in one step (`Effect.setFiberRefs` sets them one effect per ref) and reading its children.
 * Checked when a worker starts (see `requireRuntime`).
 */
interface WorkerFiber extends Fiber.RuntimeFiber<unknown, unknown> {
  setFiberRefs(refs: FiberRefs.FiberRefs): void
  getChildren(): Set<Fiber.RuntimeFiber<unknown, unknown>>
}

const requireRuntime = (fiber: Fiber.RuntimeFiber<unknown, unknown>): WorkerFiber => {
  const candidate = fiber as Partial<WorkerFiber>
  if (typeof candidate.setFiberRefs !== "function" || typeof candidate.getChildren !== "function") {
    throw new Error(
      "effect-micro: this version of effect has no FiberRuntime.setFiberRefs/getChildren (needs effect 3)"
    )
  }
  return fiber as WorkerFiber
}

/** Resumes a parked worker on the caller's stack when the caller is not itself a fiber. */
const wakeInPlace: Scheduler.Scheduler = {
  shouldYield: (fiber) => Scheduler.defaultScheduler.shouldYield(fiber),
  scheduleTask: (task, priority) => {
    if (Option.isNone(Fiber.getCurrentFiber())) task()
    else Scheduler.defaultScheduler.scheduleTask(task, priority)
  }
}

/** One call given to the pool: its effect, the value of `callRef` while it runs, and who hears its exit. */
export class PooledJob<A = unknown> {
  /** Set while a worker runs this job. */
  worker: Worker | undefined = undefined
  constructor(
    readonly effect: Effect.Effect<unknown, unknown>,
    readonly callValue: A,
    readonly onExit: (exit: Exit.Exit<unknown, unknown>) => void
  ) {}

  /** Interrupts the job if it is still running (its exit is still reported, as an interruption). */
  interrupt(): void {
    const worker = this.worker
    if (worker === undefined || worker.job !== this) return
    worker.doomed = true
    worker.fiber?.unsafeInterruptAsFork(FiberId.none)
  }
}

/** What `run` returns for a call that was over before it started: nothing to interrupt. */
const settled = new PooledJob<any>(Effect.void, undefined, () => {})

class Worker {
  job: PooledJob<any> | undefined
  fiber: WorkerFiber | undefined = undefined
  /** Interrupted for its job: ends after reporting it instead of taking another. */
  doomed = false
  /** Set while parked: resumes the worker. */
  wake: ((resume: Effect.Effect<void>) => void) | undefined = undefined
  /** The refs every job starts from (the route's runtime, forked as this fiber). */
  base: FiberRefs.FiberRefs | undefined = undefined
  /** `base` with the wake-in-place scheduler, while parked. */
  parked: FiberRefs.FiberRefs | undefined = undefined

  constructor(readonly pool: HandlerPool<any>, first: PooledJob<any>) {
    this.job = first
    first.worker = this
  }

  /** The worker's whole life; runs uninterruptible, each job in an interruptible region. */
  readonly main: Effect.Effect<void> = Effect.withFiberRuntime((fiber) => {
    const self = requireRuntime(fiber)
    this.fiber = self
    this.base = self.getFiberRefs()
    this.parked = FiberRefs.updateAs(this.base, {
      fiberId: self.id(),
      fiberRef: FiberRef.currentScheduler,
      value: wakeInPlace
    })
    // A worker that dies with a job (a defect in this loop) still reports it.
    self.addObserver((exit) => this.abandon(exit))
    return this.run
  })

  /** Runs `this.job` with fresh refs, then reports it and parks (or ends). */
  private readonly run: Effect.Effect<void> = Effect.suspend(() => {
    const self = this.fiber!
    const job = this.job!
    // Cancelled before it started: the refs below would drop the recorded interruption, so report it here.
    if (this.doomed) return this.afterJob(Exit.failCause(Cause.interrupt(FiberId.none)))
    self.setFiberRefs(FiberRefs.updateAs(this.base!, {
      fiberId: self.id(),
      fiberRef: this.pool.callRef,
      value: job.callValue
    }))
    return Effect.flatMap(Effect.exit(Effect.interruptible(job.effect)), this.afterJob)
  })

  private readonly afterJob = (exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> =>
    Effect.suspend(() => {
      const self = this.fiber!
      const children = self.getChildren()
      return children.size === 0
        ? this.report(self, exit)
        : Effect.zipRight(Fiber.interruptAll(Array.from(children)), Effect.suspend(() => this.report(self, exit)))
    })

  private report(self: WorkerFiber, exit: Exit.Exit<unknown, unknown>): Effect.Effect<void> {
    const job = this.job!
    this.job = undefined
    job.worker = undefined
    job.onExit(exit)
    const pool = this.pool
    if (this.doomed || pool.closed || pool.idle.length >= pool.maxIdle) return Effect.void
    self.setFiberRefs(this.parked!)
    return this.parkThenRun
  }

  private readonly park: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.wake = resume
    this.pool.idle.push(this)
  })

  private readonly parkThenRun: Effect.Effect<void> = Effect.flatMap(this.park, () => this.run)

  /** Hands this parked worker a job. */
  start(job: PooledJob<any>): void {
    const wake = this.wake!
    this.wake = undefined
    this.job = job
    job.worker = this
    wake(Effect.void)
  }

  /** Ends a parked worker (the pool is closing). */
  stop(): void {
    const wake = this.wake
    this.wake = undefined
    wake?.(Effect.interrupt)
  }

  private abandon(exit: Exit.Exit<unknown, unknown>): void {
    const job = this.job
    if (job === undefined) return
    this.job = undefined
    job.worker = undefined
    job.onExit(Exit.isFailure(exit) ? exit : Exit.failCause(Cause.interrupt(FiberId.none)))
  }
}

/**
 * The workers of one runtime (one endpoint). `callRef` is set to each job's `callValue` for the job's
 * duration; at most `maxIdle` workers wait for work, extra ones end after their job.
 */
export class HandlerPool<A> {
  readonly idle: Array<Worker> = []
  closed = false
  private readonly fork: (effect: Effect.Effect<void>) => Fiber.RuntimeFiber<void>

  constructor(
    runtime: Runtime.Runtime<never>,
    readonly callRef: FiberRef.FiberRef<A>,
    readonly maxIdle = 512
  ) {
    const fork = Runtime.runFork(runtime)
    this.fork = (effect) => fork(Effect.uninterruptible(effect))
  }

  /** Runs `effect` on a pooled fiber; `onExit` hears how it ended, once. */
  run(
    effect: Effect.Effect<unknown, unknown>,
    callValue: A,
    onExit: (exit: Exit.Exit<unknown, unknown>) => void
  ): PooledJob<A> {
    // A handler that returned its result has nothing left to run: `Effect.succeed(x)`, and `Effect.fail(e)`
    // or `Effect.die(d)` of a non-object (Effect attaches a span to an object at run time), are `Exit` values.
    // Its exit is reported at once, without waking a worker, as Effect's own `runSync` short-cuts an `Exit`.
    // Pinned A/B, JSON echo: server CPU per call 7.4–9.4 → 5.2–5.8 µs at 64 calls in flight, 37–67 → 34–38 µs
    // at 1 (bench/README.md, "An Exit skips the pool").
    if (Exit.isExit(effect)) {
      onExit(effect)
      return settled
    }
    const job = new PooledJob(effect, callValue, onExit)
    const worker = this.idle.pop()
    if (worker !== undefined) worker.start(job)
    else this.fork(new Worker(this, job).main)
    return job
  }

  /** Ends the idle workers; busy ones end after their job. */
  close(): void {
    this.closed = true
    for (const worker of this.idle.splice(0)) worker.stop()
  }
}
