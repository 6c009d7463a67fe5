/** The per-node breaker, load accounting and hung-node check, on TestClock. */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import type { EjectionOptions } from "../../src/Client.js"
import {
  checkHungNodes,
  NodeHealth,
  type NodeState,
  type Probeable,
  resolveEjection,
  resolveHungNode,
  Status
} from "../../src/internal/rpc/nodeHealth.js"
import type { Node } from "../../src/Registry.js"

const node = (id: string): Node => ({ id, address: `${id}:1`, metadata: {} })
const [a, b, c] = [node("a"), node("b"), node("c")]

const makeHealth = (options?: EjectionOptions | false) =>
  Effect.map(Effect.clock, (clock) => {
    const ejected: Array<string> = []
    const health = new NodeHealth(clock, resolveEjection(options), (state) => ejected.push(state.address))
    return { health, ejected, now: () => clock.unsafeCurrentTimeMillis() }
  })

/** Frames "received" from every node so far: each call begins after a fresh one unless told otherwise. */
let frames = 0

/** A call of its own (the trial's identity), begun on the node (`received`: the connection's frame count). */
const call = (health: NodeHealth, state: NodeState, received = ++frames) => {
  const owner = {}
  const trial = health.begin(state, owner, received)
  return {
    trial,
    succeed: () => {
      health.end(state)
      health.succeed(state, owner)
    },
    fail: () => {
      health.end(state)
      health.fail(state, owner, "failure")
    },
    release: () => {
      health.end(state)
      health.release(state, owner)
    }
  }
}

const usableIds = (health: NodeHealth, nodes: ReadonlyArray<Node>) => health.usable(nodes).map((n) => n.id)

