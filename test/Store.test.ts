import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Codec from "../src/Codec.js"
import * as Store from "../src/Store.js"
import { failureReason, storeContract } from "./support/storeContract.js"

storeContract({
  name: "memory",
  make: (options) => Store.makeMemory(options),
  clock: "test",
  watch: true
})

describe("Store (memory specifics)", () => {
  it.scoped("expiry follows TestClock: the remaining time shrinks, the sweep reports the expiry", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory({ sweepInterval: "1 second" })
      const changes = yield* Queue.unbounded<Store.Change>()
      yield* store.watch({ prefix: "s/" }).pipe(Stream.runForEach((c) => Queue.offer(changes, c)), Effect.forkScoped)
      // The watcher subscribes when its fiber first runs: write a probe until it is seen (no sleeps needed).
      yield* store.write({ key: "s/probe", value: new Uint8Array(0) }).pipe(
        Effect.zipRight(Effect.yieldNow()),
        Effect.zipRight(Queue.size(changes)),
        Effect.repeat({ until: (size) => size > 0, times: 1000 })
      )
      yield* Queue.takeAll(changes)
      yield* store.write({ key: "s/a", value: new Uint8Array([1]) }, { ttl: "10 seconds" })
      yield* TestClock.adjust("4 seconds")
      const [record] = yield* store.read("s/a")
      expect(Duration.toMillis(record!.expiry!)).toBe(6_000)
      // 9.999 s: still there; 10 s: gone, even before the sweep runs.
      yield* TestClock.adjust(Duration.millis(5_999))
      expect(yield* store.list({ prefix: "s/a" })).toEqual(["s/a"])
      yield* TestClock.adjust(Duration.millis(1))
      expect(yield* store.list({ prefix: "s/a" })).toEqual([])
      yield* store.write({ key: "s/b", value: new Uint8Array([2]) })
      yield* TestClock.adjust("2 seconds")
      const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(changes))
      expect(seen.map((c) => `${c.type}:${c.key}`)).toEqual(["write:s/a", "expire:s/a", "write:s/b"])
      expect(seen.every((c) => c.database === "micro" && c.table === "micro")).toBe(true)
    }))

  it.effect("layerMemory with a custom default namespace, typed table through layers", () =>
    Effect.gen(function*() {
      class Point extends Schema.Class<Point>("Point")({ x: Schema.Number, y: Schema.Number }) {}
      const store = yield* Store.Store
      expect(store.backend).toBe("memory")
      expect(store.defaults).toEqual({ database: "app", table: "points" })
      const points = yield* Store.table(Point, {})
      expect([points.database, points.table]).toEqual(["app", "points"])
      yield* points.set("origin", new Point({ x: 0, y: 0 }))
      expect(yield* points.get("origin")).toEqual(new Point({ x: 0, y: 0 }))
      expect(yield* store.list({ database: "app", table: "points" })).toEqual(["origin"])
    }).pipe(Effect.provide(Layer.merge(Store.layerMemory({ database: "app", table: "points" }), Codec.layer))))

  it.effect("a bad default namespace is rejected when the layer is built", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Store.makeMemory({ table: "no spaces" })))
      expect(exit._tag).toBe("Failure")
      const typed = yield* Effect.flip(Effect.scoped(Store.makeSqlite({ filename: ":memory:", database: "" })))
      expect(typed.reason).toBe("Invalid")
    }))

  it.scoped("values are copied: mutating a read result does not change the store", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory()
      yield* store.write({ key: "k", value: new Uint8Array([1, 2, 3]) })
      const [first] = yield* store.read("k")
      first!.value[0] = 42
      expect((yield* store.read("k"))[0]!.value).toEqual(new Uint8Array([1, 2, 3]))
    }))

  it.scoped("a failure is a StoreError with reason, detail and key", () =>
    Effect.gen(function*() {
      const store = yield* Store.makeMemory()
      const error = yield* Effect.flip(store.read("missing", { table: "people" }))
      expect(error._tag).toBe("StoreError")
      expect(error.reason).toBe("NotFound")
      expect(error.key).toBe("missing")
      expect(error.message).toContain("micro/people")
      expect(yield* failureReason(store.list({ limit: -1 }))).toBe("Invalid")
    }))
})

describe("Store module graph", () => {
  // The core must not load client libraries of external engines; SQLite loads only when used.
  it("src/Store.ts reaches neither ioredis nor pg, and imports SQLite only dynamically", () => {
    const root = path.resolve(import.meta.dirname, "../src")
    const seen = new Set<string>()
    const packages = new Set<string>()
    const visit = (file: string) => {
      if (seen.has(file)) return
      seen.add(file)
      const source = fs.readFileSync(file, "utf8")
      // Static imports/exports only (`import type` erases; dynamic `import()` is lazy on purpose).
      for (const match of source.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^"]+)"/gm)) {
        const specifier = match[1]!
        if (specifier.startsWith(".")) visit(path.resolve(path.dirname(file), specifier.replace(/\.js$/, ".ts")))
        else packages.add(specifier)
      }
    }
    visit(path.join(root, "Store.ts"))
    expect([...seen].some((file) => file.endsWith("sqlite.ts"))).toBe(false)
    const forbidden = [...packages].filter((name) =>
      name === "ioredis" || name === "pg" || name.startsWith("@effect/sql") || name === "better-sqlite3"
    )
    expect(forbidden).toEqual([])
    expect(seen.size).toBeGreaterThan(3)
  })
})
