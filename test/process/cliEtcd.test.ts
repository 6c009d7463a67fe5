/**
 * The `micro` CLI with etcd discovery and an etcd config source: a real etcd on loopback (scripts/engines.sh),
 * a fixture service registered in it, and the CLI as a child process with `--registry etcd --etcd` or the same
 * from `MICRO_REGISTRY` / `MICRO_ETCD`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { Etcd3 } from "etcd3"
import * as cli from "../support/cli.js"
import { type RunningEngine, startEngine } from "../support/engines.js"
import { type Child, spawnFixture } from "../support/processes.js"

let etcd: RunningEngine
let scope: Scope.CloseableScope
let inventory: Child
let results: Record<string, Promise<cli.Run>>

beforeAll(async () => {
  etcd = startEngine("etcd")
  const client = new Etcd3({ hosts: `http://${etcd.address}` })
  await client.put("/cfg/app/db/host").value("db.internal")
  await client.put("/cfg/app/db/port").value("5432")
  client.close()
  scope = await Effect.runPromise(Scope.make())
  inventory = await Effect.runPromise(
    spawnFixture("test/process/fixtures/rpcServer.ts", { NODE_ID: "i1", SERVICE: "inventory", ETCD: etcd.address })
      .pipe(Scope.extend(scope))
  )
  const flags = ["--registry", "etcd", "--etcd", etcd.address]
  const fromEnv = { env: { MICRO_REGISTRY: "etcd", MICRO_ETCD: etcd.address } }
  results = {
    services: cli.run(["services", "--json", ...flags]),
    call: cli.run(["call", "inventory", "Hello", `{"name":"Ada"}`, ...flags]),
    health: cli.run(["health", "inventory", "--json"], fromEnv),
    misspelt: cli.run(["call", "inventroy", "Hello", "{}"], fromEnv),
    config: cli.run(["config", "get", "db", "-s", "etcd:/cfg/app/", "--etcd", etcd.address, "--json"])
  }
}, 120_000)

afterAll(async () => {
  cli.cleanup()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  etcd.stop()
})

describe("micro CLI on etcd", { timeout: 90_000 }, () => {
  it("services, call and health find the service in etcd (flags or MICRO_* environment)", async () => {
    const services = await results.services!
    expect(services.code).toBe(0)
    expect(JSON.parse(services.stdout)).toContainEqual({
      name: "inventory",
      kind: "service",
      versions: ["latest"],
      nodes: 1
    })
    expect(await results.call).toMatchObject({ code: 0, stdout: "\"Hello, Ada!\"\n" })
    const health = await results.health!
    expect(health.code).toBe(0)
    expect(JSON.parse(health.stdout)).toEqual([
      expect.objectContaining({ service: "inventory", node: "i1", address: inventory.ready, status: "serving" })
    ])
  })

  it("an unknown service exits 3 and names the close one", async () => {
    const misspelt = await results.misspelt!
    expect(misspelt.code).toBe(3)
    expect(JSON.parse(misspelt.stderr)).toMatchObject({
      _tag: "ServiceNotFound",
      detail: expect.stringContaining("inventory")
    })
  })

  it("config get reads an etcd prefix as a tree", async () => {
    const config = await results.config!
    expect(config.code).toBe(0)
    expect(JSON.parse(config.stdout)).toEqual({ host: "db.internal", port: 5432 })
  })
})
