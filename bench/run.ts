/**
 * `npm run bench`: every comparison the project tracks, side by side in one run, each group in fresh
 * processes on 127.0.0.1:
 *
 *   rpc     unary echo: raw node:net, Moleculer (TCP), @effect/rpc (TCP, msgpack), effect-micro (JSON, msgpack,
 *           protobuf) at each in-flight count — req/s, p50/p99, server CPU µs/req (/proc), server peak RSS,
 *           ratios to raw net and to Moleculer;
 *   gateway unary echo over HTTP through effect-micro's Gateway vs moleculer-web, and vs calling the service
 *           directly (the service in a child of the gateway process; the gateway's CPU µs/req, req/s, latency);
 *   stream  messages echoed on one bidi stream: effect-micro vs grpc-js — msgs/s, latency, server CPU µs/msg;
 *   grpc    unary and bidi over effect-micro's gRPC layer vs grpc-js + proto-loader (same .proto, same payload)
 *           and vs effect-micro's native protocol (protobuf) — not in the default groups: BENCH_GROUPS=grpc;
 *   large   64 KiB and 1 MiB messages echoed (raw bytes, JSON of a string), unary and bidi: effect-micro vs raw
 *           node:net vs grpc-js — MB/s, CPU per MB, peak RSS; not in the default groups: BENCH_GROUPS=large;
 *   codec   encode+decode ops/s of a 10-field message: our protobuf vs protobufjs vs our JSON/msgpack codecs;
 *   store   writes/s and reads/s of each Store layer next to the raw driver (engines started and stopped here);
 *   pubsub  events/s delivered to a subscriber in another process: effect-micro HTTP broker (with results and
 *           fire-and-forget), effect-micro NATS broker, Moleculer events (TCP, NATS), raw NATS client, and the
 *           bare HTTP exchange a delivery result costs (undici → node:http, 64 and 1 publishers);
 *           nats-server started and stopped here;
 *   idle    RSS of each server process after start-up, no load.
 *   startup process start → serving: spawn to READY of a greeter service (barrel imports, mdns on loopback,
 *           registered) against a Moleculer broker with one service, alternating, BENCH_STARTUP_RUNS each.
 *   scale   discovery and selection at scale, one process (bench/scale.ts): selection ns/call at 3 vs 3,000 nodes,
 *           cached-registry heap, 1,000 × 3 in etcd (register time, watch propagation to 10 clients), mdns packet
 *           limits — not in the default groups: BENCH_GROUPS=scale (etcd started and stopped here).
 *
 * Environment (all optional):
 *   BENCH_GROUPS             comma-separated groups (default "rpc,stream,codec,store,pubsub,idle")
 *   BENCH_WARMUP_MS          rpc/stream warm-up per measurement (default 2000)
 *   BENCH_WINDOW_MS          rpc/stream measured window (default 5000)
 *   BENCH_INFLIGHT           rpc in-flight counts (default "64,1")
 *   BENCH_STREAM_INFLIGHT    stream messages in flight (default "64")
 *   BENCH_GATEWAY_INFLIGHT   gateway: HTTP requests in flight, one keep-alive connection each (default "64")
 *   BENCH_GRPC_INFLIGHT      grpc group: calls (unary) or messages (bidi) in flight (default "64")
 *   BENCH_LARGE_SIZES        large group: payload sizes (default "64k,1m")
 *   BENCH_LARGE_INFLIGHT     large group: calls/messages in flight for every size (default 8 for 64k, 2 for 1m)
 *   BENCH_LARGE_WARMUP_MS    large group warm-up per measurement (default 1000); BENCH_LARGE_WINDOW_MS (default 3000)
 *   BENCH_SCENARIOS          rpc/stream/grpc/large scenario names (default: all but the optional diagnostics)
 *   BENCH_CODEC_ROUND_MS     codec: time per codec per round (default 100); BENCH_CODEC_ROUNDS (default 15)
 *   BENCH_STORE_MS           store: time per implementation per cell (default 2000, split over 4 rounds)
 *   BENCH_STORE_BACKENDS     store backends (default "memory,sqlite,redis,postgres")
 *   BENCH_STORE_CONCURRENCY  store: operations in flight per cell (default "1")
 *   BENCH_SQLITE_SYNC        store: SQLite `synchronous` for both sides (default NORMAL; the layer's default is FULL)
 *   BENCH_PUBSUB_WARMUP_MS   pubsub warm-up per scenario (default 1500); BENCH_PUBSUB_WINDOW_MS window (default 4000)
 *   BENCH_PUBSUB_SCENARIOS   pubsub scenario names (default all)
 *   BENCH_PUBSUB_INFLIGHT    pubsub: publishes in flight when waiting for results (default 1000)
 *   BENCH_PUBSUB_MAX_LAG     pubsub: fire-and-forget publishers stay at most this many events ahead (default 20000)
 *   BENCH_PUBSUB_SUBSCRIBER_NODE_ARGS / BENCH_PUBSUB_PUBLISHER_NODE_ARGS   extra node flags (profiling)
 *   BENCH_SCALE_SECTIONS     scale: sections (default "selection,memory,etcd,mdns")
 *   BENCH_SCALE_ROUND_MS     scale: time per selection round (default 100); BENCH_SCALE_ROUNDS (default 9)
 *   BENCH_SCALE_CYCLES       scale: cache refresh cycles for the memory check (default 20)
 *   BENCH_SCALE_CLIENTS      scale: etcd watching clients (default 10); BENCH_SCALE_CHANGES changes (default 60)
 *   BENCH_SCALE_MDNS_NODES   scale: nodes in the one big mdns registration (default 1000)
 *   BENCH_IDLE_MS            idle: settle time after READY before sampling RSS (default 2000)
 *   BENCH_STARTUP_RUNS       startup: starts per implementation (default 7)
 *   BENCH_SERVER_NODE_ARGS   extra node flags for rpc/stream server processes, e.g. "--cpu-prof --cpu-prof-dir=bench/profiles"
 *   BENCH_CLIENT_NODE_ARGS   the same for the load-generator (client) processes
 *   BENCH_CHILD_LOG=prefix   append each child's stdout to <prefix>-<pid>.log (e.g. with "--trace-gc-nvp" above)
 *   BENCH_PIN=0              do not pin rpc/stream servers to CPU 0 and load generators to CPU 1 (taskset)
 *   BENCH_SAVE=0             do not write bench/results/<timestamp>.json
 *   BENCH_TSX=1              run the child processes with `node --import tsx` instead of transpiling first
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { Child, Engine, Launcher } from "./children.js"
import { benchDir, killAll, prepare, root, runForResult, startEngine, startNode, stop } from "./children.js"
import type { CodecRow } from "./codec.js"
import type { LoadResult } from "./loadgen.js"
import { payloadJsonBytes } from "./payload.js"
import { clkTck, cpuTicks, statusKib } from "./proc.js"
import type { PubsubRow } from "./pubsub/measure.js"
import { pubsubSummary, pubsubTable, runPubsub } from "./pubsub/measure.js"
import type { IdleRow, Measurement, StartupRow, StoreCellFailure } from "./report.js"
import { largeSummary, largeTable } from "./report.js"
import {
  codecTable,
  gatewayTable,
  grpcSummary,
  grpcTable,
  idleTable,
  rpcTable,
  startupTable,
  storeTable,
  streamTable,
  summary
} from "./report.js"
import { runScale, scaleSummary, scaleTable } from "./scaleMeasure.js"
import type { Scenario } from "./scenarios.js"
import { scenarios } from "./scenarios.js"
import type { StoreRow } from "./store.js"

const hasTaskset = (): boolean => {
  try {
    execFileSync("taskset", ["-c", "0", "true"], { stdio: "ignore" })
    return true
  } catch {
    return false
  }
}

const numberEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return process.env[name] !== undefined && Number.isFinite(value) && value > 0 ? value : fallback
}
const listEnv = (name: string, fallback: string): Array<string> =>
  (process.env[name] ?? fallback).split(",").map((s) => s.trim()).filter((s) => s !== "")
const countsEnv = (name: string, fallback: string): Array<number> =>
  listEnv(name, fallback).map(Number).filter((n) => Number.isInteger(n) && n > 0)

const allGroups = [
  "rpc",
  "stream",
  "gateway",
  "codec",
  "store",
  "pubsub",
  "idle",
  "startup",
  "grpc",
  "scale",
  "large"
] as const
/**
 * Run when BENCH_GROUPS is not set. Opt-in: grpc (it repeats rpc/stream measurements over another protocol),
 * scale (discovery limits, not a comparison) and large (≈75 s of bulk transfers, a question of its own).
 */
