/**
 * The `pubsub` group, run by run.ts: for every scenario a fresh subscriber process and a fresh publisher
 * process (nats-server started once for the group when a selected scenario needs it, always stopped).
 * After the warm-up the orchestrator reads both processes' CPU time (/proc) and signals the subscriber
 * (SIGUSR2 → `MARK <delivered> <ms>`), again after the window: events/s = delivered in the window ÷ the
 * subscriber's own elapsed time; CPU µs/event = CPU ticks in the window ÷ delivered.
 */
import type { Child, Engine, Launcher } from "../children.js"
import { startEngine, startNode, stop } from "../children.js"
import { clkTck, cpuTicks, statusKib } from "../proc.js"
import { fmt, ratio } from "../report.js"
import type { PubsubScenario } from "./scenarios.js"
import { pubsubScenarios } from "./scenarios.js"

export interface PubsubConfig {
  readonly warmupMs: number
  readonly windowMs: number
  readonly inflight: number
  readonly maxLag: number
  readonly burst: number
  readonly scenarios: ReadonlyArray<string> | undefined
  readonly subscriberNodeArgs: ReadonlyArray<string>
  readonly publisherNodeArgs: ReadonlyArray<string>
  /**
   * Subscriber on CPU 0, publisher on CPU 1, as the rpc group pins server and client (`BENCH_PIN=0`: not
   * pinned), so each side's CPU per event is measured on the same core every run. On the project's VMs the
   * same scenario still moves up to 2× between runs, mostly on CPU 1 (pinned runs: effect-micro-http
   * publisher 6.6–14.1 µs/event, subscriber 3.5–3.8).
   */
  readonly pin: boolean
}

