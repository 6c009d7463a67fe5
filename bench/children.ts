/**
 * Child processes of the benchmark: how they are launched (transpiled JavaScript on plain node, or
 * TypeScript through the tsx loader), line-oriented stdout protocol, and cleanup. Every child and every
 * engine started here is tracked and stopped on the way out, whatever happens (error, Ctrl-C).
 */
import type { ChildProcess } from "node:child_process"
import { execFileSync, spawn } from "node:child_process"
import { appendFileSync, readdirSync, rmSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { bundle as bundleFile } from "../scripts/bundle.js"

export const benchDir = path.dirname(fileURLToPath(import.meta.url))
export const root = path.resolve(benchDir, "..")

// ---------------------------------------------------------------------------------------------
// Launcher

export interface Launcher {
  readonly mode: "transpiled" | "tsx"
  /**
   * Node arguments to run the repository-relative TypeScript file `script`; `bundled`: as one ESM file bundled
   * with its dependencies (how docs/deploying.md recommends shipping a service), built on first use.
   */
  readonly args: (script: string, bundled?: boolean) => ReadonlyArray<string>
}

const listTs = (dir: string): Array<string> =>
  readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name)
    if (entry.isDirectory()) {
      return entry.name === ".build" || entry.name === "results" || entry.name === "profiles" ? [] : listTs(relative)
    }
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts") ? [relative] : []
  })

/**
 * Children run plain `node` on JavaScript transpiled once per run (esbuild, file by file, into
 * bench/.build/): the tsx loader would add ≈35 MB of RSS and a loader thread to every process.
 */
export const prepare = async (tsx: boolean): Promise<Launcher> => {
  const viaTsx: Launcher = {
    mode: "tsx",
    args: (script, bundled) => bundled ? [bundle(script)] : ["--import", "tsx", script]
  }
  if (tsx) return viaTsx
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
      args: (script, bundled) =>
        bundled ? [bundle(script)] : [path.join("bench", ".build", script.replace(/\.ts$/, ".js"))]
    }
  } catch (error) {
    console.warn(`transpiling failed (${error instanceof Error ? error.message : error}); running children with tsx`)
    return viaTsx
  }
}

const bundles = new Map<string, string>()

/** `script` and everything it imports as one ESM file in bench/.build/bundles/ (scripts/bundle.ts), built once. */
const bundle = (script: string): string => {
  const cached = bundles.get(script)
  if (cached !== undefined) return cached
  const outfile = bundleFile(script, path.join("bench", ".build", "bundles", script.replace(/\.ts$/, ".mjs")))
  bundles.set(script, outfile)
  return outfile
}

// ---------------------------------------------------------------------------------------------
// Tracking and cleanup

const children = new Set<ChildProcess>()
const cleanups = new Set<() => void>()

export const killAll = (): void => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  }
  children.clear()
  for (const cleanup of [...cleanups]) {
    try {
      cleanup()
    } catch {
      // best effort on the way out
    }
  }
  cleanups.clear()
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

// ---------------------------------------------------------------------------------------------
// Node children

export interface Child {
  readonly process: ChildProcess
  readonly pid: number
  /** Resolves with the first stdout line starting with `prefix`, rejects on exit or timeout. */
  readonly waitLine: (prefix: string, timeoutMs: number) => Promise<string>
  readonly stderrTail: () => string
  readonly exited: Promise<void>
}

/**
 * Starts `node <args>`; with `cpu`, pinned to that CPU (all its threads) through `taskset`, which execs node in
 * place, so the pid (and `/proc/<pid>`) is node's own.
 */
export const startNode = (args: ReadonlyArray<string>, cpu?: number | undefined): Child => {
  const child = cpu === undefined
    ? spawn(process.execPath, [...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
    : spawn("taskset", ["-c", String(cpu), process.execPath, ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
  children.add(child)
  const lines: Array<string> = []
  const waiters: Array<{ prefix: string; resolve: (line: string) => void }> = []
  let stderr = ""
  let buffer = ""
  const log = process.env.BENCH_CHILD_LOG
  child.stdout!.setEncoding("utf8").on("data", (data: string) => {
    if (log) appendFileSync(`${log}-${child.pid}.log`, data)
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
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      children.delete(child)
      resolve()
    })
  )
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
export const stop = async (child: Child, graceMs = 5000): Promise<void> => {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return
  child.process.kill("SIGTERM")
  const timer = setTimeout(() => child.process.kill("SIGKILL"), graceMs)
  await child.exited
  clearTimeout(timer)
}

/** Runs `script` (with `nodeArgs` for node) to completion and returns the JSON after its `RESULT ` line. */
export const runForResult = async <A>(
  launcher: Launcher,
  script: string,
  args: ReadonlyArray<string>,
  timeoutMs: number,
  nodeArgs: ReadonlyArray<string> = []
): Promise<A> => {
  const child = startNode([...nodeArgs, ...launcher.args(script), ...args])
  try {
    const line = await child.waitLine("RESULT ", timeoutMs)
    return JSON.parse(line.slice("RESULT ".length)) as A
  } catch (error) {
    const tail = child.stderrTail()
    throw new Error(`${error instanceof Error ? error.message : error}${tail ? `\n${tail}` : ""}`)
  } finally {
    await stop(child, 3000)
  }
}

// ---------------------------------------------------------------------------------------------
// Engines (scripts/engines.sh), stopped with the run

export interface Engine {
  readonly address: string
  readonly stop: () => void
}

const enginesScript = path.join(root, "scripts", "engines.sh")

export const startEngine = (name: "redis" | "postgres" | "nats" | "etcd"): Engine => {
  const out = execFileSync("bash", [enginesScript, "start", name], { encoding: "utf8", timeout: 180_000, cwd: root })
  const upper = name.toUpperCase()
  const address = out.match(new RegExp(`${upper}_ADDRESS=(\\S+)`))?.[1]
  const dir = out.match(new RegExp(`${upper}_DIR=(\\S+)`))?.[1]
  if (address === undefined || dir === undefined) throw new Error(`engines.sh start ${name} printed: ${out}`)
  let stopped = false
  const stopEngine = () => {
    if (stopped) return
    stopped = true
    cleanups.delete(stopEngine)
    execFileSync("bash", [enginesScript, "stop", dir], { encoding: "utf8", timeout: 60_000 })
  }
  cleanups.add(stopEngine)
  return { address, stop: stopEngine }
}
