/**
 * The `micro` CLI against real services: two fixture services register over mdns on a private loopback port,
 * and the CLI runs as a child process (test/support/cli.ts), checked by its stdout, stderr and exit code.
 * Every one-shot invocation starts as soon as the services are up, three at a time; the tests then check their
 * results. Store and config commands need no services (the store is a file, config is local sources).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as JSONSchema from "effect/JSONSchema"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import * as cli from "../support/cli.js"
import { UnknownName } from "../support/contract.js"
import { type Child, spawnFixture } from "../support/processes.js"

const mdnsPort = 20000 + Math.floor(Math.random() * 20000)
const discovery = ["--mdns-interface", "127.0.0.1", "--mdns-port", String(mdnsPort)]
const fixture = "test/process/fixtures/rpcServer.ts"

/** A command that looks services up, on the test's private mdns. */
const micro = (args: ReadonlyArray<string>, stdin = "") => cli.run([...args, ...discovery], { stdin })

const scratch = mkdtempSync(path.join(tmpdir(), "micro-cli-"))
const storeArgs = ["--store", path.join(scratch, "store.db")]
const configFile = path.join(scratch, "app.yaml")
writeFileSync(configFile, "db:\n  host: a\n  port: 5432\n")

let scope: Scope.CloseableScope
let testing: Child
let other: Child
let subscriber: Child

/** Every invocation, started together once the services are up (the pool runs three at a time). */
const runs = {
  services: () => micro(["services"]),
  servicesJson: () => micro(["services", "--json"]),
  describeJson: () => micro(["describe", "testing", "--json"]),
  health: () => micro(["health", "--json"]),
  stats: () => micro(["stats", "testing", "--json"]),
  ok: () => micro(["call", "testing", "Hello", `{"name":"Ada"}`, "--json"]),
  msgpack: () => micro(["call", "testing", "Hello", `{"name":"Ada"}`, "--content-type", "application/msgpack"]),
  endpointError: () => micro(["call", "testing", "Hello", `{"name":"nobody"}`]),
  unknownEndpoint: () => micro(["call", "testing", "Nope", "{}"]),
  unknownService: () => micro(["call", "nosuch", "Hello", "{}"]),
  badJson: () => micro(["call", "testing", "Hello", "{bad"]),
  invalid: () => micro(["call", "testing", "Hello", `{"nom":1}`]),
  countdown: () => micro(["call", "testing", "Countdown", `{"from":2}`]),
  sum: () => micro(["call", "testing", "Sum"], "1\n2\n3\n"),
  chat: () => micro(["call", "other", "Chat", "-"], `"x"\n"y"\n`),
  metadata: () => micro(["call", "testing", "WhoAmI", "--metadata", "tenant=acme", "--timeout", "2s", "--json"]),
  badLine: () => micro(["call", "testing", "Sum"], "1\nx\n"),
  publish: () => micro(["publish", "cli.test", `{"id":"a","n":1}`, "--json"]),
  bench: () => micro(["bench", "testing", "Hello", `{"name":"Ada"}`, "-n", "200", "-c", "4", "--json"]),
  benchStream: () => micro(["bench", "testing", "Countdown", "{}"]),
  completions: () => cli.run(["--completions", "bash"]),
  // One record's life, in order, on an embedded store file (the store is a backend, not a service).
  store: async () => ({
    put: await cli.run(["store", "put", "user/1", `{"n":1}`, ...storeArgs]),
    putStdin: await cli.run(["store", "put", "user/2", "--ttl", "1m", "-m", "a=b", ...storeArgs], { stdin: "hello" }),
    get: await cli.run(["store", "get", "user/1", ...storeArgs]),
    prefix: await cli.run(["store", "get", "user/", "--prefix", "--json", ...storeArgs]),
    missing: await cli.run(["store", "get", "nope", ...storeArgs]),
    deleted: await cli.run(["store", "delete", "user/1", ...storeArgs]),
    list: await cli.run(["store", "list", "--json", ...storeArgs])
  }),
  config: () => cli.run(["config", "get", "-s", configFile, "-s", "env:APP", "--json"], { env: { APP_DB_HOST: "b" } }),
  configPath: () => cli.run(["config", "get", "db.port", "-s", `file:${configFile}`]),
  configMissing: () => cli.run(["config", "get", "db.nope", "-s", configFile]),
  configNoSource: () => cli.run(["config", "get"])
}
let results: { [K in keyof typeof runs]: ReturnType<typeof runs[K]> }

