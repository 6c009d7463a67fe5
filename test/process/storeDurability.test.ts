/**
 * The embedded store loses no acknowledged write when its process is SIGKILLed: a child writes and
 * prints each acknowledged key, is killed mid-stream, and every acknowledged key must be in the file
 * when it is reopened (and the file must pass SQLite's integrity check).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Store from "../../src/Store.js"
import { transpiled } from "../support/transpiled.js"

const fixture = path.resolve(import.meta.dirname, "fixtures/storeWriter.ts")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-durability-"))
const children = new Set<ChildProcess>()
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
  fs.rmSync(dir, { recursive: true, force: true })
})

interface Run {
  readonly acked: ReadonlyArray<string>
  readonly signal: NodeJS.Signals | null
}

/**
 * Starts the writer, lets it acknowledge at least `minAcks` writes plus a random delay, SIGKILLs it. On a
 * loaded machine (CI runs this beside the soak test and the engines) the writer can be many times slower:
 * after `enough.afterMillis` it is killed once it has acknowledged `enough.acks`, so the run stays bounded
 * while every acknowledged write is still checked.
 */
const writeAndKill = (
  filename: string,
  synchronous: "FULL" | "NORMAL",
  minAcks: number,
  enough: { readonly afterMillis: number; readonly acks: number } = { afterMillis: Infinity, acks: minAcks }
): Promise<Run> =>
  new Promise((resolve, reject) => {
    const started = Date.now()
    const child = spawn(process.execPath, [transpiled(fixture), filename, synchronous], {
      cwd: path.resolve(import.meta.dirname, "../.."),
      stdio: ["ignore", "pipe", "pipe"]
    })
    children.add(child)
    let out = ""
    let err = ""
    let acks = 0
    let killScheduled = false
    const guard = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error(`writer acknowledged ${acks} writes in 20 s, fewer than ${enough.acks}; stderr: ${err}`))
    }, 20_000)
    child.stdout!.setEncoding("utf8")
    child.stdout!.on("data", (chunk: string) => {
      out += chunk
      acks += chunk.split("ACK ").length - 1
      if (!killScheduled && (acks >= minAcks || (acks >= enough.acks && Date.now() - started >= enough.afterMillis))) {
        killScheduled = true
        setTimeout(() => child.kill("SIGKILL"), Math.floor(Math.random() * 50))
      }
    })
    child.stderr!.on("data", (chunk) => {
      err += String(chunk)
    })
    child.on("exit", (_code, signal) => {
      clearTimeout(guard)
      children.delete(child)
      // Only complete lines: a line cut by the kill was not fully acknowledged to us.
      const acked = out.split("\n").filter((line) => line.startsWith("ACK ")).map((line) => line.slice(4))
      resolve({ acked, signal })
    })
    child.on("error", reject)
  })

const verify = (filename: string, acked: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const store = yield* Store.makeSqlite({ filename })
    const keys = new Set(yield* store.list())
    const missing = acked.filter((key) => !keys.has(key))
    expect(missing).toEqual([])
    // Values and metadata are whole, not torn.
    for (const key of acked.slice(-20)) {
      const [record] = yield* store.read(key)
      expect(new TextDecoder().decode(record!.value)).toBe(`value of ${key}`)
      expect(record!.metadata.i).toBe(Number(key.split("/")[1]))
    }
    return keys.size
  })

// fsync per commit (FULL) is much slower on this kind of disk; both counts keep each run to a few seconds.
const minAcks = { FULL: 100, NORMAL: 300 } as const

describe("embedded store durability (SIGKILL)", () => {
  for (const synchronous of ["FULL", "NORMAL"] as const) {
    it.live(`synchronous=${synchronous}: every acknowledged write survives two kills`, () =>
      Effect.gen(function*() {
        const filename = path.join(dir, `store-${synchronous}.db`)
        const acked: Array<string> = []
        for (const round of [0, 1]) {
          const run = yield* Effect.promise(() =>
            writeAndKill(filename, synchronous, minAcks[synchronous] + round * 50)
          )
          expect(run.signal).toBe("SIGKILL")
          expect(run.acked.length).toBeGreaterThanOrEqual(minAcks[synchronous])
          for (const key of run.acked) acked.push(key)
        }
        const integrity = yield* Effect.scoped(
          Effect.flatMap(
            SqliteClient.make({ filename, readonly: true, disableWAL: true }),
            (sql) => sql<{ integrity_check: string }>`PRAGMA integrity_check`
          )
        ).pipe(Effect.provide(Reactivity.layer))
        expect(integrity).toEqual([{ integrity_check: "ok" }])
        const stored = yield* Effect.scoped(verify(filename, acked))
        // Kill rounds overwrite the same keys (w0/0...), so the file holds at least the distinct acked keys.
        expect(stored).toBeGreaterThanOrEqual(new Set(acked).size)
      }), 60_000)
  }

  it.live(
    "watch sees every write another process made to the file, in its order, within the watch interval",
    () =>
      Effect.gen(function*() {
        const filename = path.join(dir, "watch", "store.db")
        const store = yield* Store.makeSqlite({ filename, synchronous: "NORMAL", watchInterval: "50 millis" })
        const seen: Array<string> = []
        const seenKeys = new Set<string>()
        yield* store.watch().pipe(
          Stream.runForEach((change) =>
            Effect.sync(() => {
              if (change.type !== "write") return
              seen.push(change.key)
              seenKeys.add(change.key)
            })
          ),
          Effect.forkScoped
        )
        // The subscription starts asynchronously: a probe written here must come through first.
        const probe = (key: string) => Effect.sync(() => seenKeys.has(key))
        yield* store.write({ key: "probe", value: new Uint8Array([1]) }).pipe(
          Effect.zipRight(Effect.sleep("20 millis")),
          Effect.zipRight(probe("probe")),
          Effect.repeat({ until: (ok) => ok }),
          Effect.timeout("5 seconds")
        )
        const run = yield* Effect.promise(() =>
          writeAndKill(filename, "NORMAL", 2000, { afterMillis: 8_000, acks: 300 })
        )
        expect(run.acked.length).toBeGreaterThanOrEqual(300)
        const missing = () => run.acked.filter((key) => !seenKeys.has(key))
        yield* Effect.sync(() => missing().length).pipe(
          Effect.zipLeft(Effect.sleep("50 millis")),
          Effect.repeat({ until: (n) => n === 0 }),
          Effect.timeout("10 seconds"),
          Effect.catchAll(() => Effect.sync(() => expect(missing().slice(0, 5)).toEqual([])))
        )
        // Each writer fiber's keys arrive in the order it wrote them.
        for (const writer of [0, 1, 2, 3]) {
          const order = seen.filter((key) => key.startsWith(`w${writer}/`)).map((key) => Number(key.split("/")[1]))
          expect(order).toEqual([...order].sort((a, b) => a - b))
        }
      }).pipe(Effect.scoped),
    40_000
  )
})
