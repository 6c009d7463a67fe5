/**
 * Health, stats and metrics of a server in another process: over its own protocol (`Client.health`,
 * `Client.stats`, in JSON and protobuf) and over its HTTP probe port, with `/metrics` parsed by the
 * Prometheus project's own Python parser (Debian's python3-prometheus-client); readiness during a drain
 * started by SIGTERM.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { spawnSync } from "node:child_process"
import { Client, Codec, Registry, Selector, Transport } from "../../src/index.js"
import { Testing } from "../support/contract.js"
import { eventually } from "../support/eventually.js"
import { spawnFixture } from "../support/processes.js"

const fixture = "test/process/fixtures/rpcServer.ts"

const clientLayer = (address: string) =>
  Client.layer().pipe(
    Layer.provide(
      Layer.mergeAll(Transport.layerTcp(), Registry.layerStatic({ testing: [address] }), Codec.layer, Selector.layer)
    )
  )

const get = (address: string, path: string) =>
  Effect.promise(async () => {
    const response = await fetch(`http://${address}${path}`)
    return { status: response.status, body: await response.text() }
  })

interface Family {
  readonly name: string
  readonly type: string
  readonly samples: ReadonlyArray<
    { readonly name: string; readonly labels: Record<string, string>; readonly value: number }
  >
}

/** Parses Prometheus text with prometheus_client (raises on anything outside the format). */
const parseExposition = (text: string): ReadonlyArray<Family> => {
  const script = [
    "import sys, json",
    "from prometheus_client.parser import text_string_to_metric_families",
    "out = [{'name': f.name, 'type': f.type, 'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value}",
    "        for s in f.samples]} for f in text_string_to_metric_families(sys.stdin.read())]",
    "print(json.dumps(out))"
  ].join("\n")
  // Debian's interpreter, where the package is installed (scripts/engines.sh install promparse).
  const result = spawnSync("/usr/bin/python3", ["-c", script], { input: text, encoding: "utf8" })
  if (result.status !== 0) throw new Error(`prometheus_client rejected the exposition: ${result.stderr}`)
  return JSON.parse(result.stdout)
}

const sample = (families: ReadonlyArray<Family>, name: string, labels: Record<string, string>) =>
  families.flatMap((f) => f.samples).find((s) =>
    s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value)
  )?.value

