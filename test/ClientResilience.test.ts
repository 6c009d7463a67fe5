/**
 * The client runtime's resilience, in memory and on TestClock: outlier ejection of a dead node that stays
 * listed, hung-node detection, the retry budget and hedged requests.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import type { ClientLayerOptions } from "../src/Client.js"
import { Client, Codec, Contract, Registry, Selector, Server, Transport } from "../src/index.js"
import { runtimeOf } from "../src/internal/rpc/clientService.js"
import { Status } from "../src/internal/rpc/nodeHealth.js"
import type { Connection } from "../src/Transport.js"
import { ghostNode as ghost, handlers, serveMemory as serve, Testing } from "./support/contract.js"

/**
 * The memory transport, instrumented: dials are counted per address, and what a node sends can be held
 * back (`freeze`) as if its process were stopped (SIGSTOP: the connection stays open and silent), then
 * released (`thaw`).
 */
class Network {
  readonly dials = new Map<string, number>()
  private readonly frozen = new Set<string>()
  private readonly held = new Map<string, Array<() => void>>()

  freeze(address: string): void {
    this.frozen.add(address)
  }
  thaw(address: string): void {
    this.frozen.delete(address)
    const held = this.held.get(address) ?? []
    this.held.delete(address)
    for (const deliver of held) deliver()
  }

  readonly layer = Layer.sync(Transport.Transport, () => {
    const inner = Transport.makeMemory()
    return {
      ...inner,
      dial: (address: string) => {
        this.dials.set(address, (this.dials.get(address) ?? 0) + 1)
        return Effect.map(inner.dial(address), (connection) => this.wrap(address, connection))
      }
    }
  })

  private wrap(address: string, connection: Connection): Connection {
    return {
      remoteAddress: connection.remoteAddress,
      peerIdentity: connection.peerIdentity,
      write: connection.write,
      pendingBytes: connection.pendingBytes,
      whenDrained: connection.whenDrained,
      pause: connection.pause,
      resume: connection.resume,
      onData: (handler) =>
        connection.onData((chunk) => {
          if (!this.frozen.has(address)) return handler(chunk)
          let held = this.held.get(address)
          if (held === undefined) this.held.set(address, held = [])
          held.push(() => handler(chunk))
        }),
      onClose: connection.onClose,
      close: connection.close,
      destroy: connection.destroy
    }
  }
}

const env = (
  network: Network,
  layers: ReadonlyArray<Layer.Layer<never, any, any>>,
  options?: ClientLayerOptions,
  selector: Layer.Layer<Selector.Selector> = Selector.layer
) =>
  Layer.mergeAll(Client.layer(options), ...(layers as Array<Layer.Layer<never, never, never>>)).pipe(
    Layer.provideMerge(Layer.mergeAll(network.layer, Registry.layerMemory, Codec.layer, selector))
  )

/** Advances the TestClock in steps (the client's timing wheel ticks every 20 ms). */
const advance = (millis: number, step = 20) =>
  Effect.forEach(Array.from({ length: Math.ceil(millis / step) }), () => TestClock.adjust(step), { discard: true })

