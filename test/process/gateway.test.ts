/**
 * The gateway as an operator runs it: two nodes of a service in child processes (TCP, mdns on a private
 * loopback port), `micro gateway` in another process, and `curl` as the HTTP client (a unary call, `curl -N`
 * for SSE). Killing one node: the calls keep being answered by the other.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as cli from "../support/cli.js"
import { spawnFixture } from "../support/processes.js"

const mdnsPort = 20000 + Math.floor(Math.random() * 20000)
const fixture = "test/process/fixtures/rpcServer.ts"

const startGateway = cli.gateway(["--mdns-interface", "127.0.0.1", "--mdns-port", String(mdnsPort)], 30_000)

/** Runs curl (bounded); its stdout. */
const curl = (args: ReadonlyArray<string>) =>
  Effect.async<{ stdout: string; code: number | null }, Error>((resume) => {
    const child = execFile("curl", ["-s", "--max-time", "10", ...args], (error, stdout) => {
      resume(Effect.succeed({ stdout, code: error === null ? 0 : (error.code as number | null) ?? null }))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const postJson = (url: string, body: string, extra: ReadonlyArray<string> = []) =>
  curl(["-X", "POST", "-H", "content-type: application/json", "-d", body, ...extra, url])

describe("gateway (processes)", { timeout: 90_000 }, () => {
  it.scopedLive("micro gateway serves curl: unary JSON, SSE with -N; a killed node's calls go to the other", () =>
    Effect.gen(function*() {
      const [t1] = yield* Effect.all([
        spawnFixture(fixture, { NODE_ID: "t1", MDNS_PORT: String(mdnsPort) }),
        spawnFixture(fixture, { NODE_ID: "t2", MDNS_PORT: String(mdnsPort) })
      ], { concurrency: 2 })
      const base = yield* startGateway

      // mdns: the gateway sees both nodes once their announcements arrived.
      const seen = new Set<string>()
      const deadline = Date.now() + 20_000
      while (seen.size < 2 && Date.now() < deadline) {
        const reply = yield* postJson(`${base}/testing/Echo`, `{"text":"hi"}`)
        if (reply.code === 0 && reply.stdout.startsWith("{")) seen.add(JSON.parse(reply.stdout).node)
      }
      expect([...seen].sort()).toEqual(["t1", "t2"])

      const hello = yield* postJson(`${base}/testing/Hello`, `{"name":"Ada"}`, ["-w", "\\n%{http_code}"])
      expect(hello.stdout).toBe(`"Hello, Ada!"\n200`)
      const typed = yield* postJson(`${base}/testing/Hello`, `{"name":"nobody"}`, ["-w", "\\n%{http_code}"])
      const [typedBody, typedStatus] = typed.stdout.split("\n")
      expect(JSON.parse(typedBody!)).toEqual({ _tag: "UnknownName", name: "nobody" })
      expect(typedStatus).toBe("422")

      const sse = yield* postJson(`${base}/testing/Countdown`, `{"from":3}`, ["-N"])
      expect(sse.stdout).toBe("data: 3\n\ndata: 2\n\ndata: 1\n\ndata: 0\n\n")

      // One node dies: every later call is still answered (refused dials are retried on the other node).
      t1.kill("SIGKILL")
      yield* Effect.promise(() => t1.exited)
      const nodes: Array<string> = []
      for (let i = 0; i < 20; i++) {
        const reply = yield* postJson(`${base}/testing/Echo`, `{"text":"after"}`, ["-w", "\\n%{http_code}"])
        const [body, status] = reply.stdout.split("\n")
        expect(status, body).toBe("200")
        nodes.push(JSON.parse(body!).node)
        const unary = yield* postJson(`${base}/testing/Hello`, `{"name":"Bo"}`)
        expect(unary.stdout).toBe(`"Hello, Bo!"`)
      }
      expect(new Set(nodes)).toEqual(new Set(["t2"]))
    }))
})
