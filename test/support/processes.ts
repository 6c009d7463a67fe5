/** Spawns fixture processes (the run's transpiled copy, plain node) and always kills them when the scope closes. */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { transpiled } from "./transpiled.js"

const root = path.resolve(import.meta.dirname, "../..")

export interface Child {
  readonly process: ChildProcess
  /** The value printed after `READY `. */
  readonly ready: string
  /** Every stdout line so far. */
  readonly lines: Array<string>
  readonly kill: (signal?: NodeJS.Signals) => void
  /** Resolves when the process exited. */
  readonly exited: Promise<number | null>
  /** Waits (bounded) until a stdout line satisfies the predicate. */
  readonly waitForLine: (predicate: (line: string) => boolean, timeoutMillis?: number) => Promise<string>
}

export const spawnFixture = (
  fixture: string,
  env: Record<string, string> = {},
  readyTimeoutMillis = 20_000
): Effect.Effect<Child, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => start(fixture, env, readyTimeoutMillis),
      catch: (error) => error as Error
    }),
    (child) =>
      Effect.promise(async () => {
        if (child.process.exitCode === null && child.process.signalCode === null) {
          child.kill("SIGKILL")
          await child.exited
        }
      })
  )

const start = (fixture: string, env: Record<string, string>, readyTimeoutMillis: number): Promise<Child> =>
  new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [transpiled(fixture)], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    const lines: Array<string> = []
    const listeners = new Set<(line: string) => void>()
    let buffered = ""
    let stderr = ""
    const exited = new Promise<number | null>((done) => proc.once("exit", (code) => done(code)))
    proc.stderr!.on("data", (data) => {
      stderr += data
    })
    proc.stdout!.on("data", (data) => {
      buffered += data
      let newline: number
      while ((newline = buffered.indexOf("\n")) !== -1) {
        const line = buffered.slice(0, newline)
        buffered = buffered.slice(newline + 1)
        lines.push(line)
        for (const listener of listeners) listener(line)
      }
    })
    const waitForLine = (predicate: (line: string) => boolean, timeoutMillis = 10_000) =>
      new Promise<string>((ok, fail) => {
        const found = lines.find(predicate)
        if (found !== undefined) return ok(found)
        const timer = setTimeout(() => {
          listeners.delete(listener)
          fail(new Error(`no matching line from ${fixture} within ${timeoutMillis} ms; got: ${lines.join(" | ")}`))
        }, timeoutMillis)
        const listener = (line: string) => {
          if (!predicate(line)) return
          clearTimeout(timer)
          listeners.delete(listener)
          ok(line)
        }
        listeners.add(listener)
      })
    const kill = (signal: NodeJS.Signals = "SIGTERM") => {
      proc.kill(signal)
    }
    const timer = setTimeout(() => {
      proc.kill("SIGKILL")
      reject(new Error(`${fixture} not ready within ${readyTimeoutMillis} ms; stderr: ${stderr}`))
    }, readyTimeoutMillis)
    proc.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`${fixture} exited with ${code} before ready; stderr: ${stderr}`))
    })
    waitForLine((line) => line.startsWith("READY "), readyTimeoutMillis).then((line) => {
      clearTimeout(timer)
      resolve({ process: proc, ready: line.slice(6).trim(), lines, kill, exited, waitForLine })
    }, () => {})
  })