describe("Client resilience", () => {
  const deadNetwork = new Network()
  it.scoped("a dead node the registry still lists is ejected at its first refused dial and stays out; only trials reach it, less and less often", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const served = new Map<string, number>()
      // 60 simulated seconds, 8 calls every 500 ms, non-idempotent ones included.
      for (let step = 0; step < 120; step++) {
        const batch = yield* Effect.fork(Effect.all([
          ...Array.from({ length: 4 }, () => Effect.map(testing.Echo({ text: "x" }), (r) => r.node)),
          ...Array.from({ length: 4 }, () => Effect.as(testing.Hello({ name: "x" }), "hello"))
        ], { concurrency: "unbounded" }))
        yield* advance(500, 250) // room for a retry's backoff
        for (const node of yield* Fiber.join(batch)) served.set(node, (served.get(node) ?? 0) + 1)
      }
      expect([...served.values()].reduce((a, b) => a + b)).toBe(960) // every call succeeded
      // Ejected at the first refused dial for 1 s, then one trial per ejection: 1, 2, 4, 8, 16, 30 s.
      const dials = deadNetwork.dials.get("memory:ghost")!
      expect(dials).toBeGreaterThanOrEqual(5)
      expect(dials).toBeLessThanOrEqual(8)
      const client = runtimeOf(yield* Client.Client)
      expect(client.health.peek("memory:ghost")!.status).not.toBe(Status.Closed)
      // The same, as the public Client.Service shows it.
      const nodes = (yield* Client.Client).nodes()
      expect(nodes.find((n) => n.address === "memory:ghost")).toMatchObject({ reason: "refused", outstanding: 0 })
      expect(nodes.find((n) => n.address === "memory:ghost")!.status).not.toBe("closed")
      expect(nodes.find((n) => n.address === "memory:b-live")).toMatchObject({
        status: "closed",
        ejectedUntil: undefined
      })
    }).pipe(Effect.provide(env(deadNetwork, [serve("b-live"), serve("c-live"), ghost("ghost")]))))

  const hungNetwork = new Network()
  it.scoped("a hung node (open, silent) is pinged, ejected and avoided; calls on it keep their deadline; when it answers again it rejoins via a trial", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const direct = yield* Client.make(Testing, { service: "testing", node: "memory:n1" })
      const client = runtimeOf(yield* Client.Client)
      // Connections to every node.
      for (let i = 0; i < 30; i++) yield* testing.Echo({ text: "warm" })
      expect(client.pool.peek("memory:n1")).toBeDefined()
      hungNetwork.freeze("memory:n1")
      const stuck = yield* Effect.fork(Effect.all(Array.from({ length: 3 }, () => direct.Echo({ text: "stuck" })), {
        concurrency: "unbounded"
      }))
      yield* advance(200)
      expect(client.health.peek("memory:n1")!.status).toBe(Status.Closed) // quiet, PING sent, not yet hung
      // Quiet ≥ 200 ms → PING; unanswered for 250 ms → hung (checks every 50 ms, on 20 ms ticks).
      yield* advance(600)
      const state = client.health.peek("memory:n1")!
      expect(state.status).toBe(Status.Open)
      expect(state.reason).toBe("hung")
      expect(state.outstanding).toBe(3)
      // New calls go elsewhere.
      const nodes = new Set<string>()
      for (let i = 0; i < 100; i++) nodes.add((yield* testing.Echo({ text: "after" })).node)
      expect(nodes).toEqual(new Set(["n2", "n3"]))
      // The calls on it were not failed early: still waiting, within their 5 s deadline.
      expect(stuck.unsafePoll()).toBeNull()
      // It answers again (SIGCONT): the stuck calls complete, the node gets its trial and rejoins.
      hungNetwork.thaw("memory:n1")
      const replies = yield* Fiber.join(stuck)
      expect(replies.map((r) => r.node)).toEqual(["n1", "n1", "n1"])
      expect(state.status).toBe(Status.HalfOpen)
      const again = new Set<string>()
      for (let i = 0; i < 100; i++) again.add((yield* testing.Echo({ text: "rejoined" })).node)
      expect(again).toEqual(new Set(["n1", "n2", "n3"]))
      expect(state.status).toBe(Status.Closed)
    }).pipe(Effect.provide(env(hungNetwork, [serve("n1"), serve("n2"), serve("n3")]))))

  it.scoped("hungNodes: false leaves a silent node alone until its calls time out", () =>
    Effect.gen(function*() {
      const network = hungOff
      const testing = yield* Client.make(Testing, { service: "testing", node: "memory:n1" })
      yield* testing.Echo({ text: "warm" })
      network.freeze("memory:n1")
      const call = yield* Effect.fork(
        Effect.exit(testing.Echo({ text: "stuck" }, { retry: false, timeout: "2 seconds" }))
      )
      yield* advance(1500)
      const client = runtimeOf(yield* Client.Client)
      expect(client.health.peek("memory:n1")!.status).toBe(Status.Closed)
      yield* advance(600)
      const exit = yield* Fiber.join(call)
      expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag).toBe("Timeout")
    }).pipe(Effect.provide(env(hungOff, [serve("n1")], { hungNodes: false }))))

  const budgetNetwork = new Network()
  it.scoped("the retry budget: retries stop with RetryBudgetExhausted once it is spent", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      // The node refuses every call with a retryable 503 (its stream cap is 0): each retry reaches a server.
      const first = yield* Effect.flip(testing.Hello({ name: "x" }, { retry: Schedule.recurs(5) }))
      expect(first._tag).toBe("RetryBudgetExhausted")
      expect((first as { detail: string }).detail).toContain("ServiceUnavailable")
      const second = yield* Effect.flip(testing.Hello({ name: "x" }, { retry: Schedule.recurs(5) }))
      expect(second._tag).toBe("RetryBudgetExhausted")
      // Without retries the budget is not consulted: the call's own error.
      expect((yield* Effect.flip(testing.Hello({ name: "x" }, { retry: false })))._tag).toBe("ServiceUnavailable")
    }).pipe(Effect.provide(env(budgetNetwork, [
      Server.layer(Testing, {
        name: "testing",
        address: "memory:full",
        id: "full",
        limits: { maxConcurrentStreams: 0 }
      })
        .pipe(Layer.provide(handlers("full")))
    ], {
      ejection: false,
      retryBudget: { burst: 2, ratio: 0, minRetriesPerSecond: 0 }
    }))))

  const refusedNetwork = new Network()
  it.scoped("retries after a refused dial are not paid from the budget (no server saw the call)", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const error = yield* Effect.flip(testing.Hello({ name: "x" }, { retry: Schedule.recurs(5) }))
      expect(error._tag).toBe("TransportError")
      expect(refusedNetwork.dials.get("memory:gone")).toBe(6) // first attempt + 5 retries, budget of 2 untouched
    }).pipe(Effect.provide(env(refusedNetwork, [ghost("gone")], {
      ejection: false,
      retryBudget: { burst: 2, ratio: 0, minRetriesPerSecond: 0 }
    }))))

  const defaultBudget = new Network()
  it.scoped("the default budget lets the occasional retry through (a refused node among healthy ones)", () =>
    Effect.gen(function*() {
      const testing = yield* Client.make(Testing, { service: "testing" })
      const fiber = yield* Effect.fork(Effect.forEach(Array.from({ length: 50 }), () => testing.Hello({ name: "x" })))
      yield* advance(1000)
      expect(yield* Fiber.join(fiber)).toHaveLength(50)
    }).pipe(
      Effect.provide(env(defaultBudget, [serve("b-live"), ghost("a-ghost")], undefined, Selector.layerRoundRobin()))
    ))
})

