import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Ref from "effect/Ref"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { execFileSync } from "node:child_process"
import * as CachedRegistry from "../../src/CachedRegistry.js"
import * as EtcdRegistry from "../../src/plugins/etcd/EtcdRegistry.js"
import { engine, type RunningEngine, startEngine } from "../support/engines.js"
import { eventually } from "../support/eventually.js"
import { liveWatch, makeService, registryContract, uniqueName } from "../support/registryContract.js"

let etcd: RunningEngine
beforeAll(() => {
  etcd = startEngine("etcd")
})
afterAll(() => etcd?.stop())

const make = () => EtcdRegistry.make({ hosts: etcd.address, timeout: "2 seconds" })

registryContract("etcd (two clients)", {
  make: Effect.suspend(() => Effect.all({ writer: make(), reader: make() })),
  clock: "live",
  ttl: "2 seconds",
  settle: "4 seconds"
})

const etcdctl = (...args: Array<string>) =>
  execFileSync("etcdctl", [`--endpoints=${etcd.address}`, ...args], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
    timeout: 10_000
  })

describe("EtcdRegistry", () => {
  it.scopedLive("one key per node under /micro/registry/<service>/<node>, JSON of the single-node service", () =>
    Effect.gen(function*() {
      const registry = yield* make()
      const name = uniqueName("layout")
      const service = makeService(name, [{ id: `${name}-1`, port: 4001 }, { id: `${name}-2`, port: 4002 }])
      yield* registry.register(service, { ttl: "30 seconds" })
      const out = etcdctl("get", "--prefix", `/micro/registry/${name}/`).trim().split("\n")
      expect(out).toHaveLength(4)
      expect(out[0]).toBe(`/micro/registry/${name}/${name}-1`)
      expect(JSON.parse(out[1]!)).toEqual({ ...service, nodes: [service.nodes[0]] })
      expect(out[2]).toBe(`/micro/registry/${name}/${name}-2`)
      const lease = etcdctl("get", `/micro/registry/${name}/${name}-1`, "-w", "json")
      expect(JSON.parse(lease).kvs[0].lease).toBeGreaterThan(0)
    }))

  it.scopedLive("a re-register renews the lease without a watch event", () =>
    Effect.gen(function*() {
      const writer = yield* make()
      const reader = yield* make()
      const name = uniqueName("renew")
      const service = makeService(name, [{ id: `${name}-1`, port: 4001 }])
      const events = yield* liveWatch(reader, writer, name)
      yield* writer.register(service, { ttl: "2 seconds" })
      yield* eventually(Ref.get(events), Chunk.some((e) => e.type === "create"), "4 seconds")
      yield* Ref.set(events, Chunk.empty())
      for (let i = 0; i < 4; i++) {
        yield* Effect.sleep("800 millis")
        yield* writer.register(service, { ttl: "2 seconds" })
      }
      // 3.2 s > TTL: still there thanks to the renewals, and nothing changed for watchers
      expect((yield* reader.getService(name))[0]!.nodes).toHaveLength(1)
      expect(Chunk.toReadonlyArray(yield* Ref.get(events))).toEqual([])
    }))

  it.scopedLive("closing the scope revokes the leases: watchers see the delete at once", () =>
    Effect.gen(function*() {
      const reader = yield* make()
      const scope = yield* Scope.make()
      const writer = yield* make().pipe(Scope.extend(scope))
      const name = uniqueName("revoke")
      yield* writer.register(makeService(name, [{ id: `${name}-1`, port: 4001 }]), { ttl: "60 seconds" })
      const events = yield* liveWatch(reader, writer, name)
      yield* Scope.close(scope, Exit.void)
      yield* eventually(Ref.get(events), Chunk.some((e) => e.type === "delete"), "2 seconds").pipe(
        Effect.mapError(() => new Error("no delete"))
      )
      expect((yield* Effect.flip(reader.getService(name)))._tag).toBe("ServiceNotFound")
    }))

  it.scopedLive("malformed values under the prefix are skipped", () =>
    Effect.gen(function*() {
      const registry = yield* make()
      const name = uniqueName("junk")
      etcdctl("put", `/micro/registry/${name}/bad`, "{not json")
      yield* registry.register(makeService(name, [{ id: `${name}-1`, port: 4001 }]), { ttl: "30 seconds" })
      const [service] = yield* registry.getService(name)
      expect(service!.nodes.map((n) => n.id)).toEqual([`${name}-1`])
    }))

  it.scopedLive("etcd down → RegistryError Unavailable within the timeout, not a hang", () =>
    Effect.gen(function*() {
      // a port nobody listens on
      const registry = yield* EtcdRegistry.make({ hosts: "127.0.0.1:1", timeout: "1 second" })
      const started = Date.now()
      const e1 = yield* Effect.flip(registry.getService("x"))
      expect(e1).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
      const e2 = yield* Effect.flip(registry.register(makeService("x", [{ id: "x1", port: 1 }]), { ttl: "5 seconds" }))
      expect(e2).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
      const e3 = yield* Effect.flip(Stream.runDrain(registry.watch()))
      expect(e3).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
      expect(Date.now() - started).toBeLessThan(8000)
    }), 20_000)

  it.scopedLive(
    "etcd stopped mid-run → RegistryError, and the cached registry keeps serving",
    () =>
      Effect.gen(function*() {
        const own = yield* engine("etcd")
        const registry = yield* EtcdRegistry.make({ hosts: own.address, timeout: "1 second" })
        const cached = yield* CachedRegistry.make(registry, { ttl: "1 millis" })
        const name = uniqueName("down")
        yield* registry.register(makeService(name, [{ id: `${name}-1`, port: 4001 }]), { ttl: "30 seconds" })
        yield* cached.getService(name)
        own.stop()
        const started = Date.now()
        const error = yield* Effect.flip(registry.getService(name))
        expect(error).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
        expect(Date.now() - started).toBeLessThan(5000)
        // stale but served
        const [stale] = yield* cached.getService(name)
        expect(stale!.nodes.map((n) => n.id)).toEqual([`${name}-1`])
        const e2 = yield* Effect.flip(
          registry.register(makeService(name, [{ id: `${name}-1`, port: 4001 }]), { ttl: "30 seconds" })
        )
        expect(e2).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
      }),
    30_000
  )
})