const defaultGroups = allGroups.filter((group) => group !== "grpc" && group !== "scale" && group !== "large")
type Group = typeof allGroups[number]

const config = {
  groups: listEnv("BENCH_GROUPS", defaultGroups.join(",")) as Array<Group>,
  warmupMs: numberEnv("BENCH_WARMUP_MS", 2000),
  windowMs: numberEnv("BENCH_WINDOW_MS", 5000),
  inflight: countsEnv("BENCH_INFLIGHT", "64,1"),
  streamInflight: countsEnv("BENCH_STREAM_INFLIGHT", "64"),
  gatewayInflight: countsEnv("BENCH_GATEWAY_INFLIGHT", "64"),
  grpcInflight: countsEnv("BENCH_GRPC_INFLIGHT", "64"),
  large: {
    sizes: listEnv("BENCH_LARGE_SIZES", "64k,1m"),
    inflight: countsEnv("BENCH_LARGE_INFLIGHT", "")[0],
    warmupMs: numberEnv("BENCH_LARGE_WARMUP_MS", 1000),
    windowMs: numberEnv("BENCH_LARGE_WINDOW_MS", 3000)
  },
  scenarios: process.env.BENCH_SCENARIOS === undefined ? undefined : listEnv("BENCH_SCENARIOS", ""),
  codecRoundMs: numberEnv("BENCH_CODEC_ROUND_MS", 100),
  codecRounds: numberEnv("BENCH_CODEC_ROUNDS", 15),
  storeMs: numberEnv("BENCH_STORE_MS", 2000),
  storeBackends: listEnv("BENCH_STORE_BACKENDS", "memory,sqlite,redis,postgres"),
  storeConcurrency: countsEnv("BENCH_STORE_CONCURRENCY", "1"),
  sqliteSynchronous: process.env.BENCH_SQLITE_SYNC === "FULL" ? "FULL" as const : "NORMAL" as const,
  idleMs: numberEnv("BENCH_IDLE_MS", 2000),
  scale: {
    sections: listEnv("BENCH_SCALE_SECTIONS", "selection,memory,etcd,mdns"),
    roundMs: numberEnv("BENCH_SCALE_ROUND_MS", 100),
    rounds: numberEnv("BENCH_SCALE_ROUNDS", 9),
    cycles: numberEnv("BENCH_SCALE_CYCLES", 20),
    clients: numberEnv("BENCH_SCALE_CLIENTS", 10),
    changes: numberEnv("BENCH_SCALE_CHANGES", 60),
    mdnsNodes: numberEnv("BENCH_SCALE_MDNS_NODES", 1000)
  },
  startupRuns: numberEnv("BENCH_STARTUP_RUNS", 7),
  pubsub: {
    warmupMs: numberEnv("BENCH_PUBSUB_WARMUP_MS", 1500),
    windowMs: numberEnv("BENCH_PUBSUB_WINDOW_MS", 4000),
    inflight: numberEnv("BENCH_PUBSUB_INFLIGHT", 1000),
    maxLag: numberEnv("BENCH_PUBSUB_MAX_LAG", 20_000),
    burst: 256,
    scenarios: process.env.BENCH_PUBSUB_SCENARIOS === undefined ? undefined : listEnv("BENCH_PUBSUB_SCENARIOS", ""),
    subscriberNodeArgs: (process.env.BENCH_PUBSUB_SUBSCRIBER_NODE_ARGS ?? "").split(" ").filter((s) => s !== ""),
    publisherNodeArgs: (process.env.BENCH_PUBSUB_PUBLISHER_NODE_ARGS ?? "").split(" ").filter((s) => s !== "")
  },
  serverNodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((s) => s !== ""),
  clientNodeArgs: (process.env.BENCH_CLIENT_NODE_ARGS ?? "").split(" ").filter((s) => s !== ""),
  // rpc/stream: server on CPU 0, load generator on CPU 1. Unpinned, the scheduler sometimes puts both on one
  // core and sometimes not, and at 1 call in flight that alone halves or doubles req/s between runs.
  pin: process.env.BENCH_PIN !== "0" && os.cpus().length >= 2 && hasTaskset(),
  save: process.env.BENCH_SAVE !== "0",
  tsx: process.env.BENCH_TSX === "1"
}
for (const group of config.groups) {
  if (!allGroups.includes(group)) {
    throw new Error(`unknown group "${group}" in BENCH_GROUPS (known: ${allGroups.join(", ")})`)
  }
}

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "—"

