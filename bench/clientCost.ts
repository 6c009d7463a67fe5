/**
 * Diagnostic: client-side CPU per call for variants of the call path, against a bench server process
 * (64 worker fibers calling in a loop, as the bench's Effect clients do).
 *   npx tsx bench/clientCost.ts
 * CLIENT_COST_ONLY=<regex> keeps the variants whose label matches; CLIENT_COST_ROUNDS (default 2), CLIENT_COST_N
 * (calls per variant, default 100000). CLIENT_COST_ALLOC=1 adds KB allocated per call (V8's sampling heap
 * profiler, counting objects already collected): steadier than CPU on a shared machine, but it slows the run.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Runtime from "effect/Runtime"
import { spawn } from "node:child_process"
import { Session } from "node:inspector/promises"
import * as Client from "../src/Client.js"
import * as Codec from "../src/Codec.js"
import { runtimeOf } from "../src/internal/rpc/clientService.js"
import { encodeCallHeader } from "../src/internal/rpc/wire.js"
import * as Registry from "../src/Registry.js"
import * as Selector from "../src/Selector.js"
import * as Transport from "../src/Transport.js"
import { Bench, serviceName } from "./contract.js"
import { payload } from "./payload.js"

const server = spawn(process.execPath, ["--import", "tsx", "bench/servers/effectMicro.ts"], {
  stdio: ["ignore", "pipe", "inherit"]
})
// Never leave the server behind, however this process ends.
process.on("exit", () => server.kill("SIGKILL"))
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(1))
const address = await new Promise<string>((resolve) => {
  server.stdout!.on("data", (d: Buffer) => {
    const m = d.toString().match(/READY (\S+)/)
    if (m) resolve(m[1]!)
  })
})

const Live = Client.layer().pipe(
  Layer.provide(
    Layer.mergeAll(
      Registry.layerStatic({ [serviceName]: [address] }),
      Selector.layer,
      Transport.layerTcp(),
      Codec.layer
    )
  )
)
const managed = ManagedRuntime.make(Live)
const runtime = await managed.runtime()
const runFork = Runtime.runFork(runtime)

let failures = 0
const only = process.env.CLIENT_COST_ONLY === undefined ? undefined : new RegExp(process.env.CLIENT_COST_ONLY)
const rounds = Number(process.env.CLIENT_COST_ROUNDS ?? 2)
const calls = Number(process.env.CLIENT_COST_N ?? 100_000)
const session = process.env.CLIENT_COST_ALLOC === "1" ? new Session() : undefined
session?.connect()
const startAlloc = () =>
  session?.post("HeapProfiler.startSampling", {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true
  })
/** Bytes allocated (sampled) since startAlloc, as " ... KB/call", or "" when not measuring. */
const stopAlloc = async (n: number): Promise<string> => {
  if (session === undefined) return ""
  const { profile } = await session.post("HeapProfiler.getSamplingProfile")
  await session.post("HeapProfiler.stopSampling")
  const total = (node: { selfSize: number; children: ReadonlyArray<any> }): number =>
    node.children.reduce((sum, child) => sum + total(child), node.selfSize)
  return ` ${(total(profile.head) / n / 1024).toFixed(1).padStart(5)} KB/call`
}
const report = async (label: string, n: number, cpu: NodeJS.CpuUsage, ms: number) => {
  const alloc = await stopAlloc(n)
  console.log(
    `${label.padEnd(44)} ${((cpu.user + cpu.system) / n).toFixed(1).padStart(6)} µs/call CPU ${
      String(Math.round(n / ms * 1000)).padStart(7)
    } calls/s${alloc}${failures > 0 ? ` (${failures} failures)` : ""}`
  )
  failures = 0
}
/** Client CPU per call with `inflight` worker fibers each calling in a loop (as the bench's Effect clients do). */
const measure = (label: string, call: () => Effect.Effect<unknown, unknown>, n = calls, inflight = 64) =>
  new Promise<void>((done) => {
    if (only !== undefined && !only.test(label)) return done()
    startAlloc()
    let started = 0
    let finished = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const loop: Effect.Effect<void> = Effect.suspend(() => {
      if (started >= n) return Effect.void
      started++
      return Effect.flatMap(Effect.exit(call()), (exit) => {
        if (Exit.isFailure(exit)) failures++
        if (++finished === n) {
          const cpu = process.cpuUsage(cpu0)
          const ms = performance.now() - t0
          report(label, n, cpu, ms).then(done)
        }
        return loop
      })
    })
    for (let i = 0; i < inflight; i++) runFork(loop)
  })

