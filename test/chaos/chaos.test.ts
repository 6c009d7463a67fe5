/**
 * The chaos suite: real node processes on loopback, 16 callers in this process with the default client
 * (selector, retries, timeouts, ejection), failures injected under load. One file, so the scenarios run one
 * after the other (vitest runs files in parallel; two chaos files would skew each other's figures).
 *
 * Static registry (as mdns/etcd keep listing a dead node until its TTL runs out):
 *   (a) SIGKILL one of three nodes while it stays listed;
 *   (b) SIGSTOP one of three nodes (TCP still accepts, nothing answers) for 10 s, then SIGCONT.
 * A real etcd (TTL 10 s, renewed every 2 s), resolved through the cached registry (kept fresh by the watch):
 *   (c) rolling restart of all three nodes with drain: start a replacement, wait until the client sees it,
 *       SIGTERM the old node (deregister → stop accepting → GOAWAY → drain → exit), next;
 *   (d) etcd itself restarted under load (SIGTERM, 1 s down, started again on the same port and data).
 *
 * Figures are printed as `CHAOS ...` lines (docs/reliability.md). `CHAOS_SELECTOR=random` runs the same
 * scenarios with another selector, for comparison (the assertions then say how it fares).
 *
 *   npx vitest run test/chaos
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as CachedRegistry from "../../src/CachedRegistry.js"
import { Client, Codec, Registry, Transport } from "../../src/index.js"
import { runtimeOf } from "../../src/internal/rpc/clientService.js"
import { Status } from "../../src/internal/rpc/nodeHealth.js"
import * as EtcdRegistry from "../../src/plugins/etcd/EtcdRegistry.js"
import { Testing } from "../support/contract.js"
import { type RunningEngine, startEngine } from "../support/engines.js"
import type { Child } from "../support/processes.js"
import { type Load, recordingSelector, report, spawnNode, spawnNodes, startLoad } from "./load.js"

const CALLERS = 16

const failureSummary = (load: Load) => {
  const summary: Record<string, number> = {}
  for (const failure of load.failures) {
    const key = `${failure.endpoint}:${failure.tag}`
    summary[key] = (summary[key] ?? 0) + 1
  }
  return summary
}

const loadAverage = () => os.loadavg().map((n) => Number(n.toFixed(1)))

const staticClient = (
  addresses: ReadonlyArray<string>,
  watched = { address: undefined as string | undefined, picks: [] as Array<number> }
) =>
  Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Transport.layerTcp(),
      Registry.layerStatic({ testing: addresses }),
      Codec.layer,
      recordingSelector(watched)
    ))
  )

describe("chaos: a node dies or hangs under load", () => {
  it.scopedLive(
    "(a) SIGKILL one of three nodes that stays listed: only non-idempotent calls in flight on it fail; ≥ 90 % of the survivors' capacity, no collapse",
    () =>
      Effect.gen(function*() {
        const nodes = yield* spawnNodes(["n1", "n2", "n3"])
        const addresses = nodes.map((n) => n.ready)
        // The survivors' capacity is measured at the same time, by a control client (its own runtime, the
        // same number of callers) that lists only the two survivors: on a shared 2-core machine throughput
        // drifts by ±30 % from one minute to the next, so only a concurrent control is a fair comparison.
        const control = yield* Layer.build(staticClient(addresses.slice(1)))
        const controlTesting = yield* Client.make(Testing, { service: "testing" }).pipe(Effect.provide(control))
        const figures = yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing" })
          const load = yield* startLoad(testing, CALLERS)
          const survivors = yield* startLoad(controlTesting, CALLERS)
          yield* load.warmUp()
          const before = load.rate(Date.now() - 1000, Date.now())
          const survivorsBefore = survivors.rate(Date.now() - 1000, Date.now())
          const killedAt = Date.now()
          nodes[0]!.kill("SIGKILL")
          yield* Effect.sleep(10_000)
          yield* load.stop
          yield* survivors.stop
          const after = load.rate(killedAt, killedAt + 10_000)
          const capacity = survivors.rate(killedAt, killedAt + 10_000)
          const perSecond = load.perSecond(killedAt, 10)
          const capacityPerSecond = survivors.perSecond(killedAt, 10)
          const client = runtimeOf(yield* Client.Client)
          const killed = client.health.peek(addresses[0]!)
          return {
            beforeKill: Math.round(before),
            survivorsBeforeKill: Math.round(survivorsBefore),
            after10s: Math.round(after),
            survivorsCapacity10s: Math.round(capacity),
            ratio: Number((after / capacity).toFixed(2)),
            minSecondRatio: Number(Math.min(...perSecond.map((n, i) => n / capacityPerSecond[i]!)).toFixed(2)),
            perSecond,
            capacityPerSecond,
            failures: failureSummary(load),
            controlFailures: survivors.failures.length,
            failureList: load.failures,
            killedNode: { status: killed?.status, ejections: killed?.ejections },
            loadAverage: loadAverage()
          }
        }).pipe(Effect.provide(staticClient(addresses)))
        const { failureList, ...printed } = figures
        report("(a) kill", printed)
        // Only Hello calls (not idempotent) that were on the killed node when it died may fail, as
        // TransportError (they may have run); Echo calls are retried elsewhere.
        for (const failure of failureList) {
          expect(failure.endpoint).toBe("Hello")
          expect(failure.tag).toBe("TransportError")
        }
        expect(failureList.length).toBeLessThanOrEqual(CALLERS)
        expect(figures.controlFailures).toBe(0)
        expect(figures.ratio).toBeGreaterThanOrEqual(0.9)
        // No collapse in any second, including after ejection times run out (1, 3, 7 s after the kill).
        expect(figures.minSecondRatio).toBeGreaterThanOrEqual(0.5)
        expect(figures.killedNode.status).not.toBe(Status.Closed)
        expect(figures.killedNode.ejections).toBeGreaterThanOrEqual(3)
      }),
    60_000
  )

  it.scopedLive(
    "(b) SIGSTOP one of three nodes for 10 s: new calls avoid it within 100 ms, ≥ 60 % throughput in the first second and ≥ 90 % after; it rejoins after SIGCONT",
    () =>
      Effect.gen(function*() {
        const nodes = yield* spawnNodes(["n1", "n2", "n3"])
        const addresses = nodes.map((n) => n.ready)
        const watched = { address: addresses[0], picks: [] as Array<number> }
        // Rates are compared with this client's own rate just before the hang (as the targets are stated).
        // No control here, unlike (a): an in-process one would share this event loop in proportion to calls
        // in flight (the calls stuck on the hung node are what is measured), and one in another process
        // speeds up when the frozen node stops using CPU (measured: +38 %), biasing the ratio the other way.
        const figures = yield* Effect.gen(function*() {
          const testing = yield* Client.make(Testing, { service: "testing" })
          const client = runtimeOf(yield* Client.Client)
          const load = yield* startLoad(testing, CALLERS)
          yield* load.warmUp()
          const before = load.rate(Date.now() - 2000, Date.now())
          const servedBefore = [...load.servedBy.entries()]
          const stoppedAt = Date.now()
          nodes[0]!.kill("SIGSTOP")
          // Calls already sent to it when it froze (they may fail: "only calls already sent to it are affected").
          const inFlightAtHang = client.health.peek(addresses[0]!)?.outstanding ?? 0
          let ejectedAfter = -1
          let stuckCallers = -1
          while (Date.now() - stoppedAt < 10_000) {
            yield* Effect.sleep(10)
            const hung = client.health.peek(addresses[0]!)
            if (ejectedAfter === -1 && hung?.status === Status.Open) {
              ejectedAfter = Date.now() - stoppedAt
              stuckCallers = hung.outstanding
            }
          }
          const resumedAt = Date.now()
          nodes[0]!.kill("SIGCONT")
          // It rejoins: it serves Echo calls again and its breaker closes.
          let rejoinedAfter = -1
          while (Date.now() - resumedAt < 5000) {
            yield* Effect.sleep(20)
            if (
              (load.lastServed.get("n1") ?? 0) > resumedAt &&
              client.health.peek(addresses[0]!)?.status === Status.Closed
            ) {
              rejoinedAfter = Date.now() - resumedAt
              break
            }
          }
          yield* Effect.sleep(500)
          yield* load.stop
          const picks = watched.picks.filter((at) => at >= stoppedAt && at < resumedAt).map((at) => at - stoppedAt)
          const ratio = (from: number, to: number) => Number((load.rate(from, to) / before).toFixed(2))
          return {
            beforeHang: Math.round(before),
            firstSecondRatio: ratio(stoppedAt, stoppedAt + 1000),
            afterFirstSecondRatio: ratio(stoppedAt + 1000, resumedAt),
            // The closed loop has fewer callers while some are stuck on the hung node (until their 5 s deadline):
            // the callers that are not stuck must keep their pre-hang rate...
            freeCallerRatio: Number(
              ((load.rate(stoppedAt + 1000, stoppedAt + 4500) / Math.max(1, CALLERS - stuckCallers)) /
                (before / CALLERS))
                .toFixed(2)
            ),
            // ...and once those deadlines have passed, the two survivors serve at least what they served before
            // (a quiet 2-core machine is server-bound: three nodes' rate is not reachable with two).
            survivorRatio: Number(
              (load.rate(stoppedAt + 5500, resumedAt) / (before * survivorShare(servedBefore, "n1"))).toFixed(2)
            ),
            perSecond: load.perSecond(stoppedAt, 10),
            // Callers whose call was on the node when it froze (or got there before its replies stopped).
            stuckCallers,
            ejectedAfterMs: ejectedAfter,
            inFlightAtHang,
            picksOfHungNode: picks.length,
            picksAfter100ms: picks.filter((at) => at > 100),
            picksFirst100ms: picks.filter((at) => at <= 100),
            rejoinedAfterMs: rejoinedAfter,
            failures: failureSummary(load),
            failureList: load.failures,
            loadAverage: loadAverage()
          }
        }).pipe(Effect.provide(staticClient(addresses, watched)))
        const { failureList, ...printed } = figures
        report("(b) hang", printed)
        expect(figures.firstSecondRatio).toBeGreaterThanOrEqual(0.6)
        // "≥ 90 % after 1 s", stated for callers and nodes that the hang does not involve (see the two ratios).
        expect(figures.freeCallerRatio).toBeGreaterThanOrEqual(0.9)
        expect(figures.survivorRatio).toBeGreaterThanOrEqual(0.9)
        // New calls avoid it within 100 ms: after that only its half-open trial calls reach it (ejected ≈ 0.5 s
        // after the hang for 1 s, then 2 s, 4 s …: at most a handful in 10 s).
        expect(figures.picksAfter100ms.filter((at) => at < 1000)).toEqual([])
        expect(figures.picksAfter100ms.length).toBeLessThanOrEqual(6)
        expect(figures.ejectedAfterMs).toBeGreaterThan(0)
        expect(figures.ejectedAfterMs).toBeLessThan(1500)
        // Only calls sent to it are affected: Hello calls on it fail (Timeout at their 5 s deadline, or the
        // connection reset when its PING probe gives up); Echo calls on it are retried elsewhere.
        for (const failure of failureList) {
          expect(failure.endpoint).toBe("Hello")
          expect(["Timeout", "TransportError"]).toContain(failure.tag)
        }
        // Every failure is a call that was on it when it froze or was sent to it afterwards (by the selector:
        // before its ejection, or as a half-open trial).
        expect(failureList.length).toBeLessThanOrEqual(figures.inFlightAtHang + figures.picksOfHungNode)
        expect(figures.rejoinedAfterMs).toBeGreaterThanOrEqual(0)
      }),
    60_000
  )
})

/** The share of Echo replies served before the hang by nodes other than `hung`. */
const survivorShare = (served: ReadonlyArray<readonly [string, number]>, hung: string): number => {
  const total = served.reduce((sum, [, count]) => sum + count, 0)
  const hungServed = served.find(([node]) => node === hung)?.[1] ?? 0
  return total === 0 ? 2 / 3 : (total - hungServed) / total
}