// ---------------------------------------------------------------------------------------------
// rpc and stream: one measurement = fresh server + load-generator process

const failedMeasurement = (scenario: Scenario, inflight: number, failure: string): Measurement => ({
  scenario: scenario.name,
  group: scenario.group,
  inflight,
  reqPerSec: NaN,
  completed: 0,
  errors: 0,
  latencyUs: { p50: NaN, p90: NaN, p99: NaN, max: NaN },
  serverCpuUsPerReq: NaN,
  clientCpuUsPerReq: NaN,
  serverPeakRssMb: NaN,
  clientPeakRssMb: NaN,
  failure
})

const measure = async (
  launcher: Launcher,
  scenario: Scenario,
  inflight: number,
  timing: { readonly warmupMs: number; readonly windowMs: number } = config
): Promise<Measurement> => {
  const [script, ...scriptArgs] = scenario.server
  const server = startNode(
    [...config.serverNodeArgs, ...launcher.args(script!, scenario.bundled), ...scriptArgs],
    config.pin ? 0 : undefined
  )
  let client: Child | undefined
  try {
    const ready = await server.waitLine("READY ", 30_000)
    const address = ready.slice("READY ".length).trim()
    client = startNode([
      ...config.clientNodeArgs,
      ...launcher.args("bench/loadgen.ts"),
      scenario.name,
      address,
      String(inflight),
      String(timing.warmupMs),
      String(timing.windowMs)
    ], config.pin ? 1 : undefined)
    await client.waitLine("WINDOW_START", timing.warmupMs + timing.windowMs + 30_000)
    const server0 = cpuTicks(server.pid)
    const client0 = cpuTicks(client.pid)
    await client.waitLine("WINDOW_END", timing.windowMs + 10_000)
    const server1 = cpuTicks(server.pid)
    const client1 = cpuTicks(client.pid)
    const resultLine = await client.waitLine("RESULT ", 30_000)
    const serverPeakKib = statusKib(server.pid, "VmHWM")
    let clientPeakKib = NaN
    try {
      clientPeakKib = statusKib(client.pid, "VmHWM")
    } catch {
      // already gone
    }
    const result = JSON.parse(resultLine.slice("RESULT ".length)) as LoadResult
    const usPerTick = 1e6 / clkTck()
    const perReq = (ticks: number) => result.completed === 0 ? NaN : (ticks * usPerTick) / result.completed
    await client.exited
    return {
      scenario: scenario.name,
      group: scenario.group,
      inflight,
      reqPerSec: result.reqPerSec,
      completed: result.completed,
      errors: result.errors,
      firstError: result.firstError,
      latencyUs: result.latencyUs,
      serverCpuUsPerReq: perReq(server1 - server0),
      clientCpuUsPerReq: perReq(client1 - client0),
      serverPeakRssMb: serverPeakKib / 1024,
      clientPeakRssMb: clientPeakKib / 1024
    }
  } catch (error) {
    const detail = [
      String(error instanceof Error ? error.message : error),
      server.stderrTail() && `server stderr: ${server.stderrTail()}`,
      client?.stderrTail() && `client stderr: ${client.stderrTail()}`
    ].filter(Boolean).join("\n")
    return failedMeasurement(scenario, inflight, detail)
  } finally {
    if (client !== undefined) await stop(client, 3000)
    await stop(server)
  }
}

