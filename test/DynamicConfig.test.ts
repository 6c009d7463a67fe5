import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as DynamicConfig from "../src/DynamicConfig.js"
import { argvTree, envTree } from "../src/internal/config/sources.js"
import { deepEqual, interpolateString, mergeAll } from "../src/internal/config/tree.js"
import { reader } from "./support/streams.js"

const Db = Schema.Struct({ host: Schema.String, port: Schema.Number })

describe("DynamicConfig merge", () => {
  it.scoped("later sources win, nested objects merge key by key", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: "localhost", port: 5432, pool: { min: 1, max: 10 } }, name: "a" }),
        DynamicConfig.memory({ db: { host: "db.prod", pool: { max: 50 } } }),
        DynamicConfig.memory({ db: { port: 6543 } })
      ])
      expect(yield* config.snapshot).toEqual({
        db: { host: "db.prod", port: 6543, pool: { min: 1, max: 50 } },
        name: "a"
      })
      expect(yield* config.get("db", Db)).toEqual({ host: "db.prod", port: 6543 })
      expect(yield* config.get(["db", "pool", "max"], Schema.Number)).toBe(50)
    }))

  it("arrays are replaced, not merged; null and scalars replace objects", () => {
    expect(mergeAll([
      { servers: [{ host: "a" }, { host: "b" }], tags: ["x"], obj: { a: 1 } },
      { servers: [{ host: "c" }], obj: null },
      { tags: [] }
    ])).toEqual({ servers: [{ host: "c" }], tags: [], obj: null })
  })

  it.scoped("array items are addressable by index", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([DynamicConfig.memory({ servers: [{ host: "a" }, { host: "b" }] })])
      expect(yield* config.get("servers.1.host", Schema.String)).toBe("b")
      expect(yield* config.get("servers", Schema.Array(Schema.Struct({ host: Schema.String })))).toHaveLength(2)
      const missing = yield* Effect.flip(config.get("servers.2.host", Schema.String))
      expect(missing.reason).toBe("Missing")
    }))
})

describe("DynamicConfig get", () => {
  it.scoped("defaults apply only when the path is absent", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([DynamicConfig.memory({ db: { port: "not a number" } })])
      expect(yield* config.get("db.host", Schema.String, { default: "localhost" })).toBe("localhost")
      expect(yield* config.get("nothing.here.at.all", Schema.Number, { default: 1 })).toBe(1)
      const invalid = yield* Effect.flip(config.get("db.port", Schema.Number, { default: 5432 }))
      expect(invalid).toBeInstanceOf(DynamicConfig.DynamicConfigError)
      expect(invalid.reason).toBe("InvalidValue")
      expect(invalid.path).toBe("db.port")
      expect(invalid.detail).toContain("not a number")
      const missing = yield* Effect.flip(config.get("db.host", Schema.String))
      expect(missing.reason).toBe("Missing")
      expect(missing.path).toBe("db.host")
      expect(missing.message).toContain("db.host")
    }))

  it.scoped("schema failures name the path and the failing field", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: ["not", "a", "string"], port: 1 } })
      ])
      const error = yield* Effect.flip(config.get("db", Db))
      expect(error.reason).toBe("InvalidValue")
      expect(error.path).toBe("db")
      expect(error.detail).toContain("host")
      const refined = yield* Effect.flip(config.get("db.port", Schema.Number.pipe(Schema.greaterThan(1024))))
      expect(refined.detail).toContain("1024")
    }))

  it.scoped("scalars are coerced to what the schema expects", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ port: "5432", debug: "TRUE", password: 1234, mode: "2", ratio: " 0.5 ", bad: "12abc" })
      ])
      expect(yield* config.get("port", Schema.Number)).toBe(5432)
      expect(yield* config.get("port", Schema.NumberFromString)).toBe(5432)
      expect(yield* config.get("debug", Schema.Boolean)).toBe(true)
      expect(yield* config.get("password", Schema.String)).toBe("1234")
      expect(yield* config.get("mode", Schema.Literal(1, 2, 3))).toBe(2)
      expect(yield* config.get("ratio", Schema.Number)).toBe(0.5)
      expect(yield* config.get("port", Schema.Union(Schema.Number, Schema.Literal("auto")))).toBe(5432)
      expect((yield* Effect.flip(config.get("bad", Schema.Number))).reason).toBe("InvalidValue")
      const all = yield* config.get(
        "",
        Schema.Struct({ port: Schema.Number, debug: Schema.Boolean, password: Schema.String })
      )
      expect(all).toEqual({ port: 5432, debug: true, password: "1234" })
    }))

  it.scoped("the accessor reads the service in context", () =>
    DynamicConfig.get("a.b", Schema.Number).pipe(
      Effect.tap((n) => Effect.sync(() => expect(n).toBe(1))),
      Effect.provide(DynamicConfig.layer([DynamicConfig.memory({ a: { b: 1 } })]))
    ))
})