let etcd: RunningEngine
beforeAll(() => {
  etcd = startEngine("etcd")
})
afterAll(() => etcd?.stop())

const nodeEnv = () => ({
  ETCD_HOSTS: etcd.address,
  REGISTER_TTL_MS: "10000",
  REGISTER_INTERVAL_MS: "2000",
  DRAIN_MS: "5000"
})

const spawnRegistered = (id: string) => spawnNode(id, nodeEnv())

const etcdClient = () =>
  Client.layer().pipe(
    Layer.provide(Layer.mergeAll(
      Transport.layerTcp(),
      CachedRegistry.layer().pipe(Layer.provide(EtcdRegistry.layer({ hosts: etcd.address, timeout: "1 second" }))),
      Codec.layer,
      recordingSelector({ address: undefined, picks: [] })
    ))
  )

/** The addresses the client currently resolves for the service (through its cached registry). */
const listed = Effect.flatMap(Client.Client, (client) =>
  runtimeOf(client).registry.getService("testing").pipe(
    Effect.map((versions) => new Set(versions.flatMap((v) => v.nodes.map((n) => n.address)))),
    Effect.orElseSucceed(() => new Set<string>())
  ))

/** Waits (bounded) until the client's view of the service satisfies `ok`. */
const until = (ok: (addresses: Set<string>) => boolean, what: string, millis = 15_000) =>
  Effect.gen(function*() {
    const started = Date.now()
    while (!ok(yield* listed)) {
      if (Date.now() - started > millis) return yield* Effect.die(new Error(`not within ${millis} ms: ${what}`))
      yield* Effect.sleep(25)
    }
    return Date.now() - started
  })

