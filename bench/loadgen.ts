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

/**
 * Latencies in buckets 1 % wide (from 1 µs): memory fixed whatever the call count. A growable array of every
 * sample made a faster client's process heavier (8 M calls in a 60 s window: 64 MB of samples, 96 MB while
 * doubling), which `client peak RSS` then charged to the implementation. Percentiles are a bucket's upper
 * bound: at most 1 % above the exact value.
 */
class Samples {
  private static readonly logGrowth = Math.log(1.01)
  private readonly counts = new Float64Array(2500)
  private total = 0
  private maxUs = 0
  push(millis: number): void {
    const micros = millis * 1000
    if (micros > this.maxUs) this.maxUs = micros
    const index = micros <= 1 ? 0 : Math.min(this.counts.length - 1, Math.ceil(Math.log(micros) / Samples.logGrowth))
    this.counts[index]!++
    this.total++
  }
  percentiles(): LoadResult["latencyUs"] {
    const at = (q: number) => {
      if (this.total === 0) return NaN
      const rank = Math.min(this.total - 1, Math.floor(q * this.total))
      let seen = 0
      for (let i = 0; i < this.counts.length; i++) {
        seen += this.counts[i]!
        if (seen > rank) return Math.min(Math.pow(1.01, i), this.maxUs)
      }
      return this.maxUs
    }
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: this.total === 0 ? NaN : this.maxUs }
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