describe("DynamicConfig interpolation", () => {
  const env = { HOST: "db.internal", EMPTY: "", PORT: "6000" }

  it("expands ${VAR}, ${VAR:-default} and $${", () => {
    expect(interpolateString("postgres://${HOST}:${PORT}/x", env)).toBe("postgres://db.internal:6000/x")
    expect(interpolateString("${MISSING:-fallback}", env)).toBe("fallback")
    expect(interpolateString("${EMPTY:-fallback}", env)).toBe("fallback")
    expect(interpolateString("${MISSING}", env)).toBe("")
    expect(interpolateString("${HOST:-x}", env)).toBe("db.internal")
    expect(interpolateString("literal $${HOST}", env)).toBe("literal ${HOST}")
    expect(interpolateString("no vars $HOST {x}", env)).toBe("no vars $HOST {x}")
  })

  it.scoped("applies to memory sources (and reads an explicit environment)", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { url: "${HOST}:${PORT}", list: ["${HOST}"] } }, { interpolate: env }),
        DynamicConfig.memory({ raw: "${HOST}" }, { interpolate: false })
      ])
      expect(yield* config.get("db.url", Schema.String)).toBe("db.internal:6000")
      expect(yield* config.get("db.list", Schema.Array(Schema.String))).toEqual(["db.internal"])
      expect(yield* config.get("raw", Schema.String)).toBe("${HOST}")
    }))
})

describe("DynamicConfig env and argv", () => {
  it("maps prefixed variables to paths", () => {
    expect(envTree({
      APP_DB_HOST: "h",
      APP_DB_PORT: "1",
      app_name: "svc",
      APP_DB_MAX__CONNS: "9",
      OTHER_X: "no",
      APPLE: "no"
    }, "APP")).toEqual({ db: { host: "h", port: "1", max_conns: "9" }, name: "svc" })
    // a nested key wins over a scalar at the same place, in either order
    expect(envTree({ APP_DB: "x", APP_DB_HOST: "h" }, "APP_")).toEqual({ db: { host: "h" } })
    expect(envTree({ A: "1" }, undefined)).toEqual({ a: "1" })
  })

  it.scoped("env source reads the given environment", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: "localhost", port: 5432 } }),
        DynamicConfig.env({ prefix: "APP", env: { APP_DB_PORT: "7000" } })
      ])
      expect(yield* config.get("db", Db)).toEqual({ host: "localhost", port: 7000 })
    }))

  it("parses flags", () => {
    expect(
      argvTree(["--db.host=x", "--db-port", "5", "pos", "--verbose", "--name", "a", "--name=b", "--", "--after=1"])
    )
      .toEqual({ db: { host: "x", port: "5" }, verbose: true, name: "b" })
    expect(argvTree(["--a.b=", "--c=d=e", "--flag", "--other"])).toEqual({
      a: { b: "" },
      c: "d=e",
      flag: true,
      other: true
    })
  })

  it.scoped("argv source goes last and wins", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ db: { host: "localhost", port: 5432 } }),
        DynamicConfig.env({ prefix: "APP", env: { APP_DB_HOST: "from-env" } }),
        DynamicConfig.argv({ args: ["--db-host", "from-flag"] })
      ])
      expect(yield* config.get("db.host", Schema.String)).toBe("from-flag")
    }))
})

