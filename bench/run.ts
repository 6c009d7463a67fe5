/**
 * `npm run bench`: for every scenario (scenarios.ts) and in-flight count, start a fresh server process and a
 * load-generator process on 127.0.0.1, warm up, measure a fixed window, and report req/s, latency, server
 * CPU per request (/proc utime+stime) and server peak RSS (VmHWM). Prints a markdown table with ratios
 * against the raw `node:net` baseline at the same in-flight count and saves JSON to bench/results/.
 *
 * Environment:
 *   BENCH_WARMUP_MS          warm-up per measurement (default 2000)
 *   BENCH_WINDOW_MS          measured window (default 5000)
 *   BENCH_INFLIGHT           comma-separated in-flight counts (default "64,1")
 *   BENCH_SCENARIOS          comma-separated scenario names (default: all but the optional diagnostics)
 *   BENCH_SERVER_NODE_ARGS   extra node flags for server processes, e.g. "--cpu-prof --cpu-prof-dir=bench/profiles"
 *   BENCH_CLIENT_NODE_ARGS   the same for the load-generator (client) processes
 *   BENCH_SAVE=0             do not write a results file
 *   BENCH_TSX=1              run the child processes with `node --import tsx` instead of transpiling first
 *
 * Child processes run plain `node` on JavaScript transpiled once per run (esbuild, file by file, into
 * bench/.build/): the tsx loader would add ≈35 MB of RSS and a loader thread to every process.
 */
import type { ChildProcess } from "node:child_process"
import { execFileSync, spawn } from "node:child_process"
import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import type { LoadResult } from "./loadgen.js"
import { payloadJsonBytes } from "./payload.js"
import { clkTck, cpuTicks, statusKib } from "./proc.js"
import type { Scenario } from "./scenarios.js"
import { baseline, scenarios } from "./scenarios.js"

const benchDir = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(benchDir, "..")

const numberEnv = (name: string, fallback: number): number => {
  const value = Number(process.env[name])
  return process.env[name] !== undefined && Number.isFinite(value) && value > 0 ? value : fallback
}
const config = {
  warmupMs: numberEnv("BENCH_WARMUP_MS", 2000),
  windowMs: numberEnv("BENCH_WINDOW_MS", 5000),
  inflight: (process.env.BENCH_INFLIGHT ?? "64,1").split(",").map((s) => Number(s.trim())).filter((n) => n > 0),
  scenarios: process.env.BENCH_SCENARIOS?.split(",").map((s) => s.trim()).filter((s) => s !== ""),
  serverNodeArgs: (process.env.BENCH_SERVER_NODE_ARGS ?? "").split(" ").filter((s) => s !== ""),
  clientNodeArgs: (process.env.BENCH_CLIENT_NODE_ARGS ?? "").split(" ").filter((s) => s !== ""),
  save: process.env.BENCH_SAVE !== "0",
  tsx: process.env.BENCH_TSX === "1"
}

// ---------------------------------------------------------------------------------------------
// How children run: transpiled JS on plain node, or TypeScript through the tsx loader.

interface Launcher {
  readonly mode: "transpiled" | "tsx"
  /** Node arguments to run the repository-relative TypeScript file `script`. */
  readonly args: (script: string) => ReadonlyArray<string>
}

const listTs = (dir: string): Array<string> =>
  readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      return entry.name === ".build" || entry.name === "results" || entry.name === "profiles" ? [] : listTs(relative)
    }
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [relative] : []
  })

const prepare = async (): Promise<Launcher> => {
  const viaTsx: Launcher = { mode: "tsx", args: (script) => ["--import", "tsx", script] }
  if (config.tsx) return viaTsx
  try {
    // esbuild comes with tsx; each file is transpiled on its own (no bundling), so profiles keep file names.
    const esbuild = await import("esbuild")
    const outdir = path.join(benchDir, ".build")
    rmSync(outdir, { recursive: true, force: true })
    await esbuild.build({
      absWorkingDir: root,
      entryPoints: [...listTs("src"), ...listTs("bench")],
      outdir,
      outbase: ".",
      bundle: false,
      format: "esm",
      platform: "node",
      target: "node20",
      logLevel: "error"
    })
    return {
      mode: "transpiled",
      args: (script) => [path.join("bench", ".build", script.replace(/\.ts$/, ".js"))]
    }
  } catch (error) {
    console.warn(`transpiling failed (${error instanceof Error ? error.message : error}); running children with tsx`)
    return viaTsx
  }
}

