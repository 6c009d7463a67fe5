import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { Redis } from "ioredis"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as RedisStore from "../../src/plugins/redis/RedisStore.js"
import * as Store from "../../src/Store.js"
import { engine, type RunningEngine, startEngine } from "../support/engines.js"
import { eventually } from "../support/eventually.js"
import { engineRestartScenario, failureReason, storeContract } from "../support/storeContract.js"

let redis: RunningEngine
beforeAll(() => {
  redis = startEngine("redis")
})
afterAll(() => redis?.stop())

const options = (extra?: RedisStore.RedisStoreOptions): RedisStore.RedisStoreOptions => ({
  host: redis.host,
  port: redis.port,
  connectTimeout: "2 seconds",
  ...extra
})

/** A raw client to look at what the store left in Redis. */
const raw = Effect.acquireRelease(
  Effect.sync(() => new Redis({ host: redis.host, port: redis.port, lazyConnect: false })),
  (client) => Effect.promise(() => client.quit().catch(() => undefined))
)

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/** Succeeds once nothing accepts connections on the port any more. */
const portClosed = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", () => resume(Effect.succeed(true)))
  }).pipe(Effect.repeat({ until: (closed) => closed, schedule: Schedule.spaced("20 millis"), times: 250 }))

/**
 * Kills a Redis started by scripts/engines.sh (SIGKILL, like a crash) and starts it again on the same
 * port and directory with the arguments engines.sh uses. The new pid goes to DIR/pid, so the engine's
 * own `stop()` still stops it; `release` kills the restarted process and waits for its exit (call it
 * before `stop()`). Without persistence (as started), the data is gone after the restart.
 */
const redisControl = (engine: RunningEngine) => {
  const pidFile = path.join(engine.dir, "pid")
  let child: ChildProcess | undefined
  const release = Effect.suspend(() => {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null || running.signalCode !== null) return Effect.void
    return Effect.async<void>((resume) => {
      running.once("exit", () => resume(Effect.void))
      running.kill("SIGKILL")
    })
  })
  const kill = Effect.suspend(() => {
    if (child !== undefined) return release
    process.kill(Number(fs.readFileSync(pidFile, "utf8")), "SIGKILL")
    return Effect.asVoid(portClosed(engine.port))
  })
  const start = Effect.gen(function*() {
    const log = fs.openSync(path.join(engine.dir, "log"), "a")
    child = spawn("redis-server", [
      "--bind",
      "127.0.0.1",
      "--port",
      String(engine.port),
      "--dir",
      engine.dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--notify-keyspace-events",
      "KEA"
    ], { stdio: ["ignore", log, log] })
    fs.closeSync(log)
    fs.writeFileSync(pidFile, String(child.pid))
    yield* Effect.try(() =>
      execFileSync("redis-cli", ["-p", String(engine.port), "ping"], { encoding: "utf8", stdio: "pipe" })
    )
      .pipe(
        Effect.filterOrFail((out) => out.includes("PONG")),
        Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 200 })
      )
  })
  return { kill, start, release }
}

storeContract({
  name: "redis",
  make: (extra) => RedisStore.make(options({ maxValueSize: extra?.maxValueSize })),
  clock: "live",
  watch: true
})