/** Sets the ref and waits until the config has applied it. */
const setAndAwait = (
  config: DynamicConfig.DynamicConfig.Service,
  ref: SubscriptionRef.SubscriptionRef<DynamicConfig.Tree>,
  tree: DynamicConfig.Tree
) =>
  SubscriptionRef.set(ref, tree).pipe(
    Effect.zipRight(
      config.changes.pipe(Stream.filter((t) => deepEqual(t, tree)), Stream.runHead, Effect.timeout("3 seconds"))
    )
  )

describe("DynamicConfig watch", () => {
  it.scopedLive("emits the current value, then only real changes", () =>
    Effect.gen(function*() {
      const ref = yield* SubscriptionRef.make<DynamicConfig.Tree>({ db: { host: "a", port: 1 }, other: 1 })
      const config = yield* DynamicConfig.make([DynamicConfig.memoryRef(ref)])
      const db = yield* reader(config.watch("db", Db), "3 seconds")
      expect(yield* db.next).toEqual({ host: "a", port: 1 })
      yield* setAndAwait(config, ref, { db: { host: "a", port: 1 }, other: 2 }) // unrelated change
      yield* setAndAwait(config, ref, { db: { host: "a", port: "1" }, other: 3 }) // decodes to the same value
      yield* setAndAwait(config, ref, { db: { host: "b", port: 1 }, other: 3 })
      yield* setAndAwait(config, ref, { db: { host: "b", port: 1, extra: true }, other: 3 }) // same decoded value
      yield* setAndAwait(config, ref, { db: { host: "c", port: 1 } })
      expect(yield* db.next).toEqual({ host: "b", port: 1 })
      expect(yield* db.next).toEqual({ host: "c", port: 1 })
    }))

  it.scopedLive("decoded classes holding arrays compare structurally", () =>
    Effect.gen(function*() {
      class Pool extends Schema.Class<Pool>("Pool")({
        hosts: Schema.Array(Schema.String),
        size: Schema.OptionFromNullOr(Schema.Number)
      }) {}
      const ref = yield* SubscriptionRef.make<DynamicConfig.Tree>({ pool: { hosts: ["a"], size: null } })
      const config = yield* DynamicConfig.make([DynamicConfig.memoryRef(ref)])
      const pool = yield* reader(config.watch("pool", Pool), "3 seconds")
      expect((yield* pool.next).hosts).toEqual(["a"])
      yield* setAndAwait(config, ref, { pool: { hosts: ["a"], size: null }, unrelated: 1 })
      yield* setAndAwait(config, ref, { pool: { hosts: ["a"], size: 3 } })
      const next = yield* pool.next
      expect([next.hosts, next.size]).toEqual([["a"], Option.some(3)])
    }))

  it.scopedLive("an invalid update is reported and skipped; the last good value stays", () =>
    Effect.gen(function*() {
      const ref = yield* SubscriptionRef.make<DynamicConfig.Tree>({ port: 1 })
      const config = yield* DynamicConfig.make([DynamicConfig.memoryRef(ref)])
      const port = yield* reader(config.watch("port", Schema.Number), "3 seconds")
      const errors = yield* reader(config.errors, "3 seconds")
      expect(yield* port.next).toBe(1)
      yield* setAndAwait(config, ref, { port: "oops" })
      yield* setAndAwait(config, ref, {})
      yield* setAndAwait(config, ref, { port: 2 })
      expect(yield* port.next).toBe(2)
      const first = yield* errors.next
      const second = yield* errors.next
      expect([first.reason, first.path, second.reason, second.path]).toEqual([
        "InvalidValue",
        "port",
        "Missing",
        "port"
      ])
      // get reports the current (invalid) value as it is: watch is what keeps the last good one
      yield* setAndAwait(config, ref, { port: "oops" })
      expect((yield* Effect.flip(config.get("port", Schema.Number))).reason).toBe("InvalidValue")
    }))

  it.scopedLive("with a default, a removed key goes back to the default", () =>
    Effect.gen(function*() {
      const ref = yield* SubscriptionRef.make<DynamicConfig.Tree>({ level: "debug" })
      const config = yield* DynamicConfig.make([DynamicConfig.memoryRef(ref)])
      const level = yield* reader(config.watch("level", Schema.String, { default: "info" }), "3 seconds")
      expect(yield* level.next).toBe("debug")
      yield* setAndAwait(config, ref, {})
      expect(yield* level.next).toBe("info")
    }))

  it.scoped("fails when the first value is missing or invalid", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([DynamicConfig.memory({ port: "x" })])
      const invalid = yield* Effect.flip(Stream.runHead(config.watch("port", Schema.Number)))
      expect(invalid.reason).toBe("InvalidValue")
      const missing = yield* Effect.flip(Stream.runHead(config.watch("nope", Schema.Number)))
      expect(missing.reason).toBe("Missing")
    }))
})

