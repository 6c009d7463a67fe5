/**
 * The Registry contract, written once and run against every layer (memory, mdns, etcd, cached).
 *
 * A harness builds two views of the same registry: `writer` registers and deregisters, `reader`
 * answers lookups and watches. For memory they are the same instance; for mdns and etcd they are
 * separate instances (separate sockets / clients), so the suite exercises the network path.
 *
 * Time: with `clock: "test"` the suite moves `TestClock`; with `clock: "live"` it sleeps for real,
 * always bounded (`settle` is the longest it waits for anything to propagate). A watch is taken as live once
 * it reports a probe change (`liveWatch`), never after a fixed delay.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { Event, Registry, Service } from "../../src/Registry.js"

export interface RegistryPair {
  readonly writer: Registry.Service
  readonly reader: Registry.Service
}

export interface RegistryHarness {
  /** Builds the writer and reader views (scoped to one test). */
  readonly make: Effect.Effect<RegistryPair, unknown, Scope.Scope>
  /** "test": TestClock drives time; "live": real time (network backends). */
  readonly clock: "test" | "live"
  /** TTL used by the expiry tests. Live backends: short but real (e.g. 2 s). */
  readonly ttl: Duration.DurationInput
  /** Longest wait for a change to become visible to the reader (live only). Default 3 s. */
  readonly settle?: Duration.DurationInput | undefined
}

let counter = 0
/** Service names unique per test, so backends with shared state (etcd, a multicast group) never mix tests. */
export const uniqueName = (prefix: string) =>
  `${prefix}-${process.pid}-${Date.now().toString(36)}-${(counter++).toString(36)}`

export const makeService = (
  name: string,
  nodes: ReadonlyArray<{ id: string; port: number; metadata?: Record<string, string> }>,
  version = "1.0.0",
  metadata: Record<string, string> = { team: "core" }
): Service => ({
  name,
  version,
  metadata,
  endpoints: [{ name: "Greeter.Hello", metadata: { stream: "false" } }],
  nodes: nodes.map((n) => ({ id: n.id, address: `127.0.0.1:${n.port}`, metadata: n.metadata ?? { zone: "a" } }))
})

/** The version probe nodes are registered under: a (name, version) of their own, so watched versions see no event. */
const probeVersion = "0.0.0-probe"

/**
 * Starts a watch on `service` that collects its events into a Ref, and returns once the watch is live.
 *
 * A watch says nothing when it is established, so the signal is the watch itself reporting a change: `writer`
 * registers probe nodes of `service` (a new node each attempt, under a version of their own) until one shows
 * up, then removes them and waits for the delete. The collected events are cleared before returning, so they
 * hold only what happens after. `pause` lets time pass between attempts (a real sleep, or TestClock).
 */
export const liveWatch = (
  reader: Registry.Service,
  writer: Registry.Service,
  service: string,
  options: { readonly within?: Duration.DurationInput; readonly pause?: Effect.Effect<void> } = {}
): Effect.Effect<Ref.Ref<Chunk.Chunk<Event>>, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const events = yield* Ref.make(Chunk.empty<Event>())
    yield* reader.watch({ service }).pipe(
      Stream.runForEach((event) => Ref.update(events, Chunk.append(event))),
      Effect.forkScoped
    )
    const pause = options.pause ?? Effect.sleep("50 millis")
    const attempts = Math.max(1, Math.ceil(Duration.toMillis(Duration.decode(options.within ?? "5 seconds")) / 50))
    const probes: Array<{ id: string; port: number }> = []
    const sawProbe = (type?: Event["type"]) =>
      Effect.map(
        Ref.get(events),
        Chunk.some((event) => event.service.version === probeVersion && (type === undefined || event.type === type))
      )
    const until = (what: string, attempt: Effect.Effect<void, unknown>, seen: Effect.Effect<boolean>) =>
      Effect.gen(function*() {
        for (let i = 1;; i++) {
          yield* attempt
          if (yield* seen) return
          if (i >= attempts) return yield* Effect.fail(new Error(`watch on ${service}: ${what} not seen in time`))
          yield* pause
        }
      })
    yield* until(
      "a probe registration",
      Effect.suspend(() => {
        const probe = { id: `${service}-probe-${probes.length}`, port: 4999 }
        probes.push(probe)
        return writer.register(makeService(service, [probe], probeVersion), { ttl: "1 minute" })
      }),
      sawProbe()
    )
    yield* writer.deregister(makeService(service, probes, probeVersion))
    yield* until("the probe's removal", Effect.void, sawProbe("delete"))
    yield* Ref.set(events, Chunk.empty())
    return events
  })