describe("Debug across processes", () => {
  it.scopedLive("health and stats over RPC (JSON and protobuf), /metrics valid for Prometheus's parser", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "d1", HTTP_PROBE: "1" })
      const probe = server.lines.find((line) => line.startsWith("PROBE "))!.slice(6)
      yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        for (let i = 0; i < 5; i++) yield* testing.Hello({ name: "Ada" })
        yield* Effect.flip(testing.Hello({ name: "nobody" }))
        yield* Effect.flip(testing.Boom({ message: "x" }))

        const health = yield* Client.health("testing")
        expect(health).toMatchObject({ status: "serving", service: "testing", node: "d1" })
        const viaProtobuf = yield* Client.health("testing", { contentType: "application/protobuf" })
        expect(viaProtobuf.status).toBe("serving")
        const stats = yield* Client.stats("testing", { contentType: "application/protobuf" })
        expect(stats.endpoints.find((e) => e.endpoint === "Hello")).toMatchObject({
          started: 6,
          succeeded: 5,
          failed: 1,
          inFlight: 0
        })

        const metrics = yield* get(probe, "/metrics")
        expect(metrics.status).toBe(200)
        const families = parseExposition(metrics.body)
        const types = Object.fromEntries(families.map((f) => [f.name, f.type]))
        // prometheus_client names counter families without their `_total` suffix.
        expect(types).toMatchObject({
          micro_server_calls: "counter",
          micro_server_calls_in_flight: "gauge",
          micro_server_call_duration_seconds: "histogram",
          micro_server_connections: "gauge",
          micro_broker_published: "counter",
          process_resident_memory_bytes: "gauge",
          nodejs_eventloop_delay_seconds: "gauge",
          nodejs_gc: "counter",
          micro_registry_lookups: "counter"
        })
        const hello = { service: "testing", node: "d1", endpoint: "Hello" }
        expect(sample(families, "micro_server_calls_total", { ...hello, outcome: "succeeded" })).toBe(5)
        expect(sample(families, "micro_server_calls_total", { ...hello, outcome: "failed", code: "error" })).toBe(1)
        expect(sample(families, "micro_server_calls_total", { ...hello, outcome: "succeeded", code: "ok" })).toBe(5)
        expect(
          sample(families, "micro_server_calls_total", { service: "testing", endpoint: "Boom", outcome: "failed" })
        ).toBe(1)
        expect(stats.endpoints.find((e) => e.endpoint === "Boom")!.failedByCode).toEqual({ "500": 1 })
        expect(sample(families, "micro_server_call_duration_seconds_count", hello)).toBe(6)
        expect(sample(families, "micro_server_call_duration_seconds_bucket", { ...hello, le: "+Inf" })).toBe(6)
        expect(sample(families, "micro_server_connections", {})).toBeGreaterThanOrEqual(1)
        expect(sample(families, "process_resident_memory_bytes", {})).toBeGreaterThan(10_000_000)
      }).pipe(Effect.provide(clientLayer(server.ready)))
    }))

  it.scopedLive("Describe tells the contract (shapes, JSON Schemas, digest); dynamic calls in every shape", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "d3" })
      yield* Effect.gen(function*() {
        const description = yield* Client.describe("testing")
        expect(description.service).toBe("testing")
        expect(description.digest).toMatch(/^[0-9a-f]{16}$/)
        const byName = Object.fromEntries(description.endpoints.map((e) => [e.name, e]))
        expect(Object.keys(byName).sort()).toEqual(
          ["Boom", "Bytes", "Chat", "Countdown", "Echo", "Hello", "Sleep", "Sum", "WhoAmI"]
        )
        expect(byName.Hello).toMatchObject({ shape: "unary", idempotent: false })
        expect(byName.Echo!.idempotent).toBe(true)
        expect(byName.Countdown!.shape).toBe("server-stream")
        expect(byName.Sum!.shape).toBe("client-stream")
        expect(byName.Chat!.shape).toBe("bidi")
        // The JSON Schemas match the contract's Schemas.
        expect(JSON.parse(byName.Hello!.request)).toMatchObject({
          type: "object",
          required: ["name"],
          properties: { name: { type: "string" } }
        })
        expect(JSON.parse(byName.Hello!.error)).toMatchObject({
          $ref: "#/$defs/UnknownName",
          $defs: { UnknownName: { type: "object", required: ["name", "_tag"] } }
        })
        expect(JSON.parse(byName.Countdown!.response)).toMatchObject({ type: "number" })

        const client = yield* Client.dynamic("testing")
        const unary = client.methods.Hello as (input: unknown) => Effect.Effect<unknown, any>
        const serverStream = client.methods.Countdown as (input: unknown) => Stream.Stream<unknown, any>
        const clientStream = client.methods.Sum as (input: Stream.Stream<unknown>) => Effect.Effect<unknown, any>
        const bidi = client.methods.Chat as (input: Stream.Stream<unknown>) => Stream.Stream<unknown, any>
        expect(yield* unary({ name: "Ada" })).toBe("Hello, Ada!")
        // Endpoint errors arrive as their JSON value; invalid input is the server's BadRequest.
        expect(yield* Effect.flip(unary({ name: "nobody" }))).toEqual({ _tag: "UnknownName", name: "nobody" })
        expect((yield* Effect.flip(unary({ nom: 1 })))._tag).toBe("BadRequest")
        expect(Chunk.toReadonlyArray(yield* Stream.runCollect(serverStream({ from: 2 })))).toEqual([2, 1, 0])
        expect(yield* clientStream(Stream.make(1, 2, 3))).toBe(6)
        const chat = yield* Stream.runCollect(bidi(Stream.make("x")))
        expect(Chunk.toReadonlyArray(chat)).toEqual(["echo: x", "goodbye"])
      }).pipe(Effect.provide(clientLayer(server.ready)))
    }))

  it.scopedLive("SIGTERM: /ready 503 for the whole drain, /health answers until the process exits", () =>
    Effect.gen(function*() {
      const server = yield* spawnFixture(fixture, { NODE_ID: "d2", HTTP_PROBE: "1", DRAIN_MS: "10000" })
      const probe = server.lines.find((line) => line.startsWith("PROBE "))!.slice(6)
      expect((yield* get(probe, "/ready")).status).toBe(200)
      yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        const call = yield* Effect.fork(testing.Sleep({ millis: 2000 }))
        yield* Effect.promise(() => server.waitForLine((line) => line === "EVENT sleep-started:2000"))
        server.kill("SIGTERM")
        const notReady = yield* eventually(get(probe, "/ready"), (ready) => ready.status === 503)
        expect(JSON.parse(notReady.body).status).toBe("draining")
        const alive = yield* get(probe, "/health")
        expect(alive.status).toBe(200)
        // The call in flight finishes: the drain waited for it.
        expect(yield* Fiber.join(call)).toBe("slept 2000")
        expect(yield* Effect.promise(() => server.exited)).toBe(0)
        const after = yield* Effect.promise(() => fetch(`http://${probe}/health`).then(() => "open", () => "closed"))
        expect(after).toBe("closed")
      }).pipe(Effect.provide(clientLayer(server.ready)))
    }))
})