/** Stops etcd and starts it again on the same port and data dir (same command line); returns the downtime. */
const restartEtcd = (downMillis: number) =>
  Effect.gen(function*() {
    const pidFile = `${etcd.dir}/pid`
    const pid = Number(fs.readFileSync(pidFile, "utf8").trim())
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((arg) => arg.length > 0)
    const stoppedAt = Date.now()
    process.kill(pid, "SIGTERM")
    while (isAlive(pid)) yield* Effect.sleep(20)
    yield* Effect.sleep(downMillis)
    const log = fs.openSync(`${etcd.dir}/log`, "a")
    const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", log, log] })
    child.unref()
    fs.closeSync(log)
    fs.writeFileSync(pidFile, `${child.pid}\n`) // engines.sh stop kills it
    while (!etcdHealthy()) yield* Effect.sleep(50)
    return { downMillis: Date.now() - stoppedAt }
  })

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const etcdHealthy = () => {
  try {
    execFileSync("etcdctl", [`--endpoints=${etcd.address}`, "endpoint", "health"], {
      env: { ...process.env, ETCDCTL_API: "3" },
      stdio: "ignore",
      timeout: 2000
    })
    return true
  } catch {
    return false
  }
}

describe("chaos: discovery under load", () => {
  it.scopedLive("(c) rolling restart of all three nodes with drain: zero failed calls", () =>
    Effect.gen(function*() {
      const first = yield* Effect.all([spawnRegistered("n1"), spawnRegistered("n2"), spawnRegistered("n3")], {
        concurrency: "unbounded"
      })
      const figures = yield* Effect.gen(function*() {
        yield* until((a) => first.every((n) => a.has(n.ready)), "the three nodes are listed")
        const testing = yield* Client.make(Testing, { service: "testing" })
        const load = yield* startLoad(testing, CALLERS)
        yield* load.warmUp()
        const before = load.rate(Date.now() - 1000, Date.now())
        const startedAt = Date.now()
        const steps: Array<{ node: string; seenAfterMs: number; drainMs: number; exitCode: number | null }> = []
        const replacements: Array<Child> = []
        for (const [i, old] of first.entries()) {
          const replacement = yield* spawnRegistered(`n${i + 1}b`)
          replacements.push(replacement)
          const seenAfterMs = yield* until((a) => a.has(replacement.ready), `replacement n${i + 1}b is listed`)
          const stopping = Date.now()
          old.kill("SIGTERM")
          const exitCode = yield* Effect.promise(() => old.exited)
          steps.push({ node: `n${i + 1}`, seenAfterMs, drainMs: Date.now() - stopping, exitCode })
          yield* until((a) => !a.has(old.ready), `n${i + 1} is no longer listed`)
        }
        const doneAt = Date.now()
        yield* Effect.sleep(1000)
        yield* load.stop
        return {
          beforeRestart: Math.round(before),
          duringRestart: Math.round(load.rate(startedAt, doneAt)),
          perSecond: load.perSecond(startedAt, Math.floor((doneAt - startedAt) / 1000)),
          restartMs: doneAt - startedAt,
          steps,
          served: Object.fromEntries(load.servedBy),
          newNodesServing: ["n1b", "n2b", "n3b"].every((id) => (load.lastServed.get(id) ?? 0) > doneAt),
          failures: failureSummary(load),
          failureList: load.failures.slice(0, 10),
          loadAverage: loadAverage()
        }
      }).pipe(Effect.provide(etcdClient()))
      report("(c) rolling restart", figures)
      for (const step of figures.steps) expect(step.exitCode).toBe(0)
      expect(figures.newNodesServing).toBe(true)
      expect(Math.min(...figures.perSecond)).toBeGreaterThan(0)
      // Depends on the server answering OPENs that race its GOAWAY with a retryable 503 (issue 24).
      expect(figures.failures).toEqual({})
    }), 90_000)

  it.scopedLive(
    "(d) etcd restarted under load: zero failed calls (the cache serves meanwhile)",
    () =>
      Effect.gen(function*() {
        const nodes = yield* Effect.all([spawnRegistered("e1"), spawnRegistered("e2"), spawnRegistered("e3")], {
          concurrency: "unbounded"
        })
        const figures = yield* Effect.gen(function*() {
          yield* until((a) => nodes.every((n) => a.has(n.ready)), "the three nodes are listed")
          const testing = yield* Client.make(Testing, { service: "testing" })
          const load = yield* startLoad(testing, CALLERS)
          yield* load.warmUp()
          const before = load.rate(Date.now() - 1000, Date.now())
          const restartAt = Date.now()
          const { downMillis } = yield* restartEtcd(1000)
          const upAt = Date.now()
          yield* Effect.sleep(3000)
          const stalls = load.buckets.map((n, i) => [load.startedAt + i * 100 - restartAt, n] as const)
            .filter(([at, n]) => at >= 0 && n < 0.2 * before / 10)
          // Registrations survived (same data dir) or were renewed: the client still sees the three nodes.
          const relistedAfterMs = yield* until(
            (a) => nodes.every((n) => a.has(n.ready)),
            "the three nodes are listed again"
          )
          yield* load.stop
          return {
            beforeRestart: Math.round(before),
            etcdDownMs: downMillis,
            duringAndAfter: Math.round(load.rate(restartAt, upAt + 3000)),
            perSecond: load.perSecond(restartAt, Math.floor((upAt + 3000 - restartAt) / 1000)),
            relistedAfterMs,
            etcdUpAfterMs: upAt - restartAt,
            stalled100msBuckets: stalls.map(([at]) => at),
            failures: failureSummary(load),
            failureList: load.failures.slice(0, 10),
            loadAverage: loadAverage()
          }
        }).pipe(Effect.provide(etcdClient()))
        report("(d) etcd restart", figures)
        expect(figures.failures).toEqual({})
        // Not asserted: throughput while etcd starts up. The cached registry refetches every lookup once its
        // watch broke, and a fetch against an etcd that listens but is not ready yet blocks all calls for up
        // to the registry timeout (1 s here): `stalled100msBuckets` shows it (docs/reliability.md, known issues).
      }),
    90_000
  )
})
