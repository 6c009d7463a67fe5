/**
 * Discovery and selection at scale, simulated on one machine (one process, run by run.ts with --expose-gc):
 *
 *   node --expose-gc bench/.build/bench/scale.js '<json options>'
 *
 * Sections (each optional, see `ScaleOptions.sections`):
 *   - selection: 1,000 services × 3 nodes and one service of 3,000 nodes in a memory registry behind
 *     `CachedRegistry`; per call, what the client does before dialling (`connectNow` in
 *     src/internal/rpc/client.ts): the cache's synchronous read, then `Selector.select` with the client's node
 *     health, the result read at once when it is an Exit, else run by the fiber. ns/call for a 3-node and a
 *     3,000-node service, per strategy, alternating rounds, median round.
 *   - memory: heap used (after `global.gc()`) with the registry alone, with the cache filled for all 1,000
 *     services, and after `cycles` refresh cycles (every entry stale and refetched, every service renewed, one
 *     node of each of 50 services changed: watch events), to show the cache is bounded.
 *   - etcd: the same 1,000 × 3 registered in etcd through `EtcdRegistry` (register time), then `clients`
 *     separate EtcdRegistry instances (own etcd3 client each, all in this process), each behind its own
 *     `CachedRegistry`; one registration is changed `changes` times and the time from the `register` call until
 *     each client's cache serves the change is recorded (p50/p99/max over all clients × changes).
 *   - mdns: the limits of one packet (max endpoints per registration, nodes per announcement packet) read
 *     from the registry itself on a private loopback port, and what happens beyond.
 *
 * Prints progress lines and `RESULT <json>`; SCALE_TRACE=1 also prints each etcd change's per-client times.
 * Alone: `scripts/engines.sh start etcd`, then
 *   node --expose-gc --import tsx bench/scale.ts '{"sections":["etcd"],"etcd":"127.0.0.1:PORT",...}'
 * with every `ScaleOptions` field (bench/scaleMeasure.ts shows the values the group uses).
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import makeMdns from "multicast-dns"
import { performance } from "node:perf_hooks"
import * as CachedRegistry from "../src/CachedRegistry.js"
import type { Peekable } from "../src/internal/registry/cached.js"
import { peekKey } from "../src/internal/registry/cached.js"
import * as Records from "../src/internal/registry/mdnsRecords.js"
import { NodeHealth } from "../src/internal/rpc/nodeHealth.js"
import * as MdnsRegistry from "../src/MdnsRegistry.js"
import * as EtcdRegistry from "../src/plugins/etcd/EtcdRegistry.js"
import type { Node, Service } from "../src/Registry.js"
import * as Registry from "../src/Registry.js"
import * as Selector from "../src/Selector.js"

export interface ScaleOptions {
  readonly sections: ReadonlyArray<"selection" | "memory" | "etcd" | "mdns">
  /** host:port of etcd (the etcd section is skipped without it). */
  readonly etcd?: string | undefined
  readonly services: number
  readonly nodesPerService: number
  readonly bigNodes: number
  /** selection: time per round and rounds per (strategy, size). */
  readonly roundMs: number
  readonly rounds: number
  /** memory: refresh cycles. */
  readonly cycles: number
  /** etcd: watching clients and changes. */
  readonly clients: number
  readonly changes: number
  readonly registerConcurrency: number
  /** mdns: private UDP port on loopback, and nodes registered at once. */
  readonly mdnsPort: number
  readonly mdnsNodes: number
}

export interface SelectionRow {
  readonly strategy: string
  readonly nodes: number
  /** median round */
  readonly nsPerCall: number
  /** best round (the least disturbed on a shared machine) */
  readonly bestNsPerCall: number
  readonly rounds: ReadonlyArray<number>
}

export interface ScaleResult {
  readonly selection?: ReadonlyArray<SelectionRow>
  readonly memory?: Record<string, number | boolean>
  readonly etcd?: Record<string, number | string | boolean>
  readonly mdns?: Record<string, number | string | boolean>
}

const endpoints = [
  { name: "Hello", metadata: {} },
  { name: "Countdown", metadata: { stream: "server" } },
  { name: "Upload", metadata: { stream: "client" } }
]