describe("NodeHealth: the breaker", () => {
  it.effect("closed → open after `consecutiveFailures` failures in a row; a success resets the count", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const state = health.state(a.address)
      for (let i = 0; i < 4; i++) call(health, state).fail()
      call(health, state).succeed()
      for (let i = 0; i < 4; i++) call(health, state).fail()
      expect(state.status).toBe(Status.Closed)
      expect(health.unhealthy).toBe(0)
      call(health, state).fail()
      expect(state.status).toBe(Status.Open)
      expect(health.unhealthy).toBe(1)
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
    }))

  it.effect("a refused dial or a hung node ejects at once", () =>
    Effect.gen(function*() {
      const { health, ejected } = yield* makeHealth()
      health.fail(health.state(a.address), undefined, "refused")
      health.fail(health.state(b.address), undefined, "hung")
      expect(ejected).toEqual([a.address, b.address])
      expect(health.state(a.address).reason).toBe("refused")
      expect(health.state(b.address).reason).toBe("hung")
    }))

  it.effect("open → half-open when the ejection time is up; exactly one trial; its success closes", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const state = health.state(a.address)
      health.fail(state, undefined, "refused")
      yield* TestClock.adjust("999 millis")
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
      yield* TestClock.adjust("1 millis")
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"])
      expect(state.status).toBe(Status.HalfOpen)
      expect(health.load(a)).toBe(0) // the trial is due: as attractive as an idle node
      const trial = call(health, state)
      const second = call(health, state) // raced past selection: a plain call, not a trial
      expect([trial.trial, second.trial]).toEqual([true, false])
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
      expect(health.load(a)).toBeGreaterThan(1e6)
      // Non-trial outcomes decide nothing while half-open.
      second.fail()
      expect(state.status).toBe(Status.HalfOpen)
      trial.succeed()
      expect(state.status).toBe(Status.Closed)
      expect(health.unhealthy).toBe(0)
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"])
    }))

  it.effect("a failed trial re-opens for twice as long: 1 s, 2 s, 4 s … capped at maxTime", () =>
    Effect.gen(function*() {
      const { health, now } = yield* makeHealth({ maxTime: "5 seconds" })
      const state = health.state(a.address)
      health.fail(state, undefined, "refused")
      const durations: Array<number> = []
      let openedAt = now()
      for (let i = 0; i < 5; i++) {
        durations.push(state.ejectedUntil - openedAt)
        yield* TestClock.adjust(state.ejectedUntil - now())
        expect(usableIds(health, [a, b, c])).toContain("a")
        const trial = call(health, state)
        expect(trial.trial).toBe(true)
        openedAt = now()
        trial.fail()
        expect(state.status).toBe(Status.Open)
      }
      expect(durations).toEqual([1000, 2000, 4000, 5000, 5000])
    }))

  it.effect("a refused dial during half-open re-ejects whoever holds the trial; an interrupted trial frees the slot", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const state = health.state(a.address)
      health.fail(state, undefined, "refused")
      yield* TestClock.adjust("1 second")
      const trial = call(health, state)
      trial.release()
      expect(state.status).toBe(Status.HalfOpen)
      expect(state.trialOwner).toBeUndefined()
      expect(call(health, state).trial).toBe(true) // the next call is the trial
      health.fail(state, undefined, "refused")
      expect(state.status).toBe(Status.Open)
      expect(state.ejectedUntil - (yield* TestClock.currentTimeMillis)).toBe(2000)
    }))

  it.effect("a trial claim that never reports back is void after maxTime", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth({ maxTime: "10 seconds" })
      const state = health.state(a.address)
      health.fail(state, undefined, "refused")
      yield* TestClock.adjust("1 second")
      expect(health.claimTrial(state, {})).toBe(true) // selected, then the call was lost before it started
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
      expect(health.claimTrial(state, {})).toBe(false)
      yield* TestClock.adjust("10 seconds")
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"])
      const next = {}
      expect(health.claimTrial(state, next)).toBe(true)
      health.succeed(state, next)
      expect(state.status).toBe(Status.Closed)
    }))

  it.effect("stragglers: failures while open are ignored; a success from a node ejected as hung gives it its trial now", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const failed = health.state(a.address)
      const straggler = call(health, failed)
      health.fail(failed, undefined, "refused")
      const until = failed.ejectedUntil
      straggler.fail()
      expect(failed.ejectedUntil).toBe(until)
      // A success does not end an ejection for failures...
      const late = call(health, failed)
      late.succeed()
      expect(failed.status).toBe(Status.Open)
      // ...but it does end one for silence.
      const hung = health.state(b.address)
      const stuck = call(health, hung)
      health.fail(hung, undefined, "hung")
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"]) // 1 of 3 usable: panic
      stuck.succeed()
      expect(hung.status).toBe(Status.HalfOpen)
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
    }))

  it.effect("a node ejected as hung gets no timed trial while calls are still stuck on it", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const state = health.state(a.address)
      const stuck = call(health, state)
      health.fail(state, undefined, "hung")
      yield* TestClock.adjust("5 seconds")
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
      stuck.release() // its deadline passed
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"])
      expect(state.status).toBe(Status.HalfOpen)
    }))

  it.effect("the ejection count starts again once a node stayed closed for maxTime", () =>
    Effect.gen(function*() {
      const { health, now } = yield* makeHealth({ maxTime: "10 seconds" })
      const state = health.state(a.address)
      health.fail(state, undefined, "refused") // 1 s
      yield* TestClock.adjust("1 second")
      call(health, state).fail() // trial fails: 2 s
      yield* TestClock.adjust("2 seconds")
      call(health, state).succeed() // closed
      health.fail(state, undefined, "refused") // relapse soon after: 4 s
      expect(state.ejectedUntil - now()).toBe(4000)
      yield* TestClock.adjust("4 seconds")
      call(health, state).succeed()
      yield* TestClock.adjust("10 seconds")
      health.fail(state, undefined, "refused") // long healthy: back to 1 s
      expect(state.ejectedUntil - now()).toBe(1000)
    }))

  it.effect("panic threshold: ejection never leaves fewer than half of the candidates (default), nor none", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      health.fail(health.state(a.address), undefined, "refused")
      expect(usableIds(health, [a, b])).toEqual(["b"]) // 1 of 2 usable: ejection holds
      expect(usableIds(health, [a])).toEqual(["a"]) // none usable: all are used
      health.fail(health.state(b.address), undefined, "refused")
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"]) // 1 of 3 < 50 %: panic
      // Panic ignores ejection but ejected nodes still score worse than usable ones.
      expect(health.load(a)).toBeGreaterThan(health.load(c))
      const strict = (yield* makeHealth({ panicThreshold: 0 })).health
      strict.fail(strict.state(a.address), undefined, "refused")
      strict.fail(strict.state(b.address), undefined, "refused")
      expect(usableIds(strict, [a, b, c])).toEqual(["c"])
    }))

  it.effect("ejection: false never ejects, but still counts calls in flight", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth(false)
      const state = health.state(a.address)
      health.fail(state, undefined, "refused")
      for (let i = 0; i < 10; i++) call(health, state).fail()
      expect(state.status).toBe(Status.Closed)
      call(health, state)
      expect(health.load(a)).toBe(1 + 1)
      expect(health.outstanding).toBe(1)
    }))

  it.effect("load: calls in flight, weighted by recent failures", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const busy = health.state(a.address)
      const calls = [call(health, busy), call(health, busy), call(health, busy)]
      expect(health.load(a)).toBe(3 + 1) // 3 in flight, the last one sent since the node last answered
      expect(health.load(c)).toBe(0) // never seen
      const flaky = health.state(b.address)
      call(health, flaky).fail()
      call(health, flaky).fail()
      expect(health.load(b)).toBe(3) // (0 + 1) × (1 + 2 failures)
      for (const pending of calls) pending.succeed()
      expect(health.load(a)).toBe(0)
      expect(health.outstanding).toBe(0)
    }))

  it.effect("load: calls sent since the node last answered weigh by their square; any frame resets them", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      const silent = health.state(a.address)
      const quiet = frames
      const stuck = [call(health, silent, quiet), call(health, silent, quiet), call(health, silent, quiet)]
      expect(silent.unanswered).toBe(3)
      expect(health.load(a)).toBe(3 + 9)
      // A healthy node with as many in flight, answering as it goes.
      const healthy = health.state(b.address)
      for (let i = 0; i < 3; i++) call(health, healthy)
      expect(health.load(b)).toBe(3 + 1)
      // The silent node speaks (a reply, a PONG): the next call starts a new count.
      call(health, silent, quiet + 1)
      expect(silent.unanswered).toBe(1)
      // Calls ending bring it down with them (never more unanswered than in flight).
      for (const pending of stuck) pending.release()
      expect(silent.unanswered).toBe(1)
      expect(health.load(a)).toBe(1 + 1)
    }))

  it.effect("sweep forgets nodes nobody called since the previous sweep", () =>
    Effect.gen(function*() {
      const { health } = yield* makeHealth()
      health.fail(health.state(a.address), undefined, "refused")
      const pending = call(health, health.state(b.address))
      health.state(c.address)
      health.sweep() // everything was touched: kept, marked untouched
      health.state(c.address)
      health.sweep()
      expect(health.peek(a.address)).toBeUndefined()
      expect(health.unhealthy).toBe(0)
      expect(health.peek(b.address)).toBeDefined() // a call is in flight
      expect(health.peek(c.address)).toBeDefined()
      pending.succeed()
    }))
})

