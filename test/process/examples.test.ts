/**
 * Every example runs as its README says and prints what it promises (bounded; one at a time in this file).
 * Processes run as `node --import tsx` so that a timeout kills the real process.
 */
import { afterAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { bundle as bundleFile } from "../../scripts/bundle.js"

const root = path.resolve(import.meta.dirname, "../..")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-examples-"))
const running = new Set<ChildProcess>()
afterAll(() => {
  for (const child of running) child.kill("SIGKILL")
  fs.rmSync(dir, { recursive: true, force: true })
})

interface Run {
  readonly code: number | null
  readonly output: string
}

/** Node's arguments for `file`: TypeScript through tsx, a bundle (`.mjs`) as it is. */
const nodeArgs = (file: string) => file.endsWith(".mjs") ? [file] : ["--import", "tsx", file]

/** `entry` bundled into one ES module in `into` (no node_modules there), as docs/deploying.md does it. */
const bundle = (entry: string, into: string): string =>
  bundleFile(entry, path.join(into, path.basename(entry).replace(/\.ts$/, ".mjs")))

/** Runs `node [--import tsx] <file> ...args` to completion (killed after `timeoutMillis`). */
const run = (
  file: string,
  args: ReadonlyArray<string> = [],
  env: Record<string, string> = {},
  timeoutMillis = 60_000
) =>
  new Promise<Run>((resolve) => {
    const child = spawn(process.execPath, [...nodeArgs(file), ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    running.add(child)
    let output = ""
    child.stdout!.on("data", (chunk) => (output += String(chunk)))
    child.stderr!.on("data", (chunk) => (output += String(chunk)))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMillis)
    child.on("exit", (code) => {
      clearTimeout(timer)
      running.delete(child)
      resolve({ code, output })
    })
  })

/** Starts a long-running example and resolves once its output contains `ready`. */
const start = (file: string, ready: string, env: Record<string, string> = {}) =>
  new Promise<ChildProcess>((resolve, reject) => {
    const child = spawn(process.execPath, nodeArgs(file), {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    running.add(child)
    let output = ""
    const timer = setTimeout(() => reject(new Error(`${file} not ready in time: ${output}`)), 30_000)
    const onData = (chunk: Buffer) => {
      output += String(chunk)
      if (output.includes(ready)) {
        clearTimeout(timer)
        resolve(child)
      }
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    child.on("exit", () => running.delete(child))
  })

const expectRun = (result: Run, ...lines: ReadonlyArray<string>) => {
  expect(result.code, result.output).toBe(0)
  for (const line of lines) expect(result.output).toContain(line)
}

describe("examples run as their READMEs say", () => {
  it("demo (the main job): services discover each other; every call succeeds through a SIGKILL", async () => {
    expectRun(await run("examples/demo/main.ts", [], {}, 90_000), "all 400 calls succeeded")
  }, 100_000)

  it("greeter: a server in the background, the client's four call shapes", async () => {
    const server = await start("examples/greeter/server.ts", "serving on", { NODE_NAME: `greeter-ex-${process.pid}` })
    try {
      expectRun(await run("examples/greeter/client.ts", ["Ada"]), "Hello → ", "Countdown → ", "Chat → ")
    } finally {
      server.kill("SIGTERM")
    }
  }, 60_000)

  it(
    "greeter, bundled (docs/deploying.md): server and client each one file, run where there is no node_modules",
    async () => {
      const into = fs.mkdtempSync(path.join(dir, "bundle-"))
      const serverFile = bundle("examples/greeter/server.ts", into)
      const clientFile = bundle("examples/greeter/client.ts", into)
      const server = await start(serverFile, "serving on", { NODE_NAME: `greeter-bundled-${process.pid}` })
      try {
        expectRun(await run(clientFile, ["Ada"]), "Hello → ", "Countdown → ", "Chat → ")
      } finally {
        server.kill("SIGTERM")
      }
    },
    60_000
  )

  it("pubsub: each order billed once across the queue group", async () => {
    expectRun(await run("examples/pubsub/main.ts"), "each order billed once: true")
  }, 70_000)

  it("auth: anonymous callers refused, a foreign certificate cannot connect", async () => {
    expectRun(await run("examples/auth/main.ts"), "anonymous → Balance: Unauthorized")
  }, 70_000)

  it("store: the counter survives restarts of the program", async () => {
    const env = { STORE_FILE: path.join(dir, "store", "store.db") }
    expectRun(await run("examples/store/main.ts", [], env), "this program has run 1 time(s)")
    expectRun(await run("examples/store/main.ts", [], env), "this program has run 2 time(s)")
  }, 70_000)

  it("config: edits of the file are picked up while it runs", async () => {
    expectRun(await run("examples/config/demo.ts"), "greeting -> ")
  }, 70_000)
})