describe("DynamicConfig sources at start", () => {
  it.scoped("a required source that cannot be read fails the config with a typed error", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(
        DynamicConfig.make([DynamicConfig.file("/nonexistent/dir/config.yaml", { watch: false })])
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(
        DynamicConfig.make([DynamicConfig.file("/nonexistent/dir/config.yaml", { watch: false })])
      )
      expect(error.reason).toBe("Unavailable")
      expect(error.source).toContain("/nonexistent/dir/config.yaml")
    }))

  it.scopedLive("an optional one counts as empty and is reported", () =>
    Effect.gen(function*() {
      const config = yield* DynamicConfig.make([
        DynamicConfig.memory({ a: 1 }),
        DynamicConfig.file("/nonexistent/dir/config.yaml", { optional: true })
      ])
      expect(yield* config.snapshot).toEqual({ a: 1 })
      // start-up errors are replayed to later subscribers
      const error = yield* config.errors.pipe(Stream.runHead, Effect.timeout("1 second"), Effect.flatten)
      expect(error.reason).toBe("Unavailable")
      expect(error.source).toContain("config.yaml")
    }))
})

describe("DynamicConfig ConfigProvider bridge", () => {
  const Live = DynamicConfig.layerConfigProvider.pipe(Layer.provideMerge(Layer.scoped(
    DynamicConfig.DynamicConfig,
    Effect.flatMap(
      SubscriptionRef.make<DynamicConfig.Tree>({ db: { host: "h1", port: 5432, tags: ["a", "b"] }, debug: true }),
      (ref) => Effect.map(DynamicConfig.make([DynamicConfig.memoryRef(ref)]), (service) => ({ ...service, ref }))
    )
  )))

  it.scopedLive("Config reads see the current merged tree", () =>
    Effect.gen(function*() {
      expect(yield* Config.string("db.host")).toBe("h1")
      expect(yield* Config.nested("db")(Config.string("host"))).toBe("h1")
      expect(yield* Config.number("db.port")).toBe(5432)
      expect(yield* Config.integer("port").pipe(Config.nested("db"))).toBe(5432)
      expect(yield* Config.boolean("debug")).toBe(true)
      expect(yield* Config.array(Config.string(), "db.tags")).toEqual(["a", "b"])
      expect(yield* Config.all({ host: Config.string("host"), port: Config.number("port") }).pipe(Config.nested("db")))
        .toEqual({ host: "h1", port: 5432 })
      expect(yield* Config.string("db.missing").pipe(Config.withDefault("d"))).toBe("d")
      const missing = yield* Effect.flip(Config.string("db.missing"))
      expect(missing._op).toBe("MissingData")

      const service = (yield* DynamicConfig.DynamicConfig) as DynamicConfig.DynamicConfig.Service & {
        ref: SubscriptionRef.SubscriptionRef<DynamicConfig.Tree>
      }
      yield* SubscriptionRef.set(service.ref, { db: { host: "h2", port: 1 } })
      yield* Effect.repeat(Config.string("db.host"), { until: (h) => h === "h2" }).pipe(Effect.timeout("1 second"))
      expect(yield* Config.string("db.host")).toBe("h2")
    }).pipe(Effect.provide(Live)))
})