/** A connection the test controls: frames "arrive" when the test says so; PINGs are counted. */
class FakeConnection implements Probeable {
  received = 0
  pings = 0
  answering = true
  ping(): void {
    this.pings++
  }
  /** The peer answers pending PINGs (if it is answering). */
  pong(): void {
    if (this.answering && this.pings > 0) this.received++
  }
}

describe("NodeHealth: hung-node check", () => {
  const options = resolveHungNode(undefined) // 50 ms checks, quiet ≥ 200 ms, PING answered within 250 ms

  const setup = Effect.gen(function*() {
    const { health, now } = yield* makeHealth()
    const connection = new FakeConnection()
    const state = health.state(a.address)
    let last = now()
    const check = Effect.gen(function*() {
      yield* TestClock.adjust("50 millis")
      checkHungNodes(
        health,
        options,
        (address) => (address === a.address ? connection : undefined),
        now(),
        now() - last
      )
      last = now()
    })
    return { health, connection, state, check }
  })

  it.effect("calls in flight and nothing received: PING after 200 ms, ejected when it is not answered within 250 ms", () =>
    Effect.gen(function*() {
      const { check, connection, health, state } = yield* setup
      call(health, state)
      for (let i = 0; i < 4; i++) yield* check // 200 ms quiet
      expect(connection.pings).toBe(0)
      yield* check
      expect(connection.pings).toBe(1)
      for (let i = 0; i < 4; i++) yield* check
      expect(state.status).toBe(Status.Closed)
      yield* check // 250 ms without an answer
      expect(state.status).toBe(Status.Open)
      expect(state.reason).toBe("hung")
      expect(state.outstanding).toBe(1) // the call on it is left alone
    }))

  it.effect("a node that answers the PING is slow, not hung; a node that sends frames is not even pinged", () =>
    Effect.gen(function*() {
      const { check, connection, health, state } = yield* setup
      call(health, state)
      for (let i = 0; i < 6; i++) yield* check
      expect(connection.pings).toBe(1)
      connection.pong()
      for (let i = 0; i < 6; i++) yield* check
      expect(state.status).toBe(Status.Closed)
      const pings = connection.pings
      for (let i = 0; i < 20; i++) {
        connection.received++ // replies keep arriving
        yield* check
      }
      expect(connection.pings).toBe(pings)
      expect(state.status).toBe(Status.Closed)
    }))

  it.effect("an idle node is never pinged; a hung node that answers again gets its trial at once", () =>
    Effect.gen(function*() {
      const { check, connection, health, state } = yield* setup
      for (let i = 0; i < 20; i++) yield* check
      expect(connection.pings).toBe(0)
      call(health, state)
      connection.answering = false
      for (let i = 0; i < 10; i++) yield* check
      expect(state.status).toBe(Status.Open)
      expect(usableIds(health, [a, b, c])).toEqual(["b", "c"])
      // Ejected for 1 s, but it resumes (SIGCONT) after 100 ms: the next PING is answered.
      yield* check
      connection.answering = true
      for (let i = 0; i < 6; i++) {
        connection.pong()
        yield* check
      }
      expect(usableIds(health, [a, b, c])).toEqual(["a", "b", "c"])
      expect(state.status).toBe(Status.HalfOpen)
    }))

  it.effect("the quiet time follows the node's latency (Little's law): a slow node is given longer", () =>
    Effect.gen(function*() {
      const { check, connection, health, state } = yield* setup
      // 10 calls in flight, 2 completing per 50 ms check: ≈ 250 ms each.
      const inFlight = Array.from({ length: 10 }, () => call(health, state))
      for (let round = 0; round < 10; round++) {
        inFlight.shift()!.succeed()
        inFlight.shift()!.succeed()
        inFlight.push(call(health, state), call(health, state))
        connection.received += 2
        yield* check
      }
      expect(state.latencyMillis).toBeGreaterThan(200)
      expect(state.latencyMillis).toBeLessThan(300)
      // Now silent: PING only after 8 × ≈250 ms, not after 200 ms.
      for (let i = 0; i < 10; i++) yield* check
      expect(connection.pings).toBe(0)
      for (let i = 0; i < 40; i++) yield* check
      expect(connection.pings).toBeGreaterThan(0)
    }))
})