const runLoad = async (
  launcher: Launcher,
  group: "rpc" | "stream" | "gateway" | "grpc" | "large",
  inflights: ReadonlyArray<number>
): Promise<Array<Measurement>> => {
  const selected = scenarios.filter((s) =>
    s.group === group && (config.scenarios === undefined ? s.optional !== true : config.scenarios.includes(s.name)) &&
    (s.large === undefined || config.large.sizes.includes(s.large.size))
  )
  const rows: Array<Measurement> = []
  if (selected.length === 0) return rows
  console.log(
    `[${group}] ${selected.map((s) => s.name).join(", ")} × in-flight ${
      group === "large" ? config.large.inflight ?? "8 (64k), 2 (1m)" : inflights.join(", ")
    }`
  )
  for (const scenario of selected) {
    // The large group: one in-flight count per scenario (its size's), its own shorter warm-up and window.
    const counts = scenario.large !== undefined ? [config.large.inflight ?? scenario.large.inflight] : inflights
    for (const inflight of counts) {
      const row = await measure(launcher, scenario, inflight, scenario.large !== undefined ? config.large : config)
      rows.push(row)
      console.log(
        row.failure !== undefined
          ? `  ${scenario.name} @${inflight}: FAILED\n    ${row.failure.replace(/\n/g, "\n    ")}`
          : `  ${scenario.name} @${inflight}: ${fmt(row.reqPerSec)} ${group === "stream" ? "msgs" : "req"}/s${
            scenario.large !== undefined ? ` (${fmt((row.reqPerSec * scenario.large.bytes) / 2 ** 20, 1)} MiB/s)` : ""
          }, ` +
            `p50 ${fmt(row.latencyUs.p50)} µs, p99 ${fmt(row.latencyUs.p99)} µs, server ${
              fmt(row.serverCpuUsPerReq, 1)
            } µs/op, ` +
            `RSS ${fmt(row.serverPeakRssMb, 1)} MB (client ${fmt(row.clientPeakRssMb, 1)} MB)${
              row.errors > 0 ? `, ${row.errors} errors: ${row.firstError}` : ""
            }`
      )
    }
  }
  // Order by in-flight count so each block reads top to bottom.
  return group === "large" ? rows : inflights.flatMap((n) => rows.filter((r) => r.inflight === n))
}

