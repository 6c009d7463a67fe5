/**
 * Runs the `micro` CLI as a child process for the process tests: to completion (`run`, three at a time, since
 * more at once only slows every one on 2 cores), or as a long-running command whose output is read as it comes
 * (`start`), from the run's transpiled copy (test/support/globalSetup.ts).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { transpiled } from "./transpiled.js"

const root = path.resolve(import.meta.dirname, "../..")

const main = () => transpiled("src/cli/main.ts")

export interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  readonly stdin?: string
  readonly env?: Record<string, string>
  readonly cwd?: string
}

const running = new Set<ChildProcess>()

const slots = 3
let free = slots
const waiting: Array<() => void> = []
const limited = async <A>(run: () => Promise<A>): Promise<A> => {
  if (free === 0) await new Promise<void>((wake) => waiting.push(wake))
  else free--
  try {
    return await run()
  } finally {
    const next = waiting.shift()
    if (next) next()
    else free++
  }
}

const spawnMicro = (args: ReadonlyArray<string>, options: RunOptions) => {
  const child = spawn(process.execPath, [main(), ...args], {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env },
    stdio: ["pipe", "pipe", "pipe"]
  })
  running.add(child)
  child.once("exit", () => running.delete(child))
  return child
}

/** Runs the CLI to completion (killed after 30 s). */
export const run = (args: ReadonlyArray<string>, options: RunOptions = {}): Promise<Run> =>
  limited(() =>
    new Promise<Run>((resolve) => {
      const child = spawnMicro(args, options)
      let stdout = ""
      let stderr = ""
      child.stdout!.on("data", (chunk) => (stdout += String(chunk)))
      child.stderr!.on("data", (chunk) => (stderr += String(chunk)))
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
      child.once("exit", (code) => {
        clearTimeout(timer)
        resolve({ code, stdout, stderr })
      })
      child.stdin!.end(options.stdin ?? "")
    })
  )

export interface Started {
  /** Resolves once stderr has a line matching (bounded). */
  readonly stderrLine: (pattern: RegExp, timeoutMillis?: number) => Promise<void>
  /** Resolves once stdout has at least `n` lines (bounded). */
  readonly stdoutLines: (n: number, timeoutMillis?: number) => Promise<ReadonlyArray<string>>
  readonly exited: Promise<Run>
}

/** Starts a long-running command (subscribe, watch); killed after 60 s at the latest. */
export const start = (args: ReadonlyArray<string>, options: RunOptions = {}): Started => {
  const child = spawnMicro(args, options)
  let stdout = ""
  let stderr = ""
  const checks = new Set<() => void>()
  const check = () => {
    for (const one of checks) one()
  }
  child.stdout!.on("data", (chunk) => {
    stdout += String(chunk)
    check()
  })
  child.stderr!.on("data", (chunk) => {
    stderr += String(chunk)
    check()
  })
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000)
  const exited = new Promise<Run>((resolve) =>
    child.once("exit", (code) => {
      clearTimeout(timer)
      check()
      resolve({ code, stdout, stderr })
    })
  )
  child.stdin!.end(options.stdin ?? "")
  const until = (done: () => boolean, what: string, timeoutMillis: number) =>
    new Promise<void>((resolve, reject) => {
      const one = () => {
        if (done()) {
          checks.delete(one)
          clearTimeout(timeout)
          resolve()
        } else if (child.exitCode !== null || child.signalCode !== null) {
          checks.delete(one)
          clearTimeout(timeout)
          reject(new Error(`micro ${args.join(" ")} exited before ${what}; stdout: ${stdout} stderr: ${stderr}`))
        }
      }
      const timeout = setTimeout(() => {
        checks.delete(one)
        reject(new Error(`micro ${args.join(" ")}: no ${what} within ${timeoutMillis} ms; stderr: ${stderr}`))
      }, timeoutMillis)
      checks.add(one)
      one()
    })
  const lines = () => stdout.split("\n").filter((line) => line !== "")
  return {
    stderrLine: (pattern, timeoutMillis = 20_000) =>
      until(() => stderr.split("\n").some((line) => pattern.test(line)), `stderr ${pattern}`, timeoutMillis),
    stdoutLines: (n, timeoutMillis = 20_000) =>
      until(() => lines().length >= n, `${n} stdout lines`, timeoutMillis).then(lines),
    exited
  }
}

/** Kills every CLI process still running (afterAll). */
export const cleanup = (): void => {
  for (const child of running) child.kill("SIGKILL")
}

export const lines = (text: string): ReadonlyArray<string> => text.split("\n").filter((line) => line !== "")

/**
 * `micro gateway --port 0 --host 127.0.0.1 ...args`; its base URL once it prints that it listens (within
 * `readyMillis`). Killed with the scope.
 */
export const gateway = (
  args: ReadonlyArray<string>,
  readyMillis: number
): Effect.Effect<string, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() =>
      spawn(process.execPath, [main(), "gateway", "--port", "0", "--host", "127.0.0.1", ...args], {
        cwd: root,
        stdio: ["ignore", "pipe", "pipe"]
      })
    ),
    (child) =>
      Effect.promise(() =>
        new Promise<void>((done) => {
          if (child.exitCode !== null || child.signalCode !== null) return done()
          child.once("exit", () => done())
          child.kill("SIGKILL")
        })
      )
  ).pipe(
    Effect.flatMap((child) =>
      Effect.async<string, Error>((resume) => {
        let stdout = ""
        let stderr = ""
        const timer = setTimeout(() => resume(Effect.fail(new Error(`gateway did not start: ${stderr}`))), readyMillis)
        child.stderr!.on("data", (data) => (stderr += data))
        child.stdout!.on("data", (data) => {
          stdout += data
          const match = /gateway listening on (http:\/\/\S+)/.exec(stdout)
          if (match !== null) {
            clearTimeout(timer)
            resume(Effect.succeed(match[1]!))
          }
        })
        child.once("exit", (code) => {
          clearTimeout(timer)
          resume(Effect.fail(new Error(`gateway exited (${code}): ${stderr}`)))
        })
        return Effect.sync(() => clearTimeout(timer))
      })
    )
  )