export interface Measurement {
  readonly scenario: string
  readonly inflight: number
  readonly reqPerSec: number
  readonly completed: number
  readonly errors: number
  readonly firstError?: string | undefined
  readonly latencyUs: LoadResult["latencyUs"]
  readonly serverCpuUsPerReq: number
  readonly clientCpuUsPerReq: number
  readonly serverPeakRssMb: number
  readonly clientPeakRssMb: number
  readonly failure?: string | undefined
}

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and killed on the way out, whatever happens.

const children = new Set<ChildProcess>()

const killAll = () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  children.clear()
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

interface Child {
  readonly process: ChildProcess
  readonly pid: number
  /** Resolves with the first stdout line matching, rejects on exit or timeout. */
  readonly waitLine: (prefix: string, timeoutMs: number) => Promise<string>
  readonly stderrTail: () => string
  readonly exited: Promise<void>
}

const startNode = (args: ReadonlyArray<string>): Child => {
  const child = spawn(process.execPath, [...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  const lines: Array<string> = []
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = []
  let stderr = ""
  let buffer = ""
  child.stdout!.setEncoding("utf8").on("data", (data: string) => {
    buffer += data
    let newline: number
    while ((newline = buffer.indexOf("\n")) !== -1) {
      const text = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      const index = waiters.findIndex((w) => text.startsWith(w.prefix))
      if (index !== -1) waiters.splice(index, 1)[0]!.resolve(text)
      else lines.push(text)
    }
  })
  child.stderr!.setEncoding("utf8").on("data", (data: string) => {
    stderr = (stderr + data).slice(-4000)
  })
  const exited = new Promise<void>((resolve) => child.once("exit", () => {
    children.delete(child)
    resolve()
  }))
  return {
    process: child,
    pid: child.pid!,
    exited,
    stderrTail: () => stderr.trim(),
    waitLine: (prefix, timeoutMs) => {
      const seen = lines.findIndex((l) => l.startsWith(prefix))
      if (seen !== -1) return Promise.resolve(lines.splice(seen, 1)[0]!)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for "${prefix}"`)), timeoutMs)
        const waiter = {
          prefix,
          resolve: (line: string) => {
            clearTimeout(timer)
            resolve(line)
          }
        }
        waiters.push(waiter)
        void exited.then(() => {
          clearTimeout(timer)
          const index = waiters.indexOf(waiter)
          if (index !== -1) {
            waiters.splice(index, 1)
            reject(new Error(`process exited (code ${child.exitCode}) before "${prefix}"`))
          }
        })
      })
    }
  }
}

/** SIGTERM, then SIGKILL after `graceMs` (servers exit on SIGTERM; --cpu-prof writes its file then). */
const stop = async (child: Child, graceMs = 5000): Promise<void> => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.kill("SIGTERM")
  const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMs)
  await child.exited
  clearTimeout(timer)
}

// ---------------------------------------------------------------------------------------------
// One measurement

const measure = async (launcher: Launcher, scenario: Scenario, inflight: number): Promise<Measurement> => {
  const [script, ...scriptArgs] = scenario.server
  const server = startNode([...config.serverNodeArgs, ...launcher.args(script!), ...scriptArgs])
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
      String(config.warmupMs),
      String(config.windowMs)
    ])
    const budget = config.warmupMs + config.windowMs + 30_000
    await client.waitLine("WINDOW_START", budget)
    const server0 = cpuTicks(server.pid)
    const client0 = cpuTicks(client.pid)
    await client.waitLine("WINDOW_END", config.windowMs + 10_000)
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
    return {
      scenario: scenario.name,
      inflight,
      reqPerSec: NaN,
      completed: 0,
      errors: 0,
      latencyUs: { p50: NaN, p90: NaN, p99: NaN, max: NaN },
      serverCpuUsPerReq: NaN,
      clientCpuUsPerReq: NaN,
      serverPeakRssMb: NaN,
      clientPeakRssMb: NaN,
      failure: detail
    }
  } finally {
    if (client !== undefined) await stop(client, 3000)
    await stop(server)
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "—"
const ratio = (a: number, b: number | undefined): string =>
  b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : "—"

export const table = (rows: ReadonlyArray<Measurement>): string => {
  const header = [
    "scenario",
    "in flight",
    "req/s",
    "req/s vs raw",
    "p50 µs",
    "p99 µs",
    "p50 vs raw",
    "server CPU µs/req",
    "CPU vs raw",
    "server peak RSS MB",
    "client CPU µs/req",
    "errors"
  ]
  const out = [`| ${header.join(" | ")} |`, `|${header.map((_, i) => i < 1 ? "---" : "---:").join("|")}|`]
  for (const row of rows) {
    const base = rows.find((r) => r.scenario === baseline && r.inflight === row.inflight)
    out.push(`| ${
      [
        row.scenario,
        String(row.inflight),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, base?.reqPerSec),
        fmt(row.latencyUs.p50),
        fmt(row.latencyUs.p99),
        ratio(row.latencyUs.p50, base?.latencyUs.p50),
        fmt(row.serverCpuUsPerReq, 1),
        ratio(row.serverCpuUsPerReq, base?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        fmt(row.clientCpuUsPerReq, 1),
        row.failure !== undefined ? "FAILED" : String(row.errors)
      ].join(" | ")
    } |`)
  }
  return out.join("\n")
}

const gitCommit = (): string | undefined => {
  try {
    return execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim()
  } catch {
    return undefined
  }
}

const main = async () => {
  const selected = config.scenarios === undefined
    ? scenarios.filter((s) => s.optional !== true)
    : scenarios.filter((s) => config.scenarios!.includes(s.name))
  if (selected.length === 0) throw new Error(`no scenario matches BENCH_SCENARIOS=${process.env.BENCH_SCENARIOS}`)
  const startedAt = new Date()
  const launcher = await prepare()
  const loadBefore = os.loadavg()
  console.log(
    `effect-micro bench: ${selected.map((s) => s.name).join(", ")} × in-flight ${config.inflight.join(", ")}; ` +
      `warm-up ${config.warmupMs} ms, window ${config.windowMs} ms, payload ${payloadJsonBytes} B JSON; ` +
      `${os.cpus().length} CPUs, load ${loadBefore.map((l) => l.toFixed(2)).join(" ")}; children: ${launcher.mode}`
  )
  const rows: Array<Measurement> = []
  for (const scenario of selected) {
    for (const inflight of config.inflight) {
      const row = await measure(launcher, scenario, inflight)
      rows.push(row)
      console.log(
        row.failure !== undefined
          ? `  ${scenario.name} @${inflight}: FAILED\n    ${row.failure.replace(/\n/g, "\n    ")}`
          : `  ${scenario.name} @${inflight}: ${fmt(row.reqPerSec)} req/s, p50 ${fmt(row.latencyUs.p50)} µs, ` +
            `p99 ${fmt(row.latencyUs.p99)} µs, server ${fmt(row.serverCpuUsPerReq, 1)} µs/req, ` +
            `RSS ${fmt(row.serverPeakRssMb, 1)} MB${row.errors > 0 ? `, ${row.errors} errors: ${row.firstError}` : ""}`
      )
    }
  }
  // Order the table by in-flight count so each block starts with its baseline.
  const ordered = config.inflight.flatMap((n) => rows.filter((r) => r.inflight === n))
  const markdown = table(ordered)
  console.log("\n" + markdown + "\n")
  const loadAfter = os.loadavg()
  console.log(`load average after: ${loadAfter.map((l) => l.toFixed(2)).join(" ")}`)
  if (config.save) {
    const dir = path.join(benchDir, "results")
    mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`)
    writeFileSync(
      file,
      JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          commit: gitCommit(),
          node: process.version,
          platform: `${os.platform()} ${os.release()}`,
          cpus: os.cpus().length,
          cpuModel: os.cpus()[0]?.model,
          loadavg: { before: loadBefore, after: loadAfter },
          config: { ...config, payloadJsonBytes, children: launcher.mode },
          scenarios: selected.map(({ description, name, server }) => ({ name, description, server })),
          results: ordered,
          table: markdown
        },
        null,
        2
      ) + "\n"
    )
    console.log(`saved ${path.relative(root, file)}`)
  }
  if (rows.some((r) => r.failure !== undefined)) process.exitCode = 1
}

main()
  .catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
  .finally(killAll)