const runPromise = Runtime.runPromise(runtime)
/** The same from Promise code: each call is `runtime.runPromise(call())`, `inflight` callers awaiting in a loop. */
const measurePromise = (label: string, call: () => Effect.Effect<unknown, unknown>, n = calls, inflight = 64) =>
  measureAsync(label, () => runPromise(call()), n, inflight)

/** Promise code calling a Promise API: `inflight` callers awaiting `call()` in a loop. */
const measureAsync = (label: string, call: () => Promise<unknown>, n = calls, inflight = 64) =>
  new Promise<void>((done) => {
    if (only !== undefined && !only.test(label)) return done()
    startAlloc()
    let started = 0
    let finished = 0
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const next = (): void => {
      if (started >= n) return
      started++
      call().catch(() => failures++).then(() => {
        if (++finished === n) {
          const cpu = process.cpuUsage(cpu0)
          const ms = performance.now() - t0
          report(label, n, cpu, ms).then(done)
        } else next()
      })
    }
    for (let i = 0; i < inflight; i++) next()
  })

const direct = await managed.runPromise(Client.make(Bench, { service: serviceName, node: address }))
const viaRegistry = await managed.runPromise(Client.make(Bench, { service: serviceName }))
const lean = await managed.runPromise(
  Client.make(Bench, { service: serviceName, node: address, retry: false, timeout: 0 })
)
const promiseClient = await managed.runPromise(Client.makePromise(Bench, { service: serviceName }))
const codec = Codec.json.compile(Bench.requests.get("Echo")!.payloadSchema as any)
await managed.runPromise(direct.Echo(payload))
const service = runtimeOf(await managed.runPromise(Client.Client))
const connection = service.pool.peek(address)!
const header = encodeCallHeader({
  service: serviceName,
  endpoint: "Echo",
  contentType: "application/json",
  metadata: {}
})
const body = (codec.encode(payload) as any).right as Uint8Array
const rawCall = (decode: boolean) => () =>
  Effect.async<unknown>((resume) => {
    connection.open(header, 0, 32, decode ? (codec.encode(payload) as any).right : body, {
      onReply: (reply) => resume(Effect.succeed(decode ? codec.decode(reply) : reply)),
      onError: () => resume(Effect.die("error")),
      onClosed: () => resume(Effect.die("closed")),
      onData: () => {},
      onEnd: () => {},
      onCredit: () => {}
    })
  })
for (let round = 0; round < rounds; round++) {
  await measure("floor: Effect.async resumed on setImmediate", () =>
    Effect.async<void>((resume) => {
      setImmediate(() => resume(Effect.void))
    }))
  await measure("floor: Effect.async resumed on microtask", () =>
    Effect.async<void>((resume) => {
      queueMicrotask(() => resume(Effect.void))
    }))
  await measure("raw: Effect.async + connection.open", rawCall(false))
  await measure("raw: + encode/decode", rawCall(true))
  await measure("typed client, node option", () => direct.Echo(payload))
  await measure("typed client, static registry + selector", () => viaRegistry.Echo(payload))
  await measure("typed client, no retry/deadline", () => lean.Echo(payload))
  await measure(
    "floor: Effect.sync(encode+decode)",
    () => Effect.sync(() => codec.decode((codec.encode(payload) as any).right))
  )
  await measurePromise("promise floor: runPromise(Effect.void)", () => Effect.void)
  await measurePromise("promise: raw Effect.async + connection.open", rawCall(false))
  await measurePromise("promise: typed client, static registry", () => viaRegistry.Echo(payload))
  await measureAsync("promise client (makePromise), static registry", () => promiseClient.Echo(payload))
}
await managed.dispose()
server.kill()