// ---------------------------------------------------------------------------------------------
// idle: every distinct server once, all started together, RSS sampled after they settle

const runIdle = async (launcher: Launcher): Promise<Array<IdleRow>> => {
  const servers = new Map<
    string,
    { readonly args: ReadonlyArray<string>; readonly bundled: boolean; readonly scenarios: Array<string> }
  >()
  for (const scenario of scenarios) {
    // Gateway servers start a second process (the service behind them): not comparable here; the large group's
    // servers are opt-in variants.
    if (scenario.optional === true || scenario.group === "gateway" || scenario.group === "large") continue
    const key = scenario.server.join(" ") + (scenario.bundled === true ? " (bundled)" : "")
    const entry = servers.get(key) ?? { args: scenario.server, bundled: scenario.bundled === true, scenarios: [] }
    entry.scenarios.push(scenario.name)
    servers.set(key, entry)
  }
  console.log(`[idle] ${servers.size} servers, RSS ${config.idleMs} ms after READY`)
  const started = [...servers.entries()].map(([key, entry]) => {
    const [script, ...args] = entry.args
    return { key, entry, child: startNode([...launcher.args(script!, entry.bundled), ...args]) }
  })
  try {
    const rows = await Promise.all(started.map(async ({ child, entry, key }): Promise<IdleRow> => {
      try {
        await child.waitLine("READY ", 30_000)
        await new Promise((resolve) => setTimeout(resolve, config.idleMs))
        return {
          server: key,
          scenarios: entry.scenarios,
          idleRssMb: statusKib(child.pid, "VmRSS") / 1024,
          peakRssMb: statusKib(child.pid, "VmHWM") / 1024
        }
      } catch (error) {
        return {
          server: key,
          scenarios: entry.scenarios,
          idleRssMb: NaN,
          peakRssMb: NaN,
          failure: `${error instanceof Error ? error.message : error} ${child.stderrTail()}`
        }
      }
    }))
    for (const row of rows) {
      console.log(`  ${row.server}: ${fmt(row.idleRssMb, 1)} MB${row.failure ? ` FAILED ${row.failure}` : ""}`)
    }
    return rows
  } finally {
    await Promise.all(started.map(({ child }) => stop(child)))
  }
}