const hungOff = new Network()

// ----- hedging -----

const Hedging = RpcGroup.make(
  Rpc.make("Lookup", { payload: { key: Schema.String }, success: Schema.String }).annotate(Contract.Idempotent, true),
  Rpc.make("Update", { payload: { key: Schema.String }, success: Schema.String })
)

/** "a-slow" takes 10 s per call (and says when a call is interrupted), "b-fast" answers at once. */
const hedgingNode = (node: string, events: Array<string>) =>
  Server.layer(Hedging, { name: "hedging", address: `memory:${node}`, id: node }).pipe(
    Layer.provide(Hedging.toLayer({
      Lookup: ({ key }) => slowOrFast(node, `lookup ${key}`, events),
      Update: ({ key }) => slowOrFast(node, `update ${key}`, events)
    }))
  )

const slowOrFast = (node: string, what: string, events: Array<string>) =>
  Effect.sync(() => events.push(`${node} ${what}`)).pipe(
    Effect.zipRight(node === "a-slow" ? Effect.sleep("10 seconds") : Effect.void),
    Effect.as(node),
    Effect.onInterrupt(() => Effect.sync(() => events.push(`${node} ${what} cancelled`)))
  )

/** Always the first candidate in `order` (candidates exclude what the call already tried). */
const order = { first: "a-slow" }
const inOrder = Layer.succeed(Selector.Selector, {
  select: (request) => {
    const nodes = [...Selector.candidates(request)].sort((
      a,
      b
    ) => (a.id === order.first ? -1 : b.id === order.first ? 1 : 0))
    return Effect.succeed(nodes[0]!)
  },
  mark: () => Effect.void
})

