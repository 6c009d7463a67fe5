/**
 * The `micro` CLI against real services: two fixture services register over mdns on a private loopback port,
 * and the CLI runs as a child process (`node --import tsx src/cli/main.ts`), checked by its stdout, stderr
 * and exit code. Every invocation starts as soon as the services are up, three at a time, to keep the file
 * under a minute; the tests then check their results.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { type Child, spawnFixture } from "../support/processes.js"

const root = path.resolve(import.meta.dirname, "../..")
const mdnsPort = 20000 + Math.floor(Math.random() * 20000)
const discovery = ["--mdns-interface", "127.0.0.1", "--mdns-port", String(mdnsPort)]
const fixture = "test/process/fixtures/rpcServer.ts"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const running = new Set<ChildProcess>()

// Each run starts tsx (≈2.5 s of CPU): more than three at once only slows every one of them on 2 cores.
const slots = 3
let free = slots
const waiting: Array<() => void> = []
const limited = async <A>(run: () => Promise<A>): Promise<A> => {
  if (free === 0) await new Promise<void>((wake) => waiting.push(wake))
  else free--
  try {
    return await run()
  } finally {
    const next = waiting.shift()
    if (next) next()
    else free++
  }
}

/** Runs the CLI to completion with `stdin` as its input (killed after 30 s). */
const micro = (args: ReadonlyArray<string>, stdin = "") => limited(() => start(args, stdin))

const start = (args: ReadonlyArray<string>, stdin: string) =>
  new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args, ...discovery], {
      cwd: root,
      stdio: ["pipe", "pipe", "pipe"]
    })
    running.add(child)
    let stdout = ""
    let stderr = ""
    child.stdout!.on("data", (chunk) => (stdout += String(chunk)))
    child.stderr!.on("data", (chunk) => (stderr += String(chunk)))
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
    child.once("exit", (code) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code, stdout, stderr })
    })
    child.stdin!.end(stdin)
  })

const lines = (text: string) => text.split("\n").filter((line) => line !== "")

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
  publish: () => micro(["publish", "cli.test", `{"id":"a","n":1}`, "--json"])
}
let results: { [K in keyof typeof runs]: Promise<Run> }

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
  for (const child of running) child.kill("SIGKILL")
  await Effect.runPromise(Scope.close(scope, Exit.void))
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
    expect(lines(services.stdout)[0]).toMatch(/^NAME\s+KIND\s+VERSIONS\s+NODES$/)
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
    expect(lines(countdown.stdout)).toEqual(["2", "1", "0"])
    expect(sum).toMatchObject({ code: 0, stdout: "6\n" })
    expect(chat.code).toBe(0)
    expect(lines(chat.stdout).map((line) => JSON.parse(line))).toEqual(["echo: x", "echo: y", "goodbye"])
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
})