// ---------------------------------------------------------------------------------------------
// startup: spawn → READY, one process at a time, implementations alternating

const startupServers = [
  { name: "effect-micro greeter (Defaults.layerLoopback)", args: ["bench/servers/greeter.ts"], bundled: false },
  { name: "effect-micro greeter, bundled", args: ["bench/servers/greeter.ts"], bundled: true },
  { name: "moleculer (TCP transporter)", args: ["bench/servers/moleculer.ts"], bundled: false }
] as const

const runStartup = async (launcher: Launcher): Promise<Array<StartupRow>> => {
  console.log(`[startup] ${startupServers.length} servers × ${config.startupRuns} starts, alternating`)
  const samples = startupServers.map(() => ({
    millis: [] as Array<number>,
    rssMb: [] as Array<number>,
    failure: undefined as string | undefined
  }))
  for (let run = 0; run < config.startupRuns; run++) {
    for (const [i, server] of startupServers.entries()) {
      const [script, ...args] = server.args
      // Bundling happens on first use: not inside the timed start.
      const nodeArgs = launcher.args(script!, server.bundled)
      const started = performance.now()
      const child = startNode([...nodeArgs, ...args])
      try {
        await child.waitLine("READY ", 30_000)
        samples[i]!.millis.push(performance.now() - started)
        samples[i]!.rssMb.push(statusKib(child.pid, "VmRSS") / 1024)
      } catch (error) {
        samples[i]!.failure = `${error instanceof Error ? error.message : error} ${child.stderrTail()}`
      } finally {
        await stop(child)
      }
    }
  }
  const rows = startupServers.map((server, i): StartupRow => {
    const sorted = [...samples[i]!.millis].sort((a, b) => a - b)
    return {
      server: server.name,
      runs: sorted.length,
      medianMillis: sorted[Math.floor(sorted.length / 2)] ?? NaN,
      minMillis: sorted[0] ?? NaN,
      maxMillis: sorted.at(-1) ?? NaN,
      rssMb: [...samples[i]!.rssMb].sort((a, b) => a - b)[Math.floor(samples[i]!.rssMb.length / 2)] ?? NaN,
      failure: samples[i]!.failure
    }
  })
  for (const row of rows) {
    console.log(
      `  ${row.server}: median ${fmt(row.medianMillis)} ms (${fmt(row.minMillis)}–${fmt(row.maxMillis)}), RSS ${
        fmt(row.rssMb, 1)
      } MB${row.failure ? ` FAILED ${row.failure}` : ""}`
    )
  }
  return rows
}

// ---------------------------------------------------------------------------------------------
// codec: one process, interleaved rounds

const runCodec = async (launcher: Launcher): Promise<{ rows: Array<CodecRow>; failure?: string }> => {
  console.log(`[codec] ${config.codecRounds} rounds × ${config.codecRoundMs} ms per codec`)
  try {
    const result = await runForResult<{ rows: Array<CodecRow> }>(
      launcher,
      "bench/codec.ts",
      [String(config.codecRoundMs), String(config.codecRounds)],
      config.codecRoundMs * config.codecRounds * 10 + 60_000
    )
    for (const row of result.rows) console.log(`  ${row.codec}: ${fmt(row.opsPerSec)} encode+decode/s, ${row.bytes} B`)
    return { rows: result.rows }
  } catch (error) {
    const failure = error instanceof Error ? error.message : String(error)
    console.log(`  FAILED ${failure}`)
    return { rows: [], failure }
  }
}