describe("RedisStore specifics", () => {
  it.scopedLive("layout: one string per record with a native TTL, one sorted-set index per table", () =>
    Effect.gen(function*() {
      const store = yield* RedisStore.make(options({ keyPrefix: "layout:" }))
      const client = yield* raw
      yield* store.write({ key: "a", value: new Uint8Array([1]) }, { table: "t1", ttl: "1 hour" })
      yield* store.write({ key: "b", value: new Uint8Array([1]) }, { table: "t1" })
      expect((yield* Effect.promise(() => client.keys("layout:*"))).sort()).toEqual([
        "layout:micro:t1:i",
        "layout:micro:t1:r:a",
        "layout:micro:t1:r:b"
      ])
      const ttl = yield* Effect.promise(() => client.pttl("layout:micro:t1:r:a"))
      expect(ttl).toBeGreaterThan(3_500_000)
      expect(yield* Effect.promise(() => client.pttl("layout:micro:t1:r:b"))).toBe(-1)
      expect(yield* Effect.promise(() => client.zrange("layout:micro:t1:i", 0, -1))).toEqual(["a", "b"])
      yield* store.delete("a", { table: "t1" })
      expect(yield* Effect.promise(() => client.zrange("layout:micro:t1:i", 0, -1))).toEqual(["b"])
    }))

  it.scopedLive("expired keys are dropped from the index when a range read meets them", () =>
    Effect.gen(function*() {
      const store = yield* RedisStore.make(options({ keyPrefix: "cleanup:" }))
      const client = yield* raw
      for (let i = 0; i < 300; i++) {
        yield* store.write({ key: `k${String(i).padStart(3, "0")}`, value: new Uint8Array([i & 0xff]) }, {
          ttl: i % 2 === 0 ? "150 millis" : undefined
        })
      }
      // Wait until Redis itself has expired every TTL'd record (the index still lists them: nothing read it yet).
      const expiring = Array.from({ length: 150 }, (_, i) => `cleanup:micro:micro:r:k${String(2 * i).padStart(3, "0")}`)
      yield* eventually(Effect.promise(() => client.exists(...expiring)), (n) => n === 0, "5 seconds")
      expect(yield* Effect.promise(() => client.zcard("cleanup:micro:micro:i"))).toBe(300)
      // More than one index batch (256): paging must continue past the expired members.
      const keys = yield* store.list({ offset: 100, limit: 20 })
      expect(keys).toEqual(Array.from({ length: 20 }, (_, i) => `k${String(201 + 2 * i).padStart(3, "0")}`))
      expect(yield* store.list()).toHaveLength(150)
      expect(yield* Effect.promise(() => client.zcard("cleanup:micro:micro:i"))).toBe(150)
    }))

  it.scopedLive("key prefixes isolate stores sharing one Redis", () =>
    Effect.gen(function*() {
      const a = yield* RedisStore.make(options({ keyPrefix: "app-a:" }))
      const b = yield* RedisStore.make(options({ keyPrefix: "app-b:" }))
      yield* a.write({ key: "k", value: new Uint8Array([1]) })
      expect(yield* a.list()).toEqual(["k"])
      expect(yield* b.list()).toEqual([])
    }))

  it.scopedLive("layer and layerConfig provide the Store", () =>
    Effect.gen(function*() {
      const use = Effect.gen(function*() {
        const store = yield* Store.Store
        yield* store.write({ key: "via-layer", value: new Uint8Array([1]) }, { table: "layers" })
        return yield* store.list({ table: "layers" })
      })
      expect(yield* Effect.provide(use, RedisStore.layer(options()))).toEqual(["via-layer"])
      const configured = RedisStore.layerConfig({
        host: Config.string("REDIS_HOST"),
        port: Config.integer("REDIS_PORT"),
        keyPrefix: Config.string("REDIS_PREFIX")
      }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
        new Map([
          ["REDIS_HOST", redis.host],
          ["REDIS_PORT", String(redis.port)],
          ["REDIS_PREFIX", "other:"]
        ])
      ))))
      // Another key prefix: a separate keyspace.
      expect(yield* Effect.provide(use, configured)).toEqual(["via-layer"])
      const client = yield* raw
      expect(yield* Effect.promise(() => client.exists("other:micro:layers:r:via-layer"))).toBe(1)
    }))

  it.scopedLive("watch without keyspace notifications fails with reason Unsupported", () =>
    Effect.gen(function*() {
      const client = yield* raw
      const store = yield* RedisStore.make(options())
      yield* Effect.acquireRelease(
        Effect.promise(() => client.config("SET", "notify-keyspace-events", "")),
        () => Effect.promise(() => client.config("SET", "notify-keyspace-events", "KEA"))
      )
      expect(yield* failureReason(Stream.runDrain(store.watch()))).toBe("Unsupported")
    }))

  it.live("an unreachable Redis fails with reason Unavailable, in bounded time", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const start = Date.now()
      const error = yield* Effect.flip(Effect.scoped(RedisStore.make({ port, connectTimeout: "1 second" })))
      expect(error.reason).toBe("Unavailable")
      expect(Date.now() - start).toBeLessThan(5_000)
    }))

  it.live(
    "Redis restarting: operations fail with Unavailable in bounded time, then the same store recovers",
    () =>
      Effect.gen(function*() {
        const own = yield* engine("redis")
        const control = redisControl(own)
        yield* Effect.addFinalizer(() => control.release)
        const store = yield* RedisStore.make({ host: own.host, port: own.port, connectTimeout: "1 second" })
        yield* engineRestartScenario(store, control, { downBoundMillis: 6_000, persistent: false })
      }).pipe(Effect.scoped),
    30_000
  )

  it.live(
    "Redis going away mid-run: operations fail with reason Unavailable, not a hang",
    () =>
      Effect.gen(function*() {
        const own = yield* engine("redis")
        const store = yield* RedisStore.make({
          host: own.host,
          port: own.port,
          commandTimeout: "1 second",
          redis: { retryStrategy: () => 100 }
        })
        yield* store.write({ key: "k", value: new Uint8Array([1]) })
        own.stop()
        const start = Date.now()
        expect(yield* failureReason(store.read("k"))).toBe("Unavailable")
        expect(yield* failureReason(store.list())).toBe("Unavailable")
        expect(Date.now() - start).toBeLessThan(10_000)
      }).pipe(Effect.scoped),
    30_000
  )
})
