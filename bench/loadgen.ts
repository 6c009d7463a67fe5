/**
 * The load-generator process: a closed loop keeping exactly `inflight` calls outstanding (a new call
 * starts when one completes). Usage (run by run.ts):
 *
 *   node --import tsx bench/loadgen.ts <scenario> <host:port> <inflight> <warmupMs> <windowMs>
 *
 * Protocol on stdout, one line each: `WINDOW_START`, `WINDOW_END` (run.ts samples /proc at both), then
 * `RESULT <json>`. Latency is measured per call from start to completion callback, window calls only.
 */
import { writeSync } from "node:fs"
import { performance } from "node:perf_hooks"
import { scenarios } from "./scenarios.js"

export interface LoadResult {
  readonly completed: number
  readonly errors: number
  readonly firstError: string | undefined
  readonly windowMs: number
  readonly reqPerSec: number
  readonly latencyUs: { readonly p50: number; readonly p90: number; readonly p99: number; readonly max: number }
}

const [name, address, inflightArg, warmupArg, windowArg] = process.argv.slice(2)
const scenario = scenarios.find((s) => s.name === name)
if (scenario === undefined || address === undefined) {
  process.stderr.write(`usage: loadgen.ts <scenario> <host:port> <inflight> <warmupMs> <windowMs>\n`)
  process.exit(2)
}
const inflight = Number(inflightArg ?? 64)
const warmupMs = Number(warmupArg ?? 2000)
const windowMs = Number(windowArg ?? 5000)

const line = (text: string) => writeSync(1, text + "\n")

/** Growable store of latencies in milliseconds. */
class Samples {
  private data = new Float64Array(1 << 20)
  length = 0
  push(value: number): void {
    if (this.length === this.data.length) {
      const bigger = new Float64Array(this.data.length * 2)
      bigger.set(this.data)
      this.data = bigger
    }
    this.data[this.length++] = value
  }
  percentiles(): LoadResult["latencyUs"] {
    const sorted = this.data.slice(0, this.length).sort()
    const at = (q: number) =>
      sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! * 1000
    return {
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      max: sorted.length === 0 ? NaN : sorted[sorted.length - 1]! * 1000
    }
  }
}

const main = async () => {
  const factory = await scenario.client()
  const client = await factory(address)
  let phase: "warmup" | "window" | "stop" = "warmup"
  let completed = 0
  let errors = 0
  let firstError: string | undefined
  let outstanding = 0
  const samples = new Samples()
  let drained: (() => void) | undefined

  // One call's outcome; false once the run is over (the caller stops issuing).
  const settle = (error: unknown, start: number): boolean => {
    outstanding--
    if (phase === "window") {
      if (error === undefined) {
        completed++
        samples.push(performance.now() - start)
      } else errors++
    }
    if (error !== undefined && firstError === undefined) firstError = String(error).slice(0, 500)
    if (phase !== "stop") {
      outstanding++
      return true
    }
    if (outstanding === 0) drained?.()
    return false
  }
  if (client.workers !== undefined) {
    outstanding = inflight
    client.workers(inflight, settle)
  } else {
    const issue = (): void => {
      outstanding++
      const start = performance.now()
      client.call((error) => {
        if (settle(error, start)) {
          outstanding--
          issue()
        }
      })
    }
    for (let i = 0; i < inflight; i++) issue()
  }

  await new Promise((resolve) => setTimeout(resolve, warmupMs))
  line("WINDOW_START")
  phase = "window"
  const t0 = performance.now()
  await new Promise((resolve) => setTimeout(resolve, windowMs))
  phase = "stop"
  const t1 = performance.now()
  line("WINDOW_END")

  const elapsed = t1 - t0
  const result: LoadResult = {
    completed,
    errors,
    firstError,
    windowMs: elapsed,
    reqPerSec: completed / (elapsed / 1000),
    latencyUs: samples.percentiles()
  }
  line(`RESULT ${JSON.stringify(result)}`)
  // Let outstanding calls finish (bounded), then close.
  if (outstanding > 0) {
    await new Promise<void>((resolve) => {
      drained = resolve
      setTimeout(resolve, 2000).unref()
    })
  }
  await Promise.race([client.close(), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
  process.exit(0)
}

main().catch((error) => {
  process.stderr.write(`loadgen failed: ${error?.stack ?? error}\n`)
  process.exit(1)
})
