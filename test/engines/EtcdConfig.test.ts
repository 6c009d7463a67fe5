/**
 * The etcd config source against a real etcd (started by scripts/engines.sh on a free loopback port).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { Etcd3 } from "etcd3"
import { execFileSync } from "node:child_process"
import * as net from "node:net"
import * as path from "node:path"
import * as DynamicConfig from "../../src/DynamicConfig.js"
import * as EtcdConfigSource from "../../src/plugins/etcd/EtcdConfigSource.js"
import type { RunningEngine } from "../support/engines.js"
import { startEngine } from "../support/engines.js"
import { reader } from "../support/streams.js"

let etcd: RunningEngine
let client: Etcd3

beforeAll(() => {
  etcd = startEngine("etcd")
  client = new Etcd3({ hosts: `http://${etcd.address}` })
})

afterAll(() => {
  client?.close()
  etcd?.stop()
})

let prefixCounter = 0
const freshPrefix = () => `/effect-micro-test/${process.pid}-${++prefixCounter}/`
const put = (key: string, value: string) => Effect.promise(() => client.put(key).value(value).exec())
const del = (key: string) => Effect.promise(() => client.delete().key(key).exec())

const freePort = Effect.async<number>((resume) => {
  const server = net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const port = (server.address() as net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

const Db = Schema.Struct({ host: Schema.String, port: Schema.Number })

describe("EtcdConfigSource", () => {
  it("maps keys under the prefix to a tree", () => {
    expect(EtcdConfigSource.treeFromKeys("/app/", {
      "/app/": "{\"name\":\"svc\"}",
      "/app/db": "{\"host\":\"h\",\"port\":1}",
      "/app/db/port": "5432",
      "/app/db/user": "admin",
      "/app/flags/beta": "true",
      "/app/list": "[1,2]"
    })).toEqual({ name: "svc", db: { host: "h", port: 5432, user: "admin" }, flags: { beta: true }, list: [1, 2] })
    expect(() => EtcdConfigSource.treeFromKeys("/app/", { "/app/db": "{\"host\": " })).toThrow(/invalid JSON/)
  })

  it.scopedLive("reads the prefix, then follows puts and deletes; one emission per real change", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      yield* put(`${prefix}db`, JSON.stringify({ host: "h1", port: 5432 }))
      yield* put(`${prefix}other/key`, "x")
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: "default", port: 1 }, level: "info" }),
        EtcdConfigSource.make({ hosts: etcd.address, prefix })
      ])
      const db = yield* reader(config.watch("db", Db), "10 seconds")
      const level = yield* reader(config.watch("level", Schema.String), "10 seconds")
      expect(yield* db.next).toEqual({ host: "h1", port: 5432 })
      expect(yield* level.next).toBe("info")
      expect(yield* config.get("other.key", Schema.String)).toBe("x")

      yield* put(`${prefix}db/host`, "h2") // a nested key refines the JSON object
      expect(yield* db.next).toEqual({ host: "h2", port: 5432 })
      yield* put(`${prefix}db/host`, "h2") // same value: no emission
      yield* put(`${prefix}unrelated`, "1") // other paths: no emission on db
      yield* put(`${prefix}db/port`, "6543")
      expect(yield* db.next).toEqual({ host: "h2", port: 6543 })

      yield* put(`${prefix}level`, "debug")
      expect(yield* level.next).toBe("debug")
      yield* del(`${prefix}level`) // deleted: back to the earlier source's value
      expect(yield* level.next).toBe("info")
    }))

  it.scopedLive("a malformed value or one failing its schema keeps the last good value", () =>
    Effect.gen(function*() {
      const prefix = freshPrefix()
      yield* put(`${prefix}db`, JSON.stringify({ host: "h1", port: 1 }))
      const config = yield* DynamicConfig.make([EtcdConfigSource.make({ hosts: etcd.address, prefix })])
      const db = yield* reader(config.watch("db", Db), "10 seconds")
      const errors = yield* reader(config.errors, "10 seconds")
      expect(yield* db.next).toEqual({ host: "h1", port: 1 })
      const nextDb = yield* Effect.fork(db.next)

      yield* put(`${prefix}db`, "{\"host\": ")
      const parse = yield* errors.next
      expect([parse.reason, parse.source]).toEqual(["Parse", `etcd:${prefix}`])
      expect(yield* config.get("db.host", Schema.String)).toBe("h1")

      yield* put(`${prefix}db`, JSON.stringify({ host: "h1", port: "not a port" }))
      const invalid = yield* errors.next
      expect([invalid.reason, invalid.path]).toEqual(["InvalidValue", "db"])

      yield* put(`${prefix}db`, JSON.stringify({ host: "h3", port: 3 }))
      expect(yield* Fiber.join(nextDb)).toEqual({ host: "h3", port: 3 })
    }))

  it.scopedLive("etcd down at start: a typed error, or empty and reported when optional", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const down = `127.0.0.1:${port}`
      const error = yield* Effect.flip(
        DynamicConfig.make([EtcdConfigSource.make({ hosts: down, prefix: "/x/", timeout: "1 second" })])
      ).pipe(Effect.timeout("10 seconds"))
      expect(error.reason).toBe("Unavailable")
      expect(error.source).toBe("etcd:/x/")

      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: "fallback", port: 1 } }),
        EtcdConfigSource.make({ hosts: down, prefix: "/x/", timeout: "1 second", optional: true })
      ]).pipe(Effect.timeout("10 seconds"))
      expect(yield* config.get("db", Db)).toEqual({ host: "fallback", port: 1 })
      const errors = yield* reader(config.errors, "10 seconds")
      expect((yield* errors.next).reason).toBe("Unavailable")
    }))

  it.scopedLive(
    "etcd down mid-run: reported, last good value kept, picked up again when it is back",
    () =>
      Effect.gen(function*() {
        // A private etcd, so stopping it does not disturb the other tests.
        const own = yield* Effect.acquireRelease(
          Effect.sync(() => startEngine("etcd")),
          (e) => Effect.sync(() => e.stop())
        )
        const ownClient = yield* Effect.acquireRelease(
          Effect.sync(() => new Etcd3({ hosts: `http://${own.address}` })),
          (c) => Effect.sync(() => c.close())
        )
        yield* Effect.promise(() => ownClient.put("/app/db").value(JSON.stringify({ host: "h1", port: 1 })).exec())
        const config = yield* DynamicConfig.make([
          EtcdConfigSource.make({ hosts: own.address, prefix: "/app/", timeout: "1 second" })
        ])
        const db = yield* reader(config.watch("db", Db), "10 seconds")
        const errors = yield* reader(config.errors, "10 seconds")
        expect(yield* db.next).toEqual({ host: "h1", port: 1 })

        own.stop()
        const lost = yield* errors.next
        expect([lost.reason, lost.source]).toEqual(["Unavailable", "etcd:/app/"])
        expect(yield* config.get("db", Db)).toEqual({ host: "h1", port: 1 })
        const reload = yield* Effect.flip(config.reload)
        expect(reload.reason).toBe("Unavailable")
        expect(yield* config.get("db", Db)).toEqual({ host: "h1", port: 1 })

        // Back on the same port (with an empty data dir): the watch reconnects and the prefix is re-read.
        const script = path.resolve(import.meta.dirname, "../../scripts/engines.sh")
        const again = yield* Effect.acquireRelease(
          Effect.sync(() => {
            const out = execFileSync("bash", [script, "start", "etcd", String(own.port)], {
              encoding: "utf8",
              timeout: 60_000
            })
            return out.match(/ETCD_DIR=(\S+)/)![1]!
          }),
          (dir) => Effect.sync(() => execFileSync("bash", [script, "stop", dir], { encoding: "utf8", timeout: 60_000 }))
        )
        expect(again).toBeTruthy()
        const fresh = yield* Effect.acquireRelease(
          Effect.sync(() => new Etcd3({ hosts: `http://${own.address}` })),
          (c) => Effect.sync(() => c.close())
        )
        // A client's first request right after etcd restarts can meet "no connection established": retry (bounded).
        yield* Effect.tryPromise(() => fresh.put("/app/db").value(JSON.stringify({ host: "h2", port: 2 })).exec()).pipe(
          Effect.retry({ schedule: Schedule.spaced("200 millis"), times: 25 }),
          Effect.orDie
        )
        expect(yield* db.next.pipe(Effect.timeout("20 seconds"))).toEqual({ host: "h2", port: 2 })
      }),
    { timeout: 40_000 }
  )
})