export interface PubsubRow {
  readonly scenario: string
  readonly eventsPerSec: number
  readonly delivered: number
  readonly published: number
  readonly windowMs: number
  readonly publisherCpuUsPerEvent: number
  readonly subscriberCpuUsPerEvent: number
  readonly publisherPeakRssMb: number
  readonly subscriberPeakRssMb: number
  readonly errors: number
  readonly firstError?: string | undefined
  readonly failure?: string | undefined
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const mark = async (child: Child, timeoutMs = 10_000): Promise<Array<string>> => {
  child.process.kill("SIGUSR2")
  return (await child.waitLine("MARK ", timeoutMs)).slice("MARK ".length).split(" ")
}

const measureOne = async (
  launcher: Launcher,
  config: PubsubConfig,
  scenario: PubsubScenario,
  nats: string | undefined
): Promise<PubsubRow> => {
  const common = { nats }
  const subscriber = startNode([
    ...config.subscriberNodeArgs,
    ...launcher.args("bench/pubsub/subscriber.ts"),
    scenario.name,
    JSON.stringify(common)
  ], config.pin ? 0 : undefined)
  let publisher: Child | undefined
  try {
    const ready = JSON.parse((await subscriber.waitLine("READY ", 30_000)).slice("READY ".length))
    publisher = startNode([
      ...config.publisherNodeArgs,
      ...launcher.args("bench/pubsub/publisher.ts"),
      scenario.name,
      JSON.stringify({
        ...common,
        inflight: scenario.inflight ?? config.inflight,
        maxLag: config.maxLag,
        burst: config.burst,
        subscriber: ready
      })
    ], config.pin ? 1 : undefined)
    await publisher.waitLine("READY", 30_000)
    await sleep(config.warmupMs)
    const pub0 = cpuTicks(publisher.pid)
    const sub0 = cpuTicks(subscriber.pid)
    const [delivered0, t0] = (await mark(subscriber)).map(Number) as [number, number]
    const [published0] = (await mark(publisher)).map(Number) as [number]
    await sleep(config.windowMs)
    const pub1 = cpuTicks(publisher.pid)
    const sub1 = cpuTicks(subscriber.pid)
    const [delivered1, t1] = (await mark(subscriber)).map(Number) as [number, number]
    const [published1s, errorsS, ...firstErrorParts] = await mark(publisher)
    const delivered = delivered1 - delivered0
    const elapsed = t1 - t0
    const usPerTick = 1e6 / clkTck()
    const perEvent = (ticks: number) => delivered === 0 ? NaN : (ticks * usPerTick) / delivered
    const firstError = JSON.parse(firstErrorParts.join(" ")) as string | null
    return {
      scenario: scenario.name,
      eventsPerSec: delivered / (elapsed / 1000),
      delivered,
      published: Number(published1s) - published0,
      windowMs: elapsed,
      publisherCpuUsPerEvent: perEvent(pub1 - pub0),
      subscriberCpuUsPerEvent: perEvent(sub1 - sub0),
      publisherPeakRssMb: statusKib(publisher.pid, "VmHWM") / 1024,
      subscriberPeakRssMb: statusKib(subscriber.pid, "VmHWM") / 1024,
      errors: Number(errorsS),
      ...(firstError !== null ? { firstError } : {})
    }
  } catch (error) {
    const failure = [
      String(error instanceof Error ? error.message : error),
      subscriber.stderrTail() && `subscriber stderr: ${subscriber.stderrTail()}`,
      publisher?.stderrTail() && `publisher stderr: ${publisher.stderrTail()}`
    ].filter(Boolean).join("\n")
    return {
      scenario: scenario.name,
      eventsPerSec: NaN,
      delivered: 0,
      published: 0,
      windowMs: NaN,
      publisherCpuUsPerEvent: NaN,
      subscriberCpuUsPerEvent: NaN,
      publisherPeakRssMb: NaN,
      subscriberPeakRssMb: NaN,
      errors: 0,
      failure
    }
  } finally {
    if (publisher !== undefined) await stop(publisher, 3000)
    await stop(subscriber, 3000)
  }
}

export const runPubsub = async (
  launcher: Launcher,
  config: PubsubConfig
): Promise<{ rows: Array<PubsubRow>; failure?: string }> => {
  const selected = pubsubScenarios.filter((s) => config.scenarios === undefined || config.scenarios.includes(s.name))
  if (selected.length === 0) return { rows: [] }
  console.log(
    `[pubsub] ${
      selected.map((s) => s.name).join(", ")
    }; warm-up ${config.warmupMs} ms, window ${config.windowMs} ms, ` +
      `${config.inflight} in flight (results), max lag ${config.maxLag} (fire-and-forget), ` +
      (config.pin ? "subscriber CPU 0, publisher CPU 1" : "not pinned")
  )
  let engine: Engine | undefined
  const rows: Array<PubsubRow> = []
  try {
    if (selected.some((s) => s.nats)) {
      try {
        engine = startEngine("nats")
      } catch (error) {
        const failure = `could not start nats-server: ${error instanceof Error ? error.message : error}`
        console.log(`  ${failure}`)
        if (selected.every((s) => s.nats)) return { rows, failure }
      }
    }
    for (const scenario of selected) {
      const row = scenario.nats && engine === undefined
        ? { ...emptyRow(scenario.name), failure: "no nats-server" }
        : await measureOne(launcher, config, scenario, engine?.address)
      rows.push(row)
      console.log(
        row.failure !== undefined
          ? `  ${scenario.name}: FAILED\n    ${row.failure.replace(/\n/g, "\n    ")}`
          : `  ${scenario.name}: ${fmt(row.eventsPerSec)} events/s (published ${fmt(row.published)}, delivered ${
            fmt(row.delivered)
          }), ` +
            `publisher ${fmt(row.publisherCpuUsPerEvent, 1)} µs/event, subscriber ${
              fmt(row.subscriberCpuUsPerEvent, 1)
            } µs/event` +
            (row.errors > 0 ? `, ${row.errors} errors: ${row.firstError}` : "")
      )
    }
    return { rows }
  } finally {
    try {
      engine?.stop()
    } catch (error) {
      console.log(`  stopping nats-server failed: ${error}`)
    }
  }
}

const emptyRow = (scenario: string): PubsubRow => ({
  scenario,
  eventsPerSec: NaN,
  delivered: 0,
  published: 0,
  windowMs: NaN,
  publisherCpuUsPerEvent: NaN,
  subscriberCpuUsPerEvent: NaN,
  publisherPeakRssMb: NaN,
  subscriberPeakRssMb: NaN,
  errors: 0
})

/**
 * For a scenario with a fixed publisher count (`…-64`, `…-1`), the row of `reference` with the same count
 * (`moleculer-tcp-64`, `raw-http-1`, ...).
 */
const samePublishers = (
  rows: ReadonlyArray<PubsubRow>,
  row: PubsubRow,
  reference = "moleculer-tcp"
): PubsubRow | undefined => {
  const count = /-(\d+)$/.exec(row.scenario)?.[1]
  return count === undefined || row.scenario.startsWith(reference)
    ? undefined
    : rows.find((r) => r.scenario === `${reference}-${count}` && r.failure === undefined)
}

export const pubsubTable = (rows: ReadonlyArray<PubsubRow>): string => {
  const find = (name: string) => rows.find((r) => r.scenario === name && r.failure === undefined)
  const tcp = find("moleculer-tcp")
  const mnats = find("moleculer-nats")
  const raw = find("raw-nats")
  const header = [
    "scenario",
    "events/s",
    "vs Moleculer TCP",
    "vs Moleculer TCP, same publishers",
    "vs raw HTTP, same publishers",
    "vs Moleculer NATS",
    "vs raw NATS",
    "publisher CPU µs/event",
    "subscriber CPU µs/event",
    "publisher peak RSS MB",
    "subscriber peak RSS MB",
    "errors"
  ]
  return [
    `| ${header.join(" | ")} |`,
    `|---|${header.slice(1).map(() => "---:").join("|")}|`,
    ...rows.map((row) =>
      `| ${
        [
          row.scenario,
          fmt(row.eventsPerSec),
          ratio(row.eventsPerSec, tcp?.eventsPerSec),
          ratio(row.eventsPerSec, samePublishers(rows, row)?.eventsPerSec),
          ratio(row.eventsPerSec, samePublishers(rows, row, "raw-http")?.eventsPerSec),
          ratio(row.eventsPerSec, mnats?.eventsPerSec),
          ratio(row.eventsPerSec, raw?.eventsPerSec),
          fmt(row.publisherCpuUsPerEvent, 1),
          fmt(row.subscriberCpuUsPerEvent, 1),
          fmt(row.publisherPeakRssMb, 1),
          fmt(row.subscriberPeakRssMb, 1),
          row.failure !== undefined ? "FAILED" : String(row.errors)
        ].join(" | ")
      } |`
    )
  ].join("\n")
}

/** The targets, one line each. */
export const pubsubSummary = (rows: ReadonlyArray<PubsubRow>): Array<string> => {
  const find = (name: string) => rows.find((r) => r.scenario === name && r.failure === undefined)
  const tcp = find("moleculer-tcp")
  const mnats = find("moleculer-nats")
  const raw = find("raw-nats")
  const lines: Array<string> = []
  for (const name of ["effect-micro-http", "effect-micro-http-64", "effect-micro-http-1", "effect-micro-http-ff"]) {
    const row = find(name)
    if (row !== undefined && tcp !== undefined) {
      const same = samePublishers(rows, row)
      const http = samePublishers(rows, row, "raw-http")
      lines.push(
        `- ${name}: ${ratio(row.eventsPerSec, tcp.eventsPerSec)} Moleculer TCP events/s (target ≥ 1.0×), ` +
          (same === undefined ? "" : `${ratio(row.eventsPerSec, same.eventsPerSec)} ${same.scenario}, `) +
          (http === undefined ? "" : `${ratio(row.eventsPerSec, http.eventsPerSec)} ${http.scenario}, `) +
          `publisher CPU ${ratio(row.publisherCpuUsPerEvent, tcp.publisherCpuUsPerEvent)}, subscriber CPU ${
            ratio(row.subscriberCpuUsPerEvent, tcp.subscriberCpuUsPerEvent)
          } Moleculer's`
      )
    }
  }
  // What a publisher awaiting an HTTP reply per event can reach at all, against Moleculer's emit (no reply).
  for (const name of ["raw-http-64", "raw-http-1"]) {
    const row = find(name)
    const same = row === undefined ? undefined : samePublishers(rows, row)
    if (row !== undefined && same !== undefined) {
      lines.push(
        `- ${name} (baseline, no broker): ${ratio(row.eventsPerSec, same.eventsPerSec)} ${same.scenario}: ` +
          `the ceiling of a publisher awaiting one HTTP reply per event`
      )
    }
  }
  const nats = find("effect-micro-nats")
  if (nats !== undefined && (mnats !== undefined || raw !== undefined)) {
    lines.push(
      `- effect-micro-nats: ${
        ratio(nats.eventsPerSec, mnats?.eventsPerSec)
      } Moleculer NATS events/s (target ≥ 1.0×), ` +
        `${ratio(nats.eventsPerSec, raw?.eventsPerSec)} raw NATS (target ≥ 0.5×)`
    )
  }
  return lines
}