// ---------------------------------------------------------------------------------------------
// store: one process per backend; redis and postgres started here and always stopped

const runStore = async (launcher: Launcher): Promise<{ rows: Array<StoreRow>; failures: Array<StoreCellFailure> }> => {
  console.log(
    `[store] ${config.storeBackends.join(", ")}; ${config.storeMs} ms per implementation per cell, ` +
      `concurrency ${config.storeConcurrency.join(", ")}, SQLite synchronous=${config.sqliteSynchronous}`
  )
  const rows: Array<StoreRow> = []
  const failures: Array<StoreCellFailure> = []
  for (const backend of config.storeBackends) {
    let engine: Engine | undefined
    let dir: string | undefined
    try {
      if (backend === "redis" || backend === "postgres") engine = startEngine(backend)
      if (backend === "sqlite") dir = mkdtempSync(path.join(os.tmpdir(), "effect-micro-bench-sqlite-"))
      const options = {
        address: engine?.address,
        dir,
        cellMs: config.storeMs,
        rounds: 4,
        concurrency: config.storeConcurrency,
        sqliteSynchronous: config.sqliteSynchronous
      }
      const cells = 2 * 3 * config.storeConcurrency.length
      const result = await runForResult<Array<StoreRow>>(
        launcher,
        "bench/store.ts",
        [backend, JSON.stringify(options)],
        cells * (config.storeMs + 1000) + 60_000
      )
      for (const row of result) rows.push(row)
      for (const row of result) {
        console.log(
          `  ${backend} ${row.op} c=${row.concurrency} ${row.impl}: ${fmt(row.opsPerSec)} ops/s` +
            (row.errors > 0 ? `, ${row.errors} errors: ${row.firstError}` : "")
        )
      }
    } catch (error) {
      const failure = error instanceof Error ? error.message : String(error)
      failures.push({ backend, failure })
      console.log(`  ${backend}: FAILED ${failure}`)
    } finally {
      try {
        engine?.stop()
      } catch (error) {
        console.log(`  ${backend}: stopping the engine failed: ${error}`)
      }
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
    }
  }
  return { rows, failures }
}

// ---------------------------------------------------------------------------------------------

const gitCommit = (): string | undefined => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
}