beforeAll(async () => {
  scope = await Effect.runPromise(Scope.make())
  ;[testing, other, subscriber] = await Effect.runPromise(
    Effect.all([
      spawnFixture(fixture, { NODE_ID: "t1", MDNS_PORT: String(mdnsPort) }),
      spawnFixture(fixture, { NODE_ID: "o1", SERVICE: "other", MDNS_PORT: String(mdnsPort) }),
      spawnFixture("test/process/fixtures/brokerSubscriber.ts", { TOPIC: "cli.test", MDNS_PORT: String(mdnsPort) })
    ], { concurrency: 3 }).pipe(Scope.extend(scope))
  )
  results = Object.fromEntries(
    Object.entries(runs).map(([name, run]) => [name, run()])
  ) as typeof results
})

afterAll(async () => {
  cli.cleanup()
  await Effect.runPromise(Scope.close(scope, Exit.void))
  rmSync(scratch, { recursive: true, force: true })
})

// The tests wait on the shared pool of invocations, so each may wait for the others' runs.
describe("micro CLI", { timeout: 90_000 }, () => {
  it("services, describe (nodes, endpoints, JSON Schemas), health, stats; --json parses", async () => {
    const [services, servicesJson, describeJson, health, stats] = await Promise.all([
      results.services,
      results.servicesJson,
      results.describeJson,
      results.health,
      results.stats
    ])
    expect(services.code).toBe(0)
    expect(cli.lines(services.stdout)[0]).toMatch(/^NAME\s+KIND\s+VERSIONS\s+NODES$/)
    expect(services.stdout).toMatch(/other\s+service\s+latest\s+1/)
    expect(services.stdout).toMatch(/testing\s+service\s+latest\s+1/)
    expect(services.stdout).toMatch(/cli\.test\s+subscription\s+1\s+1/)
    expect(servicesJson.code).toBe(0)
    // The broker subscriber is in the registry too (the HTTP broker advertises subscriptions there).
    const listed = JSON.parse(servicesJson.stdout) as Array<{ name: string }>
    expect(listed.filter((service) => service.name === "other" || service.name === "testing")).toEqual([
      { name: "other", kind: "service", versions: ["latest"], nodes: 1 },
      { name: "testing", kind: "service", versions: ["latest"], nodes: 1 }
    ])
    expect(listed).toContainEqual(expect.objectContaining({ kind: "subscription", nodes: 1 }))

    expect(describeJson.code).toBe(0)
    const description = JSON.parse(describeJson.stdout)
    expect(description.nodes).toEqual([
      expect.objectContaining({ id: "t1", address: testing.ready, version: "latest" })
    ])
    const byName = Object.fromEntries(description.endpoints.map((e: { name: string }) => [e.name, e]))
    expect(Object.keys(byName).sort()).toEqual(
      ["Boom", "Bytes", "Chat", "Countdown", "Echo", "Hello", "Sleep", "Sum", "WhoAmI"]
    )
    expect(byName.Sum.shape).toBe("client-stream")
    expect(byName.Chat.shape).toBe("bidi")
    expect(byName.Hello.request).toMatchObject({
      type: "object",
      required: ["name"],
      properties: { name: { type: "string" } }
    })
    expect(byName.Hello.response).toMatchObject({ type: "string" })
    expect(byName.Hello.error).toMatchObject({ $ref: "#/$defs/UnknownName" })
    // Exactly the contract's Schemas as effect/JSONSchema renders them.
    expect(byName.Hello.request).toEqual(JSONSchema.make(Schema.Struct({ name: Schema.String })))
    expect(byName.Hello.response).toEqual(JSONSchema.make(Schema.String))
    expect(byName.Hello.error).toEqual(JSONSchema.make(UnknownName))
    // The fixture subscribes to no typed topic (test/Debug.test.ts covers the topics list).
    expect(description.topics).toEqual([])

    // Every service's every node, broker subscriptions excepted (they answer no RPC).
    expect(health.code).toBe(0)
    expect(JSON.parse(health.stdout)).toHaveLength(2)
    expect(JSON.parse(health.stdout)).toEqual(expect.arrayContaining([
      expect.objectContaining({ service: "testing", node: "t1", address: testing.ready, status: "serving" }),
      expect.objectContaining({ service: "other", node: "o1", address: other.ready, status: "serving" })
    ]))
    expect(stats.code).toBe(0)
    const [nodeStats] = JSON.parse(stats.stdout)
    expect(nodeStats).toMatchObject({ service: "testing", node: "t1" })
    expect(nodeStats.endpoints.map((e: { endpoint: string }) => e.endpoint)).toContain("Hello")
  })

  it("call: unary, server stream, client stream from stdin, bidi; errors and exit codes", async () => {
    const [ok, endpointError, unknownEndpoint, unknownService, badJson, invalid, countdown, sum, chat, metadata] =
      await Promise.all([
        results.ok,
        results.endpointError,
        results.unknownEndpoint,
        results.unknownService,
        results.badJson,
        results.invalid,
        results.countdown,
        results.sum,
        results.chat,
        results.metadata
      ])
    expect(ok).toMatchObject({ code: 0, stdout: "\"Hello, Ada!\"\n" })
    expect(await results.msgpack).toMatchObject({ code: 0, stdout: "\"Hello, Ada!\"\n" })

    expect(endpointError.code).toBe(1)
    expect(JSON.parse(endpointError.stderr)).toEqual({ _tag: "UnknownName", name: "nobody" })

    expect(unknownEndpoint.code).toBe(3)
    expect(JSON.parse(unknownEndpoint.stderr)).toMatchObject({ _tag: "NotFound", code: 404 })
    expect(unknownService.code).toBe(3)
    expect(JSON.parse(unknownService.stderr)).toMatchObject({ _tag: "ServiceNotFound", code: 404 })

    expect(badJson.code).toBe(64)
    expect(JSON.parse(badJson.stderr)).toMatchObject({ _tag: "UsageError" })
    expect(invalid.code).toBe(2)
    const badRequest = JSON.parse(invalid.stderr)
    expect(badRequest).toMatchObject({ _tag: "BadRequest", code: 400, id: "testing", status: "Bad Request" })
    expect(Object.keys(badRequest)).toEqual(expect.arrayContaining(["id", "code", "detail", "status", "_tag"]))

    expect(countdown.code).toBe(0)
    expect(cli.lines(countdown.stdout)).toEqual(["2", "1", "0"])
    expect(sum).toMatchObject({ code: 0, stdout: "6\n" })
    expect(chat.code).toBe(0)
    expect(cli.lines(chat.stdout).map((line) => JSON.parse(line))).toEqual(["echo: x", "echo: y", "goodbye"])
    expect(metadata.code).toBe(0)
    expect(JSON.parse(metadata.stdout)).toMatchObject({ tenant: "acme", endpoint: "WhoAmI" })
  })

  it("a bad stdin line is a usage error (exit 64)", async () => {
    const badLine = await results.badLine
    expect(badLine.code).toBe(64)
    expect(JSON.parse(badLine.stderr)).toMatchObject({ _tag: "UsageError", detail: expect.stringContaining("line 2") })
  })

  it("publish: the HTTP broker delivers to a subscriber found over mdns", async () => {
    const published = await results.publish
    expect(published).toMatchObject({ code: 0, stderr: "" })
    expect(JSON.parse(published.stdout)).toEqual({ topic: "cli.test", published: true })
    const line = await subscriber.waitForLine((line) => line.startsWith("MSG "))
    expect(JSON.parse(line.slice(4))).toMatchObject({
      topic: "cli.test",
      body: `{"id":"a","n":1}`,
      contentType: "application/json"
    })
  })

  it("subscribe tails a topic: it registers, then prints each message as one JSON line", async () => {
    const tail = cli.start(["subscribe", "cli.tail", "--count", "1", "--json", ...discovery])
    await tail.stderrLine(/^subscribed to cli\.tail$/)
    const published = await micro(["publish", "cli.tail", `{"id":"t"}`, "-m", "k=v"])
    expect(published.code).toBe(0)
    const done = await tail.exited
    expect(done.code).toBe(0)
    expect(JSON.parse(done.stdout)).toEqual({
      topic: "cli.tail",
      contentType: "application/json",
      headers: { k: "v" },
      payload: { id: "t" }
    })
  })

  it("bench: calls/s and latency percentiles of a unary endpoint; streams are refused", async () => {
    const [bench, benchStream] = await Promise.all([results.bench, results.benchStream])
    expect(bench.code).toBe(0)
    const report = JSON.parse(bench.stdout)
    expect(report).toMatchObject({
      service: "testing",
      endpoint: "Hello",
      concurrency: 4,
      calls: 200,
      succeeded: 200,
      failed: 0
    })
    expect(report.perSecond).toBeGreaterThan(0)
    expect(report.latencyMillis.p50).toBeGreaterThan(0)
    expect(report.latencyMillis.p50).toBeLessThanOrEqual(report.latencyMillis.p99)
    expect(report.latencyMillis.p99).toBeLessThanOrEqual(report.latencyMillis.max)
    expect(benchStream.code).toBe(64)
    expect(JSON.parse(benchStream.stderr)).toMatchObject({
      _tag: "UsageError",
      detail: expect.stringContaining("server-stream")
    })
  })

  it("store: put (argument, stdin with ttl and metadata), get, get --prefix, list, delete; absent key exits 3", async () => {
    const store = await results.store
    expect(store.put.code).toBe(0)
    expect(store.putStdin.code).toBe(0)
    expect(store.get).toMatchObject({ code: 0, stdout: `{"n":1}` })
    expect(store.prefix.code).toBe(0)
    const [first, second] = JSON.parse(store.prefix.stdout)
    expect(first).toEqual({ key: "user/1", value: `{"n":1}`, metadata: {} })
    expect(second).toMatchObject({ key: "user/2", value: "hello", metadata: { a: "b" } })
    expect(second.expiresInMillis).toBeGreaterThan(0)
    expect(second.expiresInMillis).toBeLessThanOrEqual(60_000)
    expect(store.missing.code).toBe(3)
    expect(JSON.parse(store.missing.stderr)).toMatchObject({
      _tag: "StoreError",
      code: 404,
      status: "NotFound",
      key: "nope"
    })
    expect(store.deleted.code).toBe(0)
    expect(JSON.parse(store.list.stdout)).toEqual(["user/2"])
  })

  it("config: sources merged in order (file, then env), a path, a missing path (3), no source (64), watch", async () => {
    const [merged, atPath, missing, noSource] = await Promise.all([
      results.config,
      results.configPath,
      results.configMissing,
      results.configNoSource
    ])
    expect(merged.code).toBe(0)
    expect(JSON.parse(merged.stdout)).toMatchObject({ db: { host: "b", port: 5432 } })
    expect(atPath).toMatchObject({ code: 0, stdout: "5432\n" })
    expect(missing.code).toBe(3)
    expect(JSON.parse(missing.stderr)).toMatchObject({ _tag: "DynamicConfigError", status: "Missing" })
    expect(noSource.code).toBe(64)

    const watch = cli.start(["config", "watch", "db.port", "-s", configFile, "--count", "2"])
    expect(await watch.stdoutLines(1)).toEqual(["5432"])
    writeFileSync(configFile, "db:\n  host: a\n  port: 6000\n")
    const done = await watch.exited
    expect(done.code).toBe(0)
    expect(cli.lines(done.stdout)).toEqual(["5432", "6000"])
  })

  it("--completions prints a shell completion script", async () => {
    const completions = await results.completions
    expect(completions.code).toBe(0)
    expect(completions.stdout).toContain("_micro_bash_completions")
    expect(completions.stdout).toContain("subscribe")
  })
})
