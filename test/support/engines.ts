/**
 * Starts a real engine (etcd, nats, redis, postgres) on loopback for one test file, through
 * scripts/engines.sh, and stops it when the scope closes. Tests never assume an engine is running.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { execFileSync } from "node:child_process"
import * as path from "node:path"

const script = path.resolve(import.meta.dirname, "../../scripts/engines.sh")

export type EngineName = "etcd" | "nats" | "redis" | "postgres"

export interface RunningEngine {
  readonly engine: EngineName
  /** host:port */
  readonly address: string
  readonly host: string
  readonly port: number
  readonly dir: string
  /** Stops the engine (idempotent); useful for "engine down mid-run" tests. */
  readonly stop: () => void
}

/** Plain (non-Effect) start, for vitest `beforeAll`. */
export const startEngine = (engine: EngineName): RunningEngine => {
  const out = execFileSync("bash", [script, "start", engine], { encoding: "utf8", timeout: 120_000 })
  const upper = engine.toUpperCase()
  const address = out.match(new RegExp(`${upper}_ADDRESS=(\\S+)`))?.[1]
  const dir = out.match(new RegExp(`${upper}_DIR=(\\S+)`))?.[1]
  if (address === undefined || dir === undefined) throw new Error(`engines.sh start ${engine} printed: ${out}`)
  const [host, port] = address.split(":") as [string, string]
  let stopped = false
  return {
    engine,
    address,
    host,
    port: Number(port),
    dir,
    stop: () => {
      if (stopped) return
      stopped = true
      execFileSync("bash", [script, "stop", dir], { encoding: "utf8", timeout: 60_000 })
    }
  }
}

/** Scoped start: the engine is stopped when the scope closes. */
export const engine = (name: EngineName): Effect.Effect<RunningEngine, never, Scope.Scope> =>
  Effect.acquireRelease(Effect.sync(() => startEngine(name)), (running) => Effect.sync(() => running.stop()))