const main = async () => {
  const startedAt = new Date()
  const launcher = await prepare(config.tsx)
  const loadBefore = os.loadavg()
  console.log(
    `effect-micro bench: groups ${
      config.groups.join(", ")
    }; warm-up ${config.warmupMs} ms, window ${config.windowMs} ms, ` +
      `payload ${payloadJsonBytes} B JSON; ${os.cpus().length} CPUs, load ${
        loadBefore.map((l) => l.toFixed(2)).join(" ")
      }; ` +
      `children: ${launcher.mode}; rpc/stream processes ${
        config.pin ? "pinned (server CPU 0, client CPU 1)" : "not pinned"
      }`
  )
  const has = (group: Group) => config.groups.includes(group)
  const rpc = has("rpc") ? await runLoad(launcher, "rpc", config.inflight) : []
  const stream = has("stream") ? await runLoad(launcher, "stream", config.streamInflight) : []
  const gateway = has("gateway") ? await runLoad(launcher, "gateway", config.gatewayInflight) : []
  const grpcRows = has("grpc") ? await runLoad(launcher, "grpc", config.grpcInflight) : []
  const largeRows = has("large") ? await runLoad(launcher, "large", []) : []
  const idle = has("idle") ? await runIdle(launcher) : []
  const startup = has("startup") ? await runStartup(launcher) : []
  const codec = has("codec") ? await runCodec(launcher) : undefined
  const store = has("store") ? await runStore(launcher) : undefined
  const pubsub: { rows: Array<PubsubRow>; failure?: string } | undefined = has("pubsub")
    ? await runPubsub(launcher, { ...config.pubsub, pin: config.pin })
    : undefined
  const scale = has("scale") ? await runScale(launcher, config.scale) : undefined
  const loadAfter = os.loadavg()

  const sections: Array<string> = []
  if (rpc.length > 0) sections.push(`### RPC (unary echo)\n\n${rpcTable(rpc)}`)
  if (gateway.length > 0) {
    sections.push(`### HTTP gateway (unary echo over HTTP/1.1 keep-alive, JSON)\n\n${gatewayTable(gateway)}`)
  }
  if (stream.length > 0) sections.push(`### Bidi streaming (one stream, messages echoed)\n\n${streamTable(stream)}`)
  if (grpcRows.length > 0) sections.push(`### gRPC (unary and bidi, protobuf)\n\n${grpcTable(grpcRows)}`)
  if (largeRows.length > 0) {
    sections.push(`### Large messages (64 KiB and 1 MiB echoed; MiB/s of payload each way)\n\n${largeTable(largeRows)}`)
  }
  if (codec !== undefined && codec.rows.length > 0) {
    sections.push(`### Codecs (10-field message, encode+decode)\n\n${codecTable(codec.rows)}`)
  }
  if (store !== undefined && store.rows.length > 0) {
    sections.push(`### Store\n\n${storeTable(store.rows, store.failures)}`)
  }
  if (pubsub !== undefined && pubsub.rows.length > 0) {
    sections.push(`### Pub/sub (events delivered to a subscriber in another process)\n\n${pubsubTable(pubsub.rows)}`)
  }
  if (idle.length > 0) sections.push(`### Idle server RSS\n\n${idleTable(idle)}`)
  if (startup.length > 0) sections.push(`### Start-up (process start → serving)\n\n${startupTable(startup)}`)
  if (scale?.result !== undefined) {
    sections.push(`### Discovery and selection at scale (one process)\n\n${scaleTable(scale.result)}`)
  }
  const summaryText = [
    summary({ rpc, gateway, stream, codec: codec?.rows ?? [], store: store?.rows ?? [], idle, startup }),
    ...pubsubSummary(pubsub?.rows ?? []),
    ...grpcSummary(grpcRows),
    ...scaleSummary(scale?.result),
    ...largeSummary(largeRows)
  ].filter((line) => line !== "").join("\n")
  if (summaryText !== "") sections.push(`### Summary (same-run ratios)\n\n${summaryText}`)
  const markdown = sections.join("\n\n")
  console.log("\n" + markdown + "\n")
  console.log(
    `load average before: ${loadBefore.map((l) => l.toFixed(2)).join(" ")}, after: ${
      loadAfter.map((l) => l.toFixed(2)).join(" ")
    }`
  )

  if (config.save) {
    const dir = path.join(benchDir, "results")
    mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`)
    writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          finishedAt: new Date().toISOString(),
          commit: gitCommit(),
          node: process.version,
          platform: `${os.platform()} ${os.release()}`,
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model,
          loadavg: { before: loadBefore, after: loadAfter },
          config: { ...config, payloadJsonBytes, children: launcher.mode },
          scenarios: scenarios.map(({ description, group, name, optional, server }) => ({
            name,
            group,
            description,
            server,
            optional
          })),
          rpc,
          gateway,
          stream,
          grpc: grpcRows,
          large: largeRows,
          codec,
          store,
          pubsub,
          idle,
          startup,
          scale,
          // For older readers of this file: the rpc rows under their previous name.
          results: rpc,
          table: markdown
        },
        null,
        2
      ) + "\n"
    )
    console.log(`saved ${path.relative(root, file)}`)
  }
  const failed = [...rpc, ...gateway, ...stream, ...grpcRows, ...largeRows].some((r) => r.failure !== undefined) ||
    [...idle, ...startup].some((r) => r.failure !== undefined) || codec?.failure !== undefined ||
    (store?.failures.length ?? 0) > 0 ||
    pubsub?.failure !== undefined || (pubsub?.rows.some((r) => r.failure !== undefined) ?? false) ||
    scale?.failure !== undefined
  if (failed) process.exitCode = 1
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(killAll)
