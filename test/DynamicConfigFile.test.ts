/**
 * Hot reload from real files: in-place writes, editors' rename-over, delete and re-create, malformed
 * content. Every wait is "the next element of a stream, within a bound"; no fixed sleeps.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as DynamicConfig from "../src/DynamicConfig.js"
import { reader } from "./support/streams.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-config-"))),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Writes a new file next to the target and renames it over (what vim, VS Code and config managers do). */
const renameOver = (file: string, content: string) => {
  const temp = `${file}.tmp-${Math.random().toString(36).slice(2)}`
  fs.writeFileSync(temp, content)
  fs.renameSync(temp, file)
}

const Server = Schema.Struct({ host: Schema.String, port: Schema.Number })
const fast = { debounce: "20 millis" } as const

describe("DynamicConfig file source", () => {
  it.scopedLive("reloads on write, rename-over, delete and re-create; one emission per real change", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "config.yaml")
      fs.writeFileSync(file, "server:\n  host: a\n  port: 1\n")
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ server: { host: "default", port: 0 }, name: "svc" }),
        DynamicConfig.file(file, fast)
      ])
      const server = yield* reader(config.watch("server", Server))
      const errors = yield* reader(config.errors)
      expect(yield* server.next).toEqual({ host: "a", port: 1 })

      fs.writeFileSync(file, "server:\n  host: b\n  port: 1\n") // in place
      expect(yield* server.next).toEqual({ host: "b", port: 1 })

      renameOver(file, "server:\n  host: b\n  port: 1\n") // same content, new inode: nothing to emit
      renameOver(file, "server:\n  host: c\n  port: 2\n")
      expect(yield* server.next).toEqual({ host: "c", port: 2 })

      fs.unlinkSync(file) // gone: reported, the last good value stays
      const gone = yield* errors.next
      expect(gone.reason).toBe("Unavailable")
      expect(gone.source).toBe(`file:${file}`)
      expect(yield* config.get("server.host", Schema.String)).toBe("c")

      fs.writeFileSync(file, "server:\n  host: d\n  port: 3\n") // re-created
      expect(yield* server.next).toEqual({ host: "d", port: 3 })
      expect(yield* config.get("name", Schema.String)).toBe("svc")

      renameOver(file, "server:\n  host: e\n  port: 3\n") // and the watch still works after all that
      expect(yield* server.next).toEqual({ host: "e", port: 3 })
    }))

  it.scopedLive("malformed JSON and YAML keep the last good tree and report a Parse error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const json = path.join(dir, "app.json")
      const yaml = path.join(dir, "app.yml")
      fs.writeFileSync(json, JSON.stringify({ db: { host: "j1" } }))
      fs.writeFileSync(yaml, "cache:\n  ttl: 10\n")
      const config = yield* DynamicConfig.make([DynamicConfig.file(json, fast), DynamicConfig.file(yaml, fast)])
      const host = yield* reader(config.watch("db.host", Schema.String))
      const ttl = yield* reader(config.watch("cache.ttl", Schema.Number))
      const errors = yield* reader(config.errors)
      expect(yield* host.next).toBe("j1")
      expect(yield* ttl.next).toBe(10)

      renameOver(json, "{\"db\": {\"host\": ")
      const badJson = yield* errors.next
      expect([badJson.reason, badJson.source]).toEqual(["Parse", `file:${json}`])
      expect(badJson.detail).toContain("json")

      renameOver(yaml, "cache:\n  ttl: [unclosed\n")
      const badYaml = yield* errors.next
      expect([badYaml.reason, badYaml.source]).toEqual(["Parse", `file:${yaml}`])

      renameOver(yaml, "- a list\n- at the root\n")
      const notObject = yield* errors.next
      expect(notObject.detail).toContain("root must be an object")

      renameOver(json, "")
      expect((yield* errors.next).detail).toContain("empty")

      expect(yield* config.snapshot).toEqual({ db: { host: "j1" }, cache: { ttl: 10 } })
      renameOver(json, JSON.stringify({ db: { host: "j2" } }))
      expect(yield* host.next).toBe("j2")
      renameOver(yaml, "cache:\n  ttl: 20\n")
      expect(yield* ttl.next).toBe(20)
    }))

  it.scopedLive("a value failing its schema is reported; watch keeps the last good value", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "config.json")
      fs.writeFileSync(file, JSON.stringify({ port: 8080 }))
      const config = yield* DynamicConfig.make([DynamicConfig.file(file, fast)])
      const Port = Schema.Number.pipe(Schema.int(), Schema.between(1, 65535))
      const port = yield* reader(config.watch("port", Port))
      const errors = yield* reader(config.errors)
      expect(yield* port.next).toBe(8080)
      // The watch runs in its own fiber (as a service would run it); it reports the invalid value.
      const nextPort = yield* Effect.fork(port.next)
      renameOver(file, JSON.stringify({ port: 70000 }))
      const invalid = yield* errors.next
      expect([invalid.reason, invalid.path]).toEqual(["InvalidValue", "port"])
      expect(invalid.detail).toContain("70000")
      renameOver(file, JSON.stringify({ port: 9090 }))
      expect(yield* Fiber.join(nextPort)).toBe(9090) // 70000 was skipped
    }))

  it.scopedLive("interpolates ${VAR} in file values", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "config.yaml")
      fs.writeFileSync(file, "db:\n  url: postgres://${DB_HOST:-localhost}:${DB_PORT}/app\n  port: ${DB_PORT}\n")
      const config = yield* DynamicConfig.make([
        DynamicConfig.file(file, { ...fast, interpolate: { DB_PORT: "6543" } })
      ])
      expect(yield* config.get("db.url", Schema.String)).toBe("postgres://localhost:6543/app")
      expect(yield* config.get("db.port", Schema.Number)).toBe(6543)
    }))

  it.scopedLive("an optional file missing at start is picked up when it appears", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "later.yaml")
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ feature: { enabled: false } }),
        DynamicConfig.file(file, { ...fast, optional: true })
      ])
      const enabled = yield* reader(config.watch("feature.enabled", Schema.Boolean))
      expect(yield* enabled.next).toBe(false)
      renameOver(file, "feature:\n  enabled: true\n")
      expect(yield* enabled.next).toBe(true)
    }))

  it.scopedLive("a required file missing at start fails with a typed error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const missing = yield* Effect.flip(DynamicConfig.make([DynamicConfig.file(path.join(dir, "nope.json"), fast)]))
      expect(missing.reason).toBe("Unavailable")
      expect(missing.detail).toContain("does not exist")
      fs.writeFileSync(path.join(dir, "bad.json"), "{nope")
      const malformed = yield* Effect.flip(DynamicConfig.make([DynamicConfig.file(path.join(dir, "bad.json"), fast)]))
      expect(malformed.reason).toBe("Parse")
    }))

  it.scopedLive("reload re-reads on demand (watch: false)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const file = path.join(dir, "static.json")
      fs.writeFileSync(file, JSON.stringify({ a: 1 }))
      const config = yield* DynamicConfig.make([DynamicConfig.file(file, { watch: false })])
      fs.writeFileSync(file, JSON.stringify({ a: 2 }))
      expect(yield* config.get("a", Schema.Number)).toBe(1)
      yield* config.reload
      expect(yield* config.get("a", Schema.Number)).toBe(2)
      fs.writeFileSync(file, "{")
      const error = yield* Effect.flip(config.reload)
      expect(error.reason).toBe("Parse")
      expect(yield* config.get("a", Schema.Number)).toBe(2)
    }))
})
