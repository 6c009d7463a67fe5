/**
 * The pooled fibers that run server handlers: a call must see what a fresh fiber would give it (its own
 * refs, interruption of what it forked, its own cancellation only), while workers are reused.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRef from "effect/FiberRef"
import * as Runtime from "effect/Runtime"
import { HandlerPool } from "../../src/internal/rpc/handlerPool.js"

const callRef = FiberRef.unsafeMake<string | undefined>(undefined)
const counter = FiberRef.unsafeMake(0)

/** Runs `effect` as a call from plain callback code (as a socket callback does); resolves with its exit. */
const call = <A, E>(pool: HandlerPool<string | undefined>, effect: Effect.Effect<A, E>, name = "call") => {
  let job: ReturnType<typeof pool.run> | undefined
  const exit = new Promise<Exit.Exit<unknown, unknown>>((resolve) => {
    job = pool.run(effect, name, resolve)
  })
  return { exit, job: job! }
}

const fiberIdOf = Effect.map(Effect.fiberId, (id) => JSON.stringify(id))

describe("HandlerPool", () => {
  it("runs a call woken from plain code on the caller's stack, and reuses the worker for the next call", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    let ranSync = false
    const first = call(pool, Effect.zipRight(Effect.sync(() => (ranSync = true)), fiberIdOf))
    expect(ranSync).toBe(true)
    const second = call(pool, Effect.sync(() => "second"))
    expect(Exit.isSuccess(await second.exit)).toBe(true)
    const a = await first.exit
    const b = await call(pool, fiberIdOf).exit
    expect(Exit.isSuccess(a) && Exit.isSuccess(b) && a.value === b.value).toBe(true)
    expect(pool.idle.length).toBe(1)
    pool.close()
  })

  it("a handler's result that is already an Exit is reported at once, without a worker", () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    const heard: Array<Exit.Exit<unknown, unknown>> = []
    const results = [Effect.succeed(1), Effect.fail("no"), Effect.die("boom")]
    for (const result of results) {
      const job = pool.run(result, "exit", (exit) => heard.push(exit))
      job.interrupt() // over already: nothing to interrupt, nothing reported twice
    }
    expect(heard).toEqual([Exit.succeed(1), Exit.fail("no"), Exit.die("boom")])
    // No worker was started (none parked afterwards), and a call that has work to do still gets one.
    expect(pool.idle.length).toBe(0)
    let ranSync = false
    pool.run(Effect.sync(() => (ranSync = true)), "work", (exit) => heard.push(exit))
    expect(ranSync).toBe(true)
    expect(heard.at(-1)).toEqual(Exit.succeed(true))
    expect(pool.idle.length).toBe(1)
    pool.close()
  })

  it("every call starts from the runtime's refs, with its own call value: nothing leaks from the last one", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    const leaky = Effect.zipRight(FiberRef.set(counter, 41), FiberRef.get(callRef))
    expect(await call(pool, leaky, "a").exit).toEqual(Exit.succeed("a"))
    const next = await call(pool, Effect.all([FiberRef.get(counter), FiberRef.get(callRef)]), "b").exit
    expect(next).toEqual(Exit.succeed([0, "b"]))
    pool.close()
  })

  it("fibers a call forked are interrupted before its exit is reported", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    const child = Deferred.unsafeMake<Fiber.RuntimeFiber<never>>(FiberId.none)
    const exit = await call(
      pool,
      Effect.flatMap(Effect.fork(Effect.never), (fiber) => Deferred.succeed(child, fiber))
    ).exit
    expect(Exit.isSuccess(exit)).toBe(true)
    const forked = await Effect.runPromise(Deferred.await(child))
    expect(Exit.isInterrupted(forked.unsafePoll()!)).toBe(true)
    pool.close()
  })

  it("interrupting a call ends that call only; its worker is not reused and later calls run", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    const started = Deferred.unsafeMake<string>(FiberId.none)
    const blocked = call(pool, Effect.zipRight(Deferred.succeed(started, "yes"), Effect.never))
    await Effect.runPromise(Deferred.await(started))
    blocked.job.interrupt()
    expect(Exit.isInterrupted(await blocked.exit)).toBe(true)
    expect(pool.idle.length).toBe(0)
    // A cancel that comes after the call ended is ignored: the worker serves the next call.
    const done = call(pool, Effect.sync(() => 1))
    expect(await done.exit).toEqual(Exit.succeed(1))
    done.job.interrupt()
    expect(await call(pool, Effect.sync(() => 2)).exit).toEqual(Exit.succeed(2))
    pool.close()
  })

  it("a call interrupted before it started (woken from inside a fiber) reports an interruption", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    await call(pool, Effect.sync(() => undefined)).exit
    const exit = await Effect.runPromise(
      Effect.sync(() => {
        // Inside a fiber the wake-up is deferred: the cancel comes before the call has run.
        const pending = call(pool, Effect.sync(() => "ran"))
        pending.job.interrupt()
        return pending.exit
      }).pipe(Effect.flatMap((p) => Effect.promise(() => p)))
    )
    expect(Exit.isInterrupted(exit)).toBe(true)
    pool.close()
  })

  it("failures and defects are reported as the call's exit; the worker keeps serving", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef)
    // Not `Exit` values (those skip the workers, see above): these run on a worker.
    expect(await call(pool, Effect.suspend(() => Effect.fail("no"))).exit).toEqual(Exit.fail("no"))
    const died = await call(pool, Effect.die(new Error("boom"))).exit
    expect(Exit.isFailure(died) && !Exit.isInterrupted(died)).toBe(true)
    expect(await call(pool, Effect.sync(() => "ok")).exit).toEqual(Exit.succeed("ok"))
    expect(pool.idle.length).toBe(1)
    pool.close()
  })

  it("keeps at most maxIdle workers; close ends the idle ones and busy ones after their call", async () => {
    const pool = new HandlerPool(Runtime.defaultRuntime, callRef, 2)
    const gates = Array.from({ length: 5 }, () => Deferred.unsafeMake<void>(FiberId.none))
    const calls = gates.map((gate) => call(pool, Deferred.await(gate)))
    for (const gate of gates) Deferred.unsafeDone(gate, Exit.void)
    await Promise.all(calls.map((c) => c.exit))
    expect(pool.idle.length).toBe(2)
    const busyGate = Deferred.unsafeMake<void>(FiberId.none)
    const busy = call(pool, Deferred.await(busyGate))
    const idle = pool.idle.map((worker) => worker.fiber!)
    const busyWorker = busy.job.worker!.fiber!
    expect(idle.length).toBe(1)
    pool.close()
    expect(pool.idle.length).toBe(0)
    Deferred.unsafeDone(busyGate, Exit.void)
    expect(Exit.isSuccess(await busy.exit)).toBe(true)
    for (const fiber of idle) {
      const exit = await Effect.runPromise(Fiber.await(fiber))
      expect(Exit.isInterrupted(exit)).toBe(true)
    }
    // The busy worker ended after its call instead of parking.
    expect(Exit.isSuccess(await Effect.runPromise(Fiber.await(busyWorker)))).toBe(true)
    expect(pool.idle.length).toBe(0)
  })
})