const serviceName = (i: number) => `svc-${String(i).padStart(4, "0")}`
const makeNodes = (name: string, count: number, tag = ""): Array<Node> =>
  Array.from({ length: count }, (_, n) => ({
    id: `${name}-${n}`,
    address: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}:${8000 + (n % 1000)}`,
    metadata: tag === "" ? {} : { tag }
  }))
const makeService = (name: string, nodes: ReadonlyArray<Node>): Service => ({
  name,
  version: "1.0.0",
  metadata: { owner: "bench" },
  endpoints,
  nodes
})

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run node with --expose-gc")
  for (let i = 0; i < 3; i++) collect()
}
const heapMb = (): number => {
  gc()
  return process.memoryUsage().heapUsed / 1024 / 1024
}
const log = (line: string) => process.stdout.write(`${line}\n`)
const median = (values: ReadonlyArray<number>) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!

/** 1,000 × 3 (and the big service) registered in a fresh memory registry. */
const filledMemory = (options: ScaleOptions, withBig: boolean) =>
  Effect.gen(function*() {
    const registry = yield* Registry.makeMemory
    for (let i = 0; i < options.services; i++) {
      const name = serviceName(i)
      yield* registry.register(makeService(name, makeNodes(name, options.nodesPerService)))
    }
    if (withBig) yield* registry.register(makeService("big", makeNodes("big", options.bigNodes)))
    return registry
  })

// ---------------------------------------------------------------------------------------------
// selection

/** name, selector, keys: none, 1,024 keys in turn, or a new key on every call */
const strategies: ReadonlyArray<readonly [string, () => Selector.Selector["Type"], "none" | "1024" | "unique"]> = [
  ["random", () => Selector.makeRandom(), "none"],
  ["round-robin", () => Selector.makeRoundRobin(), "none"],
  ["least-outstanding (default)", () => Selector.makeLeastOutstanding(), "none"],
  ["hashed, 1,024 keys in turn", () => Selector.makeHashed(), "1024"],
  ["hashed, a new key every call", () => Selector.makeHashed(), "unique"]
]

const selection = (options: ScaleOptions) =>
  Effect.gen(function*() {
    const memory = yield* filledMemory(options, true)
    const cached = (yield* CachedRegistry.make(memory, { ttl: "1 hour" })) as Registry.Registry["Type"] & Peekable
    for (let i = 0; i < options.services; i++) yield* cached.getService(serviceName(i))
    yield* cached.getService("big")
    const clock = yield* Effect.clock
    const health = new NodeHealth(clock)
    const small = serviceName(Math.floor(options.services / 2))
    const rows: Array<SelectionRow> = []
    let sink = 0
    for (const [strategy, make, keys] of strategies) {
      const selector = make()
      const samples = new Map<string, Array<number>>([[small, []], ["big", []]])
      // What the client does per attempt (connectNow → selectNow): a synchronous cache read, falling back to
      // getService; select; the node read at once when select answered with an Exit.
      const once = (service: string, key: string | undefined): Effect.Effect<Node, unknown> => {
        const versions = cached[peekKey]!(service)
        if (versions === undefined) return Effect.flatMap(cached.getService(service), () => Effect.die("stale"))
        return selector.select({ service, endpoint: "Hello", versions, key, health })
      }
      for (let round = 0; round < options.rounds; round++) {
        for (const service of round % 2 === 0 ? [small, "big"] : ["big", small]) {
          // batches of 1,000 calls until the round's time is up
          let i = 0
          const started = performance.now()
          let elapsed = 0
          while (elapsed < options.roundMs) {
            const end = i + 1000
            yield* Effect.whileLoop({
              while: () => i < end,
              body: () => once(service, keys === "none" ? undefined : keys === "1024" ? `k${i & 1023}` : `u${i}`),
              step: (node) => {
                i++
                sink += node.address.length
              }
            })
            elapsed = performance.now() - started
          }
          samples.get(service)!.push((elapsed * 1e6) / i)
        }
      }
      for (const [service, values] of samples) {
        const row = {
          strategy,
          nodes: service === "big" ? options.bigNodes : options.nodesPerService,
          nsPerCall: median(values),
          bestNsPerCall: Math.min(...values),
          rounds: values.map((v) => Math.round(v))
        }
        rows.push(row)
        log(
          `  selection ${strategy}, ${row.nodes} nodes: ${row.nsPerCall.toFixed(0)} ns/call (${row.rounds.join(", ")})`
        )
      }
    }
    // The empty loop: what the fiber loop itself costs per iteration (in every row above).
    let i = 0
    const n = 100_000
    const loops: Array<number> = []
    for (let round = 0; round < options.rounds; round++) {
      i = 0
      const started = performance.now()
      yield* Effect.whileLoop({ while: () => i < n, body: () => Effect.void, step: () => i++ })
      loops.push(((performance.now() - started) * 1e6) / n)
    }
    rows.push({
      strategy: "(the loop alone)",
      nodes: 0,
      nsPerCall: median(loops),
      bestNsPerCall: Math.min(...loops),
      rounds: loops.map(Math.round)
    })
    if (sink === -1) log("")
    return rows
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// memory

const memory = (options: ScaleOptions) =>
  Effect.gen(function*() {
    const base = heapMb()
    const registry = yield* filledMemory(options, false)
    const registered = heapMb()
    // A short TTL: every lookup of a cycle finds its entry stale and refreshes it in the background.
    const cached = yield* CachedRegistry.make(registry, { ttl: "1 millis" })
    const names = Array.from({ length: options.services }, (_, i) => serviceName(i))
    const lookupAll = Effect.forEach(names, (name) => cached.getService(name), { discard: true })
    yield* lookupAll
    yield* Effect.sleep("20 millis")
    const filled = heapMb()
    const afterCycle: Array<number> = []
    const warmCycle = Math.min(10, Math.max(1, Math.floor(options.cycles / 2)))
    for (let cycle = 0; cycle < options.cycles; cycle++) {
      yield* Effect.sleep("2 millis")
      yield* lookupAll // stale: served, refreshed in the background
      for (let i = 0; i < options.services; i++) {
        const name = names[i]!
        // renewals (no event) for all, a changed node (update event) for 50 services per cycle
        const tag = i % (options.services / 50) === 0 ? `c${cycle}` : ""
        yield* registry.register(makeService(name, makeNodes(name, options.nodesPerService, tag)))
      }
      yield* Effect.sleep("20 millis")
      // cycle 1, a warm cycle (JIT and Effect's per-fiber caches settle over the first ≈ 10), the last
      if (cycle === 0 || cycle === warmCycle - 1 || cycle === options.cycles - 1) afterCycle.push(heapMb())
    }
    const growth = afterCycle.at(-1)! - afterCycle[1]!
    const result = {
      baseMb: base,
      registryMb: registered - base,
      cacheMb: filled - registered,
      afterFirstCycleMb: afterCycle[0]! - registered,
      afterWarmCycleMb: afterCycle[1]! - registered,
      warmCycle,
      afterCyclesMb: afterCycle.at(-1)! - registered,
      growthMb: growth,
      cycles: options.cycles,
      // bounded: the heap after the last cycle is within 0.25 MB of the heap after the warm cycle
      bounded: growth < 0.25
    }
    log(
      `  memory: registry ${result.registryMb.toFixed(2)} MB, cache ${
        result.cacheMb.toFixed(2)
      } MB, after ${options.cycles} cycles ` +
        `${result.afterCyclesMb.toFixed(2)} MB (after cycle ${warmCycle}: ${result.afterWarmCycleMb.toFixed(2)} MB)`
    )
    return result
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// etcd

const etcd = (options: ScaleOptions) =>
  Effect.gen(function*() {
    const hosts = options.etcd!
    const prefix = `/bench-scale-${process.pid}/`
    const registrar = yield* EtcdRegistry.make({ hosts, prefix, ttl: "10 minutes" })
    const names = Array.from({ length: options.services }, (_, i) => serviceName(i))
    const registerStarted = performance.now()
    yield* Effect.forEach(
      names,
      (name) => registrar.register(makeService(name, makeNodes(name, options.nodesPerService))),
      { concurrency: options.registerConcurrency, discard: true }
    )
    const registerMs = performance.now() - registerStarted
    log(`  etcd: registered ${options.services} × ${options.nodesPerService} in ${registerMs.toFixed(0)} ms`)

    const makeClient = Effect.gen(function*() {
      const registry = yield* EtcdRegistry.make({ hosts, prefix })
      return (yield* CachedRegistry.make(registry, { ttl: "1 hour" })) as Registry.Registry["Type"] & Peekable
    })
    // The first client's cache filled with every service: its heap cost (the watch's view of the prefix and
    // the etcd client are counted separately).
    const heapBefore = heapMb()
    const first = yield* makeClient
    yield* Effect.sleep("1 second") // the watch has read the prefix
    const heapWatching = heapMb()
    const fillStarted = performance.now()
    yield* Effect.forEach(names, (name) => first.getService(name), { concurrency: 16, discard: true })
    const fillMs = performance.now() - fillStarted
    const heapFilled = heapMb()
    log(
      `  etcd: client + watch ${(heapWatching - heapBefore).toFixed(2)} MB, cache of ${options.services} services ` +
        `${(heapFilled - heapWatching).toFixed(2)} MB (filled in ${fillMs.toFixed(0)} ms)`
    )

    const clients = [first, ...yield* Effect.forEach(Array.from({ length: options.clients - 1 }), () => makeClient)]
    const target = serviceName(7)
    yield* Effect.forEach(clients, (client) => client.getService(target), { discard: true })
    const targetNodes = makeNodes(target, options.nodesPerService)
    /** Changes node 0's metadata; resolves with the ms from the register call until each client's cache has it. */
    const change = (tag: string) =>
      Effect.gen(function*() {
        const changed = makeService(target, [{ ...targetNodes[0]!, metadata: { tag } }, ...targetNodes.slice(1)])
        const started = performance.now()
        const seen = new Array<number>(clients.length).fill(NaN)
        const registered = yield* Effect.fork(registrar.register(changed))
        yield* Effect.promise(() =>
          new Promise<void>((resolve) => {
            const check = () => {
              const now = performance.now()
              let missing = 0
              for (let c = 0; c < clients.length; c++) {
                if (!Number.isNaN(seen[c]!)) continue
                const versions = clients[c]![peekKey]!(target)
                if (versions?.some((v) => v.nodes.some((n) => n.metadata.tag === tag))) seen[c] = now - started
                else missing++
              }
              if (missing === 0 || now - started > 5000) resolve()
              else setImmediate(check)
            }
            check()
          })
        )
        yield* registered.await
        if (process.env.SCALE_TRACE === "1") log(`    change ${tag}: ${seen.map((ms) => ms.toFixed(1)).join(" ")}`)
        return seen
      })
    // warm-up changes (watches connected, code paths compiled): not recorded
    for (let w = 0; w < 3; w++) yield* change(`warm${w}`)
    const samples: Array<number> = []
    const perChangeMax: Array<number> = []
    let missed = 0
    for (let k = 0; k < options.changes; k++) {
      const seen = yield* change(`c${k}`)
      for (const ms of seen) {
        if (Number.isNaN(ms)) missed++
        else samples.push(ms)
      }
      perChangeMax.push(Math.max(...seen.filter((ms) => !Number.isNaN(ms))))
      yield* Effect.sleep("20 millis")
    }
    samples.sort((a, b) => a - b)
    perChangeMax.sort((a, b) => a - b)
    const result = {
      registerMs,
      registerConcurrency: options.registerConcurrency,
      nodesPerSecond: (options.services * options.nodesPerService) / (registerMs / 1000),
      clientWatchMb: heapWatching - heapBefore,
      cacheMb: heapFilled - heapWatching,
      cacheFillMs: fillMs,
      clients: options.clients,
      changes: options.changes,
      samples: samples.length,
      missed,
      p50Ms: percentile(samples, 50),
      p99Ms: percentile(samples, 99),
      maxMs: samples.at(-1) ?? NaN,
      allClientsP50Ms: percentile(perChangeMax, 50),
      allClientsP99Ms: percentile(perChangeMax, 99)
    }
    log(
      `  etcd: propagation to ${options.clients} clients over ${options.changes} changes: p50 ${
        result.p50Ms.toFixed(1)
      } ms, p99 ${result.p99Ms.toFixed(1)} ms, max ${result.maxMs.toFixed(1)} ms, missed ${missed}`
    )
    return result
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------
// mdns

const mdns = (options: ScaleOptions) =>
  Effect.gen(function*() {
    const socket = { ...MdnsRegistry.loopback, port: options.mdnsPort }
    const registry = yield* MdnsRegistry.make(socket)
    const single = (name: string, endpointCount: number): Service => ({
      name,
      version: "1.0.0",
      metadata: {},
      endpoints: Array.from({ length: endpointCount }, (_, i) => ({
        name: `Endpoint${String(i).padStart(4, "0")}`,
        metadata: {}
      })),
      nodes: [{ id: `${name}-0`, address: "127.0.0.1:4000", metadata: {} }]
    })
    // Largest endpoint count one registration accepts (binary search on the registry's own check).
    let low = 0
    let high = 4096
    let probe = 0
    let failure = ""
    while (low < high) {
      const mid = Math.ceil((low + high) / 2)
      const service = single(`limit${probe++}`, mid)
      const exit = yield* Effect.exit(registry.register(service, { ttl: "30 seconds" }))
      if (Exit.isSuccess(exit)) {
        low = mid
        yield* registry.deregister(service)
      } else {
        high = mid - 1
        failure = String(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : exit)
      }
    }
    const maxEndpoints = low
    // Bytes of one node's records (PTR ×2, SRV, TXT, A), as the registry sizes packets.
    const nodeBytes = (service: Service) => {
      const hostPort = Records.parseAddress(service.nodes[0]!.address)!
      return Records.packetSize({
        answers: Records.allRecords(Records.instanceRecords(Records.names("micro"), service, hostPort, 60))
      }) - 12
    }
    const minimalBytes = nodeBytes({ ...single("svc-0000", 0), metadata: {} })
    const typicalBytes = nodeBytes({ ...single("svc-0000", 0), metadata: { owner: "bench" }, endpoints })
    log(`  mdns: max endpoints per registration ${maxEndpoints}; beyond: ${failure}`)

    // One registration of many nodes: how the announcement is packed, and who receives it.
    const received: Array<{ bytes: number; instances: number }> = []
    const listener = makeMdns({ ...socket })
    yield* Effect.addFinalizer(() => Effect.sync(() => listener.destroy()))
    listener.on(
      "packet",
      (packet: { type: string; answers?: Array<{ type: string; name: string }> }, _rinfo: unknown) => {
        if (packet.type !== "response") return
        const instances = (packet.answers ?? []).filter((a) => a.type === "SRV" && a.name.startsWith("many-")).length
        if (instances > 0) received.push({ bytes: 0, instances })
      }
    )
    const observer = yield* MdnsRegistry.make(socket)
    yield* Effect.sleep("300 millis")
    const count = options.mdnsNodes
    const many: Service = {
      ...single("many", 3),
      nodes: Array.from({ length: count }, (_, i) => ({
        id: `many-${i}`,
        address: `127.0.0.${1 + (i % 200)}:${5000 + i}`,
        metadata: {}
      }))
    }
    const announced = performance.now()
    yield* registry.register(many, { ttl: "60 seconds" })
    const sendMs = performance.now() - announced
    yield* Effect.sleep("1500 millis")
    const seenByObserver = (yield* Effect.either(observer.getService("many"))).pipe((e) =>
      e._tag === "Right" ? e.right.reduce((sum, s) => sum + s.nodes.length, 0) : 0
    )
    const packets = received.length
    const perPacket = received.reduce((max, r) => Math.max(max, r.instances), 0)
    const instancesReceived = received.reduce((sum, r) => sum + r.instances, 0)
    // A registry that starts now learns the nodes from the answers to its start-up browse query.
    const late = yield* MdnsRegistry.make(socket)
    yield* Effect.sleep("1500 millis")
    const seenByLate = (yield* Effect.either(late.getService("many"))).pipe((e) =>
      e._tag === "Right" ? e.right.reduce((sum, s) => sum + s.nodes.length, 0) : 0
    )
    const result = {
      maxEndpoints,
      minimalNodeBytes: minimalBytes,
      typicalNodeBytes: typicalBytes,
      beyondEndpoints: failure,
      nodesRegistered: count,
      registerMs: sendMs,
      packetsSeenByListener: packets,
      nodesPerPacketMax: perPacket,
      instancesSeenByListener: instancesReceived,
      seenByObserver,
      seenByLateStarter: seenByLate
    }
    log(
      `  mdns: ${count} nodes in one register (${sendMs.toFixed(0)} ms): listener got ${packets} packets, ` +
        `≤ ${perPacket} nodes each, ${instancesReceived} instances; a running registry sees ${seenByObserver}, ` +
        `one started after sees ${seenByLate}`
    )
    return result
  }).pipe(Effect.scoped)

// ---------------------------------------------------------------------------------------------

const main = async () => {
  const options = JSON.parse(process.argv[2] ?? "{}") as ScaleOptions
  const result: {
    -readonly [K in keyof ScaleResult]: ScaleResult[K]
  } = {}
  const has = (section: ScaleOptions["sections"][number]) => options.sections.includes(section)
  if (has("selection")) result.selection = await Effect.runPromise(selection(options))
  if (has("memory")) result.memory = await Effect.runPromise(memory(options))
  if (has("etcd") && options.etcd !== undefined) result.etcd = await Effect.runPromise(etcd(options))
  if (has("mdns")) result.mdns = await Effect.runPromise(mdns(options))
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

void main().then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