describe("Client hedging", () => {
  const events: Array<string> = []
  const hedgeEnv = (options?: ClientLayerOptions) =>
    Layer.mergeAll(Client.layer(options), hedgingNode("a-slow", events), hedgingNode("b-fast", events)).pipe(
      Layer.provideMerge(Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, inOrder))
    )

  it.scoped("an idempotent call unanswered after `delay` is sent to another node; the first answer wins, the loser is cancelled", () =>
    Effect.gen(function*() {
      events.length = 0
      order.first = "a-slow"
      const hedging = yield* Client.make(Hedging, { service: "hedging", hedge: { delay: "100 millis" } })
      const fiber = yield* Effect.fork(hedging.Lookup({ key: "k" }))
      yield* advance(60)
      expect(events).toEqual(["a-slow lookup k"]) // no hedge before the delay
      yield* advance(60)
      expect(yield* Fiber.join(fiber)).toBe("b-fast")
      yield* advance(20)
      expect(events).toEqual(["a-slow lookup k", "b-fast lookup k", "a-slow lookup k cancelled"])
      // A fast first answer: no hedge at all.
      events.length = 0
      order.first = "b-fast"
      expect(yield* hedging.Lookup({ key: "2" })).toBe("b-fast")
      yield* advance(200)
      expect(events).toEqual(["b-fast lookup 2"])
    }).pipe(Effect.provide(hedgeEnv())))

  it.scoped("non-idempotent endpoints are never hedged", () =>
    Effect.gen(function*() {
      events.length = 0
      order.first = "a-slow"
      const hedging = yield* Client.make(Hedging, { service: "hedging", hedge: { delay: "100 millis" } })
      const fiber = yield* Effect.fork(Effect.flip(hedging.Update({ key: "k" }, { timeout: "1 second" })))
      yield* advance(1100)
      expect((yield* Fiber.join(fiber))._tag).toBe("Timeout")
      expect(events.filter((e) => !e.endsWith("cancelled"))).toEqual(["a-slow update k"])
    }).pipe(Effect.provide(hedgeEnv())))

  it.scoped("a hedge is paid from the retry budget and skipped when it is empty", () =>
    Effect.gen(function*() {
      events.length = 0
      order.first = "a-slow"
      const hedging = yield* Client.make(Hedging, { service: "hedging", hedge: { delay: "100 millis" } })
      const first = yield* Effect.fork(hedging.Lookup({ key: "1" }))
      yield* advance(200)
      expect(yield* Fiber.join(first)).toBe("b-fast")
      events.length = 0
      const second = yield* Effect.fork(
        Effect.flip(hedging.Lookup({ key: "2" }, { timeout: "1 second", retry: false }))
      )
      yield* advance(1100)
      expect((yield* Fiber.join(second))._tag).toBe("Timeout")
      expect(events.filter((e) => !e.endsWith("cancelled"))).toEqual(["a-slow lookup 2"])
    }).pipe(Effect.provide(hedgeEnv({ retryBudget: { burst: 1, ratio: 0, minRetriesPerSecond: 0 } }))))
})
