/**
 * mdns between processes: a child process (the fixture) registers a service; this process
 * resolves it by name. SIGKILL → it disappears within its TTL; SIGTERM → goodbye, it disappears at once.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import * as MdnsRegistry from "../../src/MdnsRegistry.js"
import { eventually } from "../support/eventually.js"
import { liveWatch, uniqueName } from "../support/registryContract.js"
import { transpiled } from "../support/transpiled.js"

const port = 20000 + Math.floor(Math.random() * 20000)
const options: MdnsRegistry.MdnsRegistryOptions = {
  ...MdnsRegistry.loopback,
  port,
  queryTimeout: "300 millis",
  queryRetries: 3
}
const fixture = path.resolve(import.meta.dirname, "fixtures/mdns-service.ts")

/** Spawns the fixture and waits for its READY line; the child is always killed when the scope closes. */
const child = (service: string, ttlMillis: number, nodePort: number) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const proc = spawn(process.execPath, [transpiled(fixture)], {
        env: {
          ...process.env,
          MDNS_PORT: String(port),
          SERVICE: service,
          TTL_MS: String(ttlMillis),
          NODE_PORT: String(nodePort)
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
      let stderr = ""
      proc.stderr!.on("data", (d) => (stderr += d))
      proc.stdout!.on("data", (d: Buffer) => {
        if (d.toString().includes("READY")) resume(Effect.succeed(proc))
      })
      proc.once("exit", (code) => resume(Effect.fail(new Error(`fixture exited (${code}) before READY: ${stderr}`))))
      return Effect.sync(() => proc.kill("SIGKILL"))
    }).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("fixture did not become ready") })),
    (proc) => Effect.sync(() => proc.exitCode === null && proc.signalCode === null && proc.kill("SIGKILL"))
  )

const exited = (proc: ChildProcess) =>
  Effect.async<void>((resume) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resume(Effect.void)
    proc.once("exit", () => resume(Effect.void))
  })

describe("mdns across processes", () => {
  it.scopedLive(
    "resolves a service registered by another process; SIGKILL → gone within its TTL",
    () =>
      Effect.gen(function*() {
        const registry = yield* MdnsRegistry.make(options)
        const name = uniqueName("proc")
        const ttl = 2000
        const proc = yield* child(name, ttl, 4555)
        const [service] = yield* registry.getService(name)
        expect(service!.nodes.map((n) => n.address)).toEqual(["127.0.0.1:4555"])
        expect(service!.metadata.pid).toBe(String(proc.pid))
        expect(service!.endpoints).toEqual([{ name: "Echo.Call", metadata: {} }])

        // survives past its TTL while the child keeps renewing
        yield* Effect.sleep(ttl + 500)
        expect((yield* registry.getService(name))[0]!.nodes).toHaveLength(1)

        // A second registry in this process registers the probes that show the watch is live.
        const events = yield* liveWatch(registry, yield* MdnsRegistry.make(options), name)
        const killedAt = Date.now()
        proc.kill("SIGKILL")
        yield* exited(proc)
        yield* eventually(Ref.get(events), Chunk.some((e) => e.type === "delete"), ttl + 1500).pipe(
          Effect.mapError(() => new Error("not expired"))
        )
        const after = Date.now() - killedAt
        expect(after).toBeLessThanOrEqual(ttl + 1500)
        expect((yield* Effect.flip(registry.getService(name)))._tag).toBe("ServiceNotFound")
      }),
    40_000
  )

  it.scopedLive("a graceful exit (SIGTERM) sends goodbye: gone at once", () =>
    Effect.gen(function*() {
      const registry = yield* MdnsRegistry.make(options)
      const name = uniqueName("graceful")
      const proc = yield* child(name, 60_000, 4556)
      yield* registry.getService(name)
      const events = yield* liveWatch(registry, yield* MdnsRegistry.make(options), name)
      const stoppedAt = Date.now()
      proc.kill("SIGTERM")
      yield* eventually(Ref.get(events), Chunk.some((e) => e.type === "delete"), "3 seconds").pipe(
        Effect.mapError(() => new Error("no goodbye"))
      )
      expect(Date.now() - stoppedAt).toBeLessThan(3000)
      yield* exited(proc).pipe(Effect.timeout("5 seconds"))
      expect((yield* Effect.flip(registry.getService(name)))._tag).toBe("ServiceNotFound")
    }), 40_000)
})
