/**
 * `micro bench <service> <endpoint> [json]`: calls a unary endpoint from `--concurrency` fibers for
 * `--duration` (or `--requests` calls) and reports throughput and latency percentiles, like moleculer-repl's
 * `bench`. Every call goes through the normal client (resolve, balance, retry), so this measures what a caller
 * sees; the load generator shares the CLI's process and its one CPU.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Client from "../../Client.js"
import * as Errors from "../../Errors.js"
import { UsageError } from "../exit.js"
import * as input from "../input.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import * as progress from "../progress.js"

/** Latencies kept for the percentiles: every one up to this many, then a uniform sample (reservoir). */
const reservoirSize = 1_000_000

class Recorder {
  readonly latencies = new Float64Array(reservoirSize)
  succeeded = 0
  failed = 0
  readonly failures = new Map<string, number>()
  private seen = 0

  record(millis: number): void {
    const index = this.seen < reservoirSize ? this.seen : Math.floor(Math.random() * (this.seen + 1))
    if (index < reservoirSize) this.latencies[index] = millis
    this.seen++
  }

  fail(error: unknown): void {
    this.failed++
    const key = Errors.isMicroError(error) ? error._tag : error === undefined ? "defect" : "endpoint error"
    this.failures.set(key, (this.failures.get(key) ?? 0) + 1)
  }

  percentiles(): Record<string, number> {
    const sorted = this.latencies.slice(0, Math.min(this.seen, reservoirSize)).sort()
    const at = (q: number) =>
      sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
    return {
      p50: at(0.5),
      p90: at(0.9),
      p99: at(0.99),
      p999: at(0.999),
      max: sorted.length === 0 ? 0 : sorted[sorted.length - 1]!
    }
  }
}

const round = (millis: number) => Math.round(millis * 1000) / 1000

export const bench = Command.make(
  "bench",
  {
    ...options.shared,
    ...options.call,
    service: Args.text({ name: "service" }),
    endpoint: Args.text({ name: "endpoint" }),
    payload: Args.text({ name: "json" }).pipe(Args.withDescription("The request as JSON (default {})."), Args.optional),
    concurrency: Options.integer("concurrency").pipe(
      Options.withAlias("c"),
      Options.withDefault(16),
      Options.withDescription("Calls in flight.")
    ),
    duration: Options.text("duration").pipe(
      Options.withAlias("d"),
      Options.withDefault("5s"),
      Options.withDescription("How long to run, e.g. 10s (ignored with --requests).")
    ),
    requests: Options.integer("requests").pipe(
      Options.withAlias("n"),
      Options.optional,
      Options.withDescription("Stop after this many calls instead of after --duration.")
    )
  },
  (config) =>
    Effect.gen(function*() {
      if (config.concurrency < 1) return yield* Effect.fail(new UsageError({ detail: "--concurrency must be ≥ 1" }))
      const duration = yield* options.parseDuration(config.duration)
      const callOptions = yield* options.clientOptions(config)
      const payload = yield* input.single(Option.orElse(config.payload, () => Option.some("{}")))
      const client = yield* Client.dynamic(config.service, callOptions)
      const endpoint = client.description.endpoints.find((endpoint) => endpoint.name === config.endpoint)
      const method = client.methods[config.endpoint]
      if (endpoint === undefined || method === undefined) {
        return yield* Effect.fail(
          Errors.NotFound.of(`service ${config.service} has no endpoint ${config.endpoint}`, "effect-micro.cli")
        )
      }
      if (endpoint.shape !== "unary") {
        return yield* Effect.fail(
          new UsageError({ detail: `bench calls unary endpoints; ${endpoint.name} is ${endpoint.shape}` })
        )
      }
      const call = () => method(payload, callOptions) as Effect.Effect<unknown, unknown>
      const limit = Option.getOrElse(config.requests, () => Infinity)
      const recorder = new Recorder()
      let started = 0
      let stopped = false
      const one = Effect.suspend(() => {
        started++
        const begin = performance.now()
        return Effect.map(Effect.exit(call()), (exit) => {
          if (Exit.isSuccess(exit)) {
            recorder.succeeded++
            recorder.record(performance.now() - begin)
          } else {
            recorder.fail(Option.getOrUndefined(Cause.failureOption(exit.cause)))
          }
        })
      })
      const worker = Effect.whileLoop({ while: () => !stopped && started < limit, body: () => one, step: () => {} })
      const begin = performance.now()
      const elapsed = () => (performance.now() - begin) / 1000
      yield* progress.show(() => {
        const done = recorder.succeeded + recorder.failed
        return `${done} calls, ${Math.round(done / Math.max(elapsed(), 0.001))}/s, ${recorder.failed} failed`
      })
      const workers = Effect.all(Array.from({ length: config.concurrency }, () => worker), {
        concurrency: "unbounded",
        discard: true
      })
      if (Option.isNone(config.requests)) {
        yield* Effect.forkScoped(Effect.zipRight(Effect.sleep(duration), Effect.sync(() => (stopped = true))))
      }
      // Calls in flight when the time is up finish and count.
      yield* workers
      const seconds = elapsed()
      const calls = recorder.succeeded + recorder.failed
      const latency = recorder.percentiles()
      const report = {
        service: config.service,
        endpoint: config.endpoint,
        concurrency: config.concurrency,
        calls,
        succeeded: recorder.succeeded,
        failed: recorder.failed,
        failures: Object.fromEntries(recorder.failures),
        seconds: Math.round(seconds * 1000) / 1000,
        perSecond: Math.round(calls / seconds),
        latencyMillis: Object.fromEntries(Object.entries(latency).map(([key, value]) => [key, round(value)]))
      }
      if (config.asJson) return yield* output.json(report)
      yield* output.text([
        `${config.service}.${config.endpoint}: ${calls} calls in ${report.seconds}s at ${config.concurrency} in flight`,
        `  ${report.perSecond} calls/s, ${recorder.succeeded} succeeded, ${recorder.failed} failed${
          recorder.failures.size === 0 ? "" : ` (${[...recorder.failures].map(([key, n]) => `${key} ${n}`).join(", ")})`
        }`,
        `  latency ms: p50 ${round(latency.p50!)}  p90 ${round(latency.p90!)}  p99 ${round(latency.p99!)}  p99.9 ${
          round(latency.p999!)
        }  max ${round(latency.max!)}`
      ].join("\n"))
    }).pipe(Effect.scoped, Effect.provide(layers.stack(config)))
).pipe(Command.withDescription("Load-test a unary endpoint: calls/s and latency percentiles."))