const nodeIds = (services: ReadonlyArray<Service>) => services.flatMap((s) => s.nodes.map((n) => n.id)).sort()

export const registryContract = (label: string, harness: RegistryHarness): void => {
  const live = harness.clock === "live"
  const settle = Duration.toMillis(Duration.decode(harness.settle ?? "3 seconds"))
  const step = 50
  const ttlMillis = Duration.toMillis(Duration.decode(harness.ttl))

  /** Lets time pass: TestClock moves, or a real sleep. */
  const advance = (millis: number) =>
    live ? Effect.sleep(Duration.millis(millis)) : TestClock.adjust(Duration.millis(millis))

  /** Retries `check` (which fails while the expectation does not hold) for at most `settle`. */
  const eventually = <A, E, R>(check: Effect.Effect<A, E, R>, within = settle): Effect.Effect<A, E, R> =>
    Effect.gen(function*() {
      const attempts = Math.max(1, Math.ceil(within / step))
      for (let i = 1;; i++) {
        const result = yield* Effect.either(check)
        if (Either.isRight(result)) return result.right
        if (i >= attempts) return yield* Effect.fail(result.left)
        yield* advance(step)
      }
    })

  const expectThat = (condition: boolean, message: string) => condition ? Effect.void : Effect.fail(new Error(message))

  /** Starts a watch collecting into a Ref, and waits until it is live (it reported a probe change). */
  const collect = (reader: Registry.Service, writer: Registry.Service, service: string) =>
    liveWatch(reader, writer, service, { within: settle, pause: advance(step) })

  const test = live ? it.scopedLive : it.scoped
  const timeout = live ? Math.max(20_000, ttlMillis * 4 + settle * 4) : 10_000

  describe(`Registry contract: ${label}`, () => {
    test("register → getService and listServices", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("greeter")
        yield* writer.register(makeService(name, [{ id: `${name}-1`, port: 4001 }]), { ttl: "1 minute" })
        const found = yield* eventually(reader.getService(name))
        expect(found).toHaveLength(1)
        const [service] = found
        expect(service!.name).toBe(name)
        expect(service!.version).toBe("1.0.0")
        expect(service!.metadata).toEqual({ team: "core" })
        expect(service!.endpoints).toEqual([{ name: "Greeter.Hello", metadata: { stream: "false" } }])
        expect(service!.nodes).toEqual([{ id: `${name}-1`, address: "127.0.0.1:4001", metadata: { zone: "a" } }])
        const all = yield* eventually(
          reader.listServices.pipe(
            Effect.filterOrFail((list) => list.some((s) => s.name === name), () => new Error("not listed"))
          )
        )
        expect(all.filter((s) => s.name === name)).toHaveLength(1)
      }), timeout)

    test("several nodes and versions", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("multi")
        yield* writer.register(makeService(name, [{ id: `${name}-a`, port: 4001 }]), { ttl: "1 minute" })
        yield* writer.register(makeService(name, [{ id: `${name}-b`, port: 4002 }]), { ttl: "1 minute" })
        yield* writer.register(makeService(name, [{ id: `${name}-c`, port: 4003 }], "2.0.0"), { ttl: "1 minute" })
        const found = yield* eventually(
          reader.getService(name).pipe(
            Effect.filterOrFail((s) => nodeIds(s).length === 3, (s) => new Error(`nodes: ${nodeIds(s)}`))
          )
        )
        expect(found.map((s) => s.version).sort()).toEqual(["1.0.0", "2.0.0"])
        expect(found.find((s) => s.version === "1.0.0")!.nodes.map((n) => n.id).sort()).toEqual([
          `${name}-a`,
          `${name}-b`
        ])
        expect(found.find((s) => s.version === "2.0.0")!.nodes.map((n) => n.address)).toEqual(["127.0.0.1:4003"])
      }), timeout)

    test("deregister one node keeps the others; the last one removes the service", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("dereg")
        const a = makeService(name, [{ id: `${name}-a`, port: 4001 }])
        const b = makeService(name, [{ id: `${name}-b`, port: 4002 }])
        yield* writer.register(a, { ttl: "1 minute" })
        yield* writer.register(b, { ttl: "1 minute" })
        yield* eventually(
          reader.getService(name).pipe(Effect.filterOrFail((s) => nodeIds(s).length === 2, () => new Error("2 nodes")))
        )
        yield* writer.deregister(a)
        const left = yield* eventually(
          reader.getService(name).pipe(Effect.filterOrFail((s) => nodeIds(s).length === 1, () => new Error("1 node")))
        )
        expect(nodeIds(left)).toEqual([`${name}-b`])
        yield* writer.deregister(b)
        const error = yield* eventually(
          reader.getService(name).pipe(Effect.flip, Effect.mapError(() => new Error("still found")))
        )
        expect(error._tag).toBe("ServiceNotFound")
        const all = yield* reader.listServices
        expect(all.some((s) => s.name === name)).toBe(false)
      }), timeout)

    test("unknown service → ServiceNotFound, deregistering unknown nodes is a no-op", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("missing")
        const error = yield* Effect.flip(reader.getService(name))
        expect(error._tag).toBe("ServiceNotFound")
        if (error._tag === "ServiceNotFound") {
          expect(error.code).toBe(404)
          expect(error.detail).toContain(name)
        }
        yield* writer.deregister(makeService(name, [{ id: `${name}-x`, port: 1 }]))
      }), timeout)

    test("watch sees create, update and delete, only for the watched name", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("watched")
        const other = uniqueName("other")
        const events = yield* collect(reader, writer, name)
        const a = makeService(name, [{ id: `${name}-a`, port: 4001 }])
        const b = makeService(name, [{ id: `${name}-b`, port: 4002 }])
        yield* writer.register(a, { ttl: "1 minute" })
        yield* eventually(Ref.get(events).pipe(Effect.flatMap((e) => expectThat(Chunk.size(e) >= 1, "no create"))))
        yield* writer.register(makeService(other, [{ id: `${other}-a`, port: 4009 }]), { ttl: "1 minute" })
        yield* writer.register(b, { ttl: "1 minute" })
        yield* eventually(
          Ref.get(events).pipe(Effect.flatMap((e) =>
            expectThat(Chunk.some(e, (ev) => ev.type === "update" && ev.service.nodes.length === 2), "no update")
          ))
        )
        yield* writer.deregister(a)
        yield* writer.deregister(b)
        const seen = yield* eventually(
          Ref.get(events).pipe(Effect.flatMap((e) =>
            Chunk.some(e, (ev) =>
                ev.type === "delete")
              ? Effect.succeed(Chunk.toReadonlyArray(e))
              : Effect.fail(new Error("no delete"))
          ))
        )
        expect(seen.every((ev) => ev.service.name === name)).toBe(true)
        expect(seen[0]!.type).toBe("create")
        expect(nodeIds([seen[0]!.service])).toEqual([`${name}-a`])
        const updateAt = seen.findIndex((ev) => ev.type === "update" && ev.service.nodes.length === 2)
        const deleteAt = seen.findIndex((ev) => ev.type === "delete")
        expect(updateAt).toBeGreaterThan(0)
        expect(deleteAt).toBeGreaterThan(updateAt)
        expect(seen[deleteAt]!.service.nodes).toEqual([])
        // a delete is the last thing seen for a service that is gone
        expect(seen.slice(deleteAt + 1).filter((ev) => ev.type !== "delete")).toEqual([])
      }), timeout)

    test(
      "a node's metadata changing is an update (caches hear of it); a renewal with equal metadata is not",
      () =>
        Effect.gen(function*() {
          const { reader, writer } = yield* harness.make
          const name = uniqueName("nodemeta")
          const node = (zone: string) => makeService(name, [{ id: `${name}-a`, port: 4001, metadata: { zone } }])
          yield* writer.register(node("a"), { ttl: "1 minute" })
          const events = yield* collect(reader, writer, name)
          // renewals with equal (not identical) metadata: nothing to report
          yield* writer.register(node("a"), { ttl: "1 minute" })
          yield* writer.register(node("a"), { ttl: "1 minute" })
          // same node, same address, only its metadata changed: caches must hear of it
          yield* writer.register(node("b"), { ttl: "1 minute" })
          const seen = yield* eventually(
            Ref.get(events).pipe(Effect.flatMap((e) =>
              Chunk.some(e, (ev) => ev.type === "update" && ev.service.nodes[0]?.metadata.zone === "b")
                ? Effect.succeed(Chunk.toReadonlyArray(e))
                : Effect.fail(
                  new Error(`no update with the new node metadata; saw ${JSON.stringify(Chunk.toArray(e))}`)
                )
            ))
          )
          expect(seen.filter((ev) =>
            ev.service.nodes[0]?.metadata.zone === "a"
          )).toEqual([])
          const [found] = yield* eventually(
            reader.getService(name).pipe(
              Effect.filterOrFail((s) => s[0]?.nodes[0]?.metadata.zone === "b", () => new Error("stale node metadata"))
            )
          )
          expect(found!.nodes[0]!.metadata).toEqual({ zone: "b" })
        }),
      timeout
    )

    test("a registration expires after its TTL unless renewed; watch sees the delete", () =>
      Effect.gen(function*() {
        const { reader, writer } = yield* harness.make
        const name = uniqueName("ttl")
        const kept = makeService(name, [{ id: `${name}-kept`, port: 4001 }])
        const dropped = makeService(name, [{ id: `${name}-dropped`, port: 4002 }])
        const events = yield* collect(reader, writer, name)
        yield* writer.register(kept, { ttl: harness.ttl })
        yield* writer.register(dropped, { ttl: harness.ttl })
        yield* eventually(
          reader.getService(name).pipe(Effect.filterOrFail((s) => nodeIds(s).length === 2, () => new Error("2 nodes")))
        )
        // renew `kept` twice within its TTL, let `dropped` lapse
        for (let i = 0; i < 3; i++) {
          yield* advance(ttlMillis / 2)
          yield* writer.register(kept, { ttl: harness.ttl })
        }
        const left = yield* eventually(
          reader.getService(name).pipe(
            Effect.filterOrFail((s) => nodeIds(s).length === 1, (s) => new Error(`nodes ${nodeIds(s)}`))
          ),
          ttlMillis + settle
        )
        expect(nodeIds(left)).toEqual([`${name}-kept`])
        // now let `kept` lapse too
        yield* advance(ttlMillis)
        const error = yield* eventually(
          reader.getService(name).pipe(Effect.flip, Effect.mapError(() => new Error("still found"))),
          ttlMillis + settle
        )
        expect(error._tag).toBe("ServiceNotFound")
        const seen = yield* eventually(
          Ref.get(events).pipe(Effect.flatMap((e) =>
            Chunk.some(e, (ev) => ev.type === "delete")
              ? Effect.succeed(Chunk.toReadonlyArray(e))
              : Effect.fail(new Error("no delete"))
          ))
        )
        expect(seen.some((ev) => ev.type === "update" && nodeIds([ev.service]).join() === `${name}-kept`)).toBe(true)
      }), timeout)
  })
}
