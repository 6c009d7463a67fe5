/**
 * The Store contract: one set of expectations run against every backend (memory, sqlite, redis, postgres).
 *
 * Each test builds its own store instance in the test's scope (so the instance's sweep runs on the test's
 * Clock) and works in a fresh table, so tests never see each other's records even on a shared engine.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Codec from "../../src/Codec.js"
import * as Store from "../../src/Store.js"
import { eventually } from "./eventually.js"

export interface StoreContractOptions {
  readonly name: string
  /** A fresh store instance; `sweepInterval` is honoured by backends that sweep (memory, sql). */
  readonly make: (options?: {
    readonly sweepInterval?: Duration.DurationInput | undefined
    readonly maxValueSize?: number | undefined
  }) => Effect.Effect<Store.Store.Service, Store.StoreError, Scope.Scope>
  /** "test": expiry follows Clock (TestClock drives it); "live": the engine's own clock (short real TTLs). */
  readonly clock: "test" | "live"
  /** Whether `watch` is supported (else it must fail with reason Unsupported). */
  readonly watch: boolean
}

let counter = 0
/** A table name no other test uses, also across runs on a persistent engine. */
const freshTable = () => `t${Date.now().toString(36)}_${process.pid}_${counter++}`

const bytes = (...values: ReadonlyArray<number>) => new Uint8Array(values)
const text = (s: string) => new TextEncoder().encode(s)
const decodeText = (b: Uint8Array) => new TextDecoder().decode(b)

/** The reason of the StoreError an effect fails with (fails the test if it succeeds or dies). */
export const failureReason = <A>(effect: Effect.Effect<A, Store.StoreError>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    if (Exit.isSuccess(exit)) throw new Error(`expected a StoreError, got success ${String(exit.value)}`)
    const failure = Cause.failureOption(exit.cause)
    if (Option.isNone(failure)) throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
    expect(failure.value).toBeInstanceOf(Store.StoreError)
    return failure.value.reason
  })

export const storeContract = (options: StoreContractOptions): void => {
  const { make } = options
  const ttl = options.clock === "test" ? Duration.seconds(10) : Duration.millis(300)
  /**
   * Lets `ttl` pass: TestClock moves past it; engines with their own clock are polled (bounded) until the
   * namespace lists exactly `left`, the keys that outlive it.
   */
  const passTtl = (store: Store.Store["Type"], ns: Store.NamespaceOptions, left: ReadonlyArray<string>) =>
    options.clock === "test"
      ? TestClock.adjust(Duration.sum(ttl, Duration.seconds(1)))
      : eventually(store.list(ns), (keys) => keys.join() === left.join(), Duration.sum(ttl, Duration.seconds(5)))
  const timed = options.clock === "test" ? it.scoped : it.scopedLive

  /** A store and a fresh namespace in it. */
  const setup = Effect.suspend(() =>
    Effect.map(make(), (store) => ({ store, ns: { database: "contract", table: freshTable() } }))
  )

  describe(`Store contract: ${options.name}`, () => {
    it.scoped("write, read, overwrite, delete", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        yield* store.write({ key: "a", value: text("one") }, ns)
        const [first] = yield* store.read("a", ns)
        expect(first!.key).toBe("a")
        expect(decodeText(first!.value)).toBe("one")
        expect(first!.metadata).toEqual({})
        expect(first!.expiry).toBeUndefined()

        yield* store.write({ key: "a", value: text("two") }, ns)
        const [second] = yield* store.read("a", ns)
        expect(decodeText(second!.value)).toBe("two")
        expect(yield* store.list(ns)).toEqual(["a"])

        yield* store.delete("a", ns)
        expect(yield* failureReason(store.read("a", ns))).toBe("NotFound")
        expect(yield* store.list(ns)).toEqual([])
        // Deleting a missing key is not an error.
        yield* store.delete("a", ns)
        yield* store.delete("never-written", ns)
      }))

    it.scoped("a missing key is NotFound; a prefix read with no match is an empty list", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const error = yield* Effect.flip(store.read("nope", ns))
        expect(error.reason).toBe("NotFound")
        expect(error.key).toBe("nope")
        expect(yield* store.read("nope", { ...ns, prefix: true })).toEqual([])
        expect(yield* store.read("nope", { ...ns, suffix: true })).toEqual([])
      }))

    it.scoped("prefix and suffix, ordered by key; an empty pattern matches everything", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const keys = ["user/2/name", "user/1/name", "user/1/email", "users", "admin/1/name", "user/10/name"]
        yield* Effect.forEach(keys, (key) => store.write({ key, value: text(key) }, ns), { discard: true })

        const byPrefix = yield* store.read("user/", { ...ns, prefix: true })
        expect(byPrefix.map((r) => r.key)).toEqual(["user/1/email", "user/1/name", "user/10/name", "user/2/name"])
        expect(byPrefix.map((r) => decodeText(r.value))).toEqual(byPrefix.map((r) => r.key))

        const bySuffix = yield* store.read("/name", { ...ns, suffix: true })
        expect(bySuffix.map((r) => r.key)).toEqual(["admin/1/name", "user/1/name", "user/10/name", "user/2/name"])

        // Both flags: the key must be both a prefix and a suffix.
        yield* store.write({ key: "abcab", value: text("x") }, ns)
        yield* store.write({ key: "ab", value: text("x") }, ns)
        yield* store.write({ key: "abc", value: text("x") }, ns)
        expect((yield* store.read("ab", { ...ns, prefix: true, suffix: true })).map((r) => r.key)).toEqual([
          "ab",
          "abcab"
        ])

        const all = yield* store.read("", { ...ns, prefix: true })
        expect(all.map((r) => r.key)).toEqual([...keys, "abcab", "ab", "abc"].sort())

        expect(yield* store.list({ ...ns, prefix: "user/1" })).toEqual(["user/1/email", "user/1/name", "user/10/name"])
        expect(yield* store.list({ ...ns, suffix: "name" })).toEqual([
          "admin/1/name",
          "user/1/name",
          "user/10/name",
          "user/2/name"
        ])
        expect(yield* store.list({ ...ns, prefix: "user/", suffix: "email" })).toEqual(["user/1/email"])
        expect(yield* store.list({ ...ns, prefix: "zzz" })).toEqual([])
        // Pattern characters of SQL LIKE / globs are literal.
        yield* store.write({ key: "p%_*?[x]", value: text("x") }, ns)
        expect(yield* store.list({ ...ns, prefix: "p%_*?[" })).toEqual(["p%_*?[x]"])
        expect(yield* store.list({ ...ns, prefix: "p%", suffix: "]" })).toEqual(["p%_*?[x]"])
        expect(yield* store.list({ ...ns, prefix: "p_" })).toEqual([])
        // Case-sensitive.
        expect(yield* store.list({ ...ns, prefix: "USER" })).toEqual([])
      }))

    it.scoped("keys sort in code point order, the same on every backend", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        // UTF-16 order would put the astral "😀" (D83D...) before U+E000 and U+FFFD.
        const keys = ["\u{1F600}", "\uE000", "\uFFFD", "z", "é", "a", "Z", "aa", "a\u{10FFFF}", "ab"]
        yield* Effect.forEach(keys, (key) => store.write({ key, value: text(key) }, ns), { discard: true })
        const expected = ["Z", "a", "aa", "ab", "a\u{10FFFF}", "z", "é", "\uE000", "\uFFFD", "\u{1F600}"]
        expect(yield* store.list(ns)).toEqual(expected)
        expect((yield* store.read("", { ...ns, prefix: true })).map((r) => r.key)).toEqual(expected)
        // A prefix ending in the last code point still finds its keys.
        yield* store.write({ key: "a\u{10FFFF}\u{10FFFF}b", value: text("x") }, ns)
        expect(yield* store.list({ ...ns, prefix: "a\u{10FFFF}" })).toEqual(["a\u{10FFFF}", "a\u{10FFFF}\u{10FFFF}b"])
        expect(yield* store.list({ ...ns, prefix: "\u{1F600}" })).toEqual(["\u{1F600}"])
      }))

    it.scoped("limit is a count and offset skips, both applied after the filters", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const keys = ["a1", "a2", "a3", "a4", "a5", "b1", "b2", "b3"]
        yield* Effect.forEach(keys, (key) => store.write({ key, value: text(key) }, ns), { discard: true })
        const list = (o: Store.ListOptions) => store.list({ ...ns, ...o })
        expect(yield* list({ limit: 0 })).toEqual([])
        expect(yield* list({ limit: 3 })).toEqual(["a1", "a2", "a3"])
        expect(yield* list({ limit: 100 })).toEqual(keys)
        expect(yield* list({ offset: 6 })).toEqual(["b2", "b3"])
        expect(yield* list({ offset: 8 })).toEqual([])
        expect(yield* list({ offset: 50, limit: 2 })).toEqual([])
        expect(yield* list({ offset: 7, limit: 5 })).toEqual(["b3"])
        // Filters first: offset/limit count matching keys only.
        expect(yield* list({ prefix: "b", offset: 1, limit: 1 })).toEqual(["b2"])
        expect(yield* list({ prefix: "a", offset: 3 })).toEqual(["a4", "a5"])
        expect(yield* list({ suffix: "1", offset: 1 })).toEqual(["b1"])
        expect(yield* list({ suffix: "3", limit: 1 })).toEqual(["a3"])
        expect(yield* list({ prefix: "b", limit: 0 })).toEqual([])

        const read = (key: string, o: Store.ReadOptions) => store.read(key, { ...ns, ...o })
        // A prefix read without a limit returns everything (go-micro's memory store returns nothing).
        expect((yield* read("a", { prefix: true })).map((r) => r.key)).toEqual(["a1", "a2", "a3", "a4", "a5"])
        // limit is a count, not an end index.
        expect((yield* read("a", { prefix: true, offset: 2, limit: 2 })).map((r) => r.key)).toEqual(["a3", "a4"])
        expect((yield* read("b", { prefix: true, offset: 2, limit: 10 })).map((r) => r.key)).toEqual(["b3"])
        expect(yield* read("b", { prefix: true, offset: 3 })).toEqual([])
        expect(yield* read("a", { prefix: true, limit: 0 })).toEqual([])
        expect((yield* read("2", { suffix: true, offset: 1 })).map((r) => r.key)).toEqual(["b2"])
        // An exact read finds its record first (NotFound if absent), then pages the one-element result.
        expect((yield* read("a1", { limit: 1 })).map((r) => r.key)).toEqual(["a1"])
        expect(yield* read("a1", { limit: 0 })).toEqual([])
        expect(yield* read("a1", { offset: 1 })).toEqual([])
        expect(yield* failureReason(read("zz", { limit: 0 }))).toBe("NotFound")
      }))

    timed("TTL: expired records are invisible to read, prefix read and list", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        yield* store.write({ key: "k/short", value: text("x") }, { ...ns, ttl })
        yield* store.write({ key: "k/by-record", value: text("x"), expiry: ttl }, ns)
        yield* store.write({ key: "k/forever", value: text("x") }, ns)
        // Overwriting without a TTL makes the record permanent.
        yield* store.write({ key: "k/cleared", value: text("x") }, { ...ns, ttl })
        yield* store.write({ key: "k/cleared", value: text("y") }, ns)
        // The option wins over the record's expiry.
        yield* store.write({ key: "k/option-wins", value: text("x"), expiry: "1 hour" }, { ...ns, ttl })

        const [short] = yield* store.read("k/short", ns)
        expect(short!.expiry).toBeDefined()
        expect(Duration.toMillis(short!.expiry!)).toBeGreaterThan(0)
        expect(Duration.toMillis(short!.expiry!)).toBeLessThanOrEqual(Duration.toMillis(ttl))
        expect((yield* store.read("k/forever", ns))[0]!.expiry).toBeUndefined()
        expect(yield* store.list(ns)).toHaveLength(5)

        yield* passTtl(store, ns, ["k/cleared", "k/forever"])
        expect(yield* failureReason(store.read("k/short", ns))).toBe("NotFound")
        expect(yield* failureReason(store.read("k/by-record", ns))).toBe("NotFound")
        expect(yield* failureReason(store.read("k/option-wins", ns))).toBe("NotFound")
        expect((yield* store.read("k/", { ...ns, prefix: true })).map((r) => r.key)).toEqual(["k/cleared", "k/forever"])
        expect(yield* store.list(ns)).toEqual(["k/cleared", "k/forever"])
        expect(yield* store.list({ ...ns, offset: 1 })).toEqual(["k/forever"])
        // An expired key can be written again.
        yield* store.write({ key: "k/short", value: text("again") }, ns)
        expect(decodeText((yield* store.read("k/short", ns))[0]!.value)).toBe("again")
      }))

    it.scoped("databases and tables are isolated namespaces; the default is micro/micro", () =>
      Effect.gen(function*() {
        const { store } = yield* setup
        const table = freshTable()
        const spaces = [
          { database: "db1", table },
          { database: "db1", table: `${table}x` },
          { database: "db2", table }
        ]
        yield* Effect.forEach(spaces, (ns, i) => store.write({ key: "same", value: bytes(i) }, ns), { discard: true })
        for (const [i, ns] of spaces.entries()) {
          expect((yield* store.read("same", ns))[0]!.value).toEqual(bytes(i))
          expect(yield* store.list(ns)).toEqual(["same"])
        }
        yield* store.delete("same", spaces[0])
        expect(yield* failureReason(store.read("same", spaces[0]))).toBe("NotFound")
        expect((yield* store.read("same", spaces[1]))[0]!.value).toEqual(bytes(1))
        expect((yield* store.read("same", spaces[2]))[0]!.value).toEqual(bytes(2))

        expect(store.defaults).toEqual({ database: "micro", table: "micro" })
        const key = `default-${freshTable()}`
        yield* store.write({ key, value: bytes(7) })
        expect((yield* store.read(key, { database: "micro", table: "micro" }))[0]!.value).toEqual(bytes(7))
        expect((yield* store.read(key, { table: "micro" }))[0]!.value).toEqual(bytes(7))
        expect(yield* failureReason(store.read(key, { database: "other" }))).toBe("NotFound")
        yield* store.delete(key)
      }))

    it.scoped("a 5 MB value round-trips", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const big = new Uint8Array(5 * 1024 * 1024)
        for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >>> 8)) & 0xff
        yield* store.write({ key: "big", value: big }, ns)
        const [record] = yield* store.read("big", ns)
        expect(record!.value.byteLength).toBe(big.byteLength)
        expect(Buffer.compare(Buffer.from(record!.value), Buffer.from(big))).toBe(0)
      }), 30_000)

    it.scoped("a value over maxValueSize fails with reason TooLarge before the backend; default 16 MiB", () =>
      Effect.gen(function*() {
        const store = yield* make({ maxValueSize: 1024 })
        const ns = { database: "contract", table: freshTable() }
        yield* store.write({ key: "fits", value: new Uint8Array(1024).fill(1) }, ns)
        const error = yield* Effect.flip(store.write({ key: "big", value: new Uint8Array(1025) }, ns))
        expect(error.reason).toBe("TooLarge")
        expect(error.key).toBe("big")
        expect(error.message).toContain("1025")
        // An oversized overwrite leaves the record as it was.
        expect(yield* failureReason(store.write({ key: "fits", value: new Uint8Array(4096) }, ns))).toBe("TooLarge")
        expect((yield* store.read("fits", ns))[0]!.value).toEqual(new Uint8Array(1024).fill(1))
        // The limit is on the value: a view counts only its own bytes.
        yield* store.write({ key: "view", value: new Uint8Array(8192).subarray(0, 1024) }, ns)
        // Typed tables: the encoded value is what is checked.
        class Blob extends Schema.Class<Blob>("Blob")({ text: Schema.String }) {}
        const blobs = yield* Store.table(Blob, ns).pipe(
          Effect.provideService(Store.Store, store),
          Effect.provide(Codec.layer)
        )
        expect(yield* failureReason(blobs.set("typed", new Blob({ text: "x".repeat(2000) })))).toBe("TooLarge")
        expect(yield* store.list(ns)).toEqual(["fits", "view"])

        // The default limit: 16 MiB (checked without sending anything).
        const byDefault = yield* make()
        expect(yield* failureReason(byDefault.write({ key: "huge", value: new Uint8Array(16 * 1024 * 1024 + 1) }, ns)))
          .toBe("TooLarge")
        expect(yield* failureReason(byDefault.read("huge", ns))).toBe("NotFound")

        // A bad limit is rejected when the store is built (Invalid; the memory store's constructor dies).
        for (const bad of [-1, 1.5, Number.NaN, "1mb" as any]) {
          const exit = yield* Effect.exit(Effect.scoped(make({ maxValueSize: bad })))
          expect(Exit.isFailure(exit)).toBe(true)
          if (Exit.isFailure(exit)) {
            const failure = Cause.failureOption(exit.cause)
            if (Option.isSome(failure)) expect(failure.value.reason).toBe("Invalid")
            else expect(Cause.isDie(exit.cause)).toBe(true)
          }
        }
      }))

    it.scoped("binary values: all 256 byte values, empty values, views into larger buffers", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const all = new Uint8Array(256).map((_, i) => i)
        const reversed = all.slice().reverse()
        yield* store.write({ key: "all", value: all }, ns)
        yield* store.write({ key: "reversed", value: reversed }, ns)
        yield* store.write({ key: "empty", value: new Uint8Array(0) }, ns)
        // A view: only its own bytes are stored.
        yield* store.write({ key: "view", value: all.subarray(10, 20) }, ns)
        expect(Array.from((yield* store.read("all", ns))[0]!.value)).toEqual(Array.from(all))
        expect(Array.from((yield* store.read("reversed", ns))[0]!.value)).toEqual(Array.from(reversed))
        expect((yield* store.read("empty", ns))[0]!.value.byteLength).toBe(0)
        expect(Array.from((yield* store.read("view", ns))[0]!.value)).toEqual(Array.from(all.subarray(10, 20)))
        // Mutating the caller's buffer after the write changes nothing stored.
        all[0] = 99
        expect((yield* store.read("all", ns))[0]!.value[0]).toBe(0)
      }))

    it.scoped("concurrent writers on one key: last write wins, no torn records", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const size = 64 * 1024
        const writers = 16
        yield* Effect.forEach(
          Array.from({ length: writers }, (_, i) => i),
          (i) =>
            Effect.forEach([0, 1, 2], (round) =>
              store.write({
                key: "contended",
                value: new Uint8Array(size).fill(i),
                metadata: { writer: i, round }
              }, ns), { discard: true }),
          { concurrency: "unbounded", discard: true }
        )
        const [record] = yield* store.read("contended", ns)
        const writer = record!.metadata.writer as number
        expect(writer).toBeGreaterThanOrEqual(0)
        expect(writer).toBeLessThan(writers)
        expect(record!.value.byteLength).toBe(size)
        // Value and metadata come from the same write.
        expect(record!.value.every((b) => b === writer)).toBe(true)

        // Sequential writes: the last one is what is read.
        yield* store.write({ key: "seq", value: bytes(1), metadata: { n: 1 } }, ns)
        yield* store.write({ key: "seq", value: bytes(2), metadata: { n: 2 } }, ns)
        const [last] = yield* store.read("seq", ns)
        expect(last!.value).toEqual(bytes(2))
        expect(last!.metadata).toEqual({ n: 2 })
      }))

    it.scoped("metadata round-trips (JSON scalars)", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const metadata = {
          s: "text",
          unicode: "ü😀",
          n: 1.5,
          negative: -3,
          zero: 0,
          t: true,
          f: false,
          nil: null,
          "": "empty name"
        }
        yield* store.write({ key: "m", value: bytes(1), metadata }, ns)
        expect((yield* store.read("m", ns))[0]!.metadata).toEqual(metadata)
        expect((yield* store.read("m", { ...ns, prefix: true }))[0]!.metadata).toEqual(metadata)
      }))

    it.scoped("bad input fails with reason Invalid, never a defect", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        const invalid = (effect: Effect.Effect<unknown, Store.StoreError>) =>
          Effect.map(failureReason(effect), (reason) => expect(reason).toBe("Invalid"))
        yield* invalid(store.write({ key: "", value: bytes(1) }, ns))
        yield* invalid(store.read("", ns))
        yield* invalid(store.delete("", ns))
        yield* invalid(store.write({ key: "a\u0000b", value: bytes(1) }, ns))
        yield* invalid(store.write({ key: "\uD800", value: bytes(1) }, ns))
        yield* invalid(store.write({ key: "x".repeat(1025), value: bytes(1) }, ns))
        yield* invalid(store.write({ key: "k", value: "not bytes" as any }, ns))
        yield* invalid(store.write(null as any, ns))
        yield* invalid(store.write({ key: "k", value: bytes(1) }, { ...ns, ttl: -5 }))
        yield* invalid(store.write({ key: "k", value: bytes(1) }, { ...ns, ttl: 0 }))
        yield* invalid(store.write({ key: "k", value: bytes(1) }, { ...ns, ttl: "soon" as any }))
        yield* invalid(store.write({ key: "k", value: bytes(1), metadata: { n: Number.NaN } }, ns))
        yield* invalid(store.write({ key: "k", value: bytes(1), metadata: { o: {} as any } }, ns))
        yield* invalid(store.list({ ...ns, limit: -1 }))
        yield* invalid(store.list({ ...ns, offset: -1 }))
        yield* invalid(store.list({ ...ns, limit: 1.5 }))
        yield* invalid(store.list({ ...ns, limit: Number.NaN }))
        yield* invalid(store.read("a", { ...ns, prefix: true, limit: -1 }))
        yield* invalid(store.read("a", { ...ns, offset: Number.POSITIVE_INFINITY }))
        yield* invalid(store.list({ database: "", table: "t" }))
        yield* invalid(store.list({ database: "has space" }))
        yield* invalid(store.read("k", { table: "a:b" }))
        yield* invalid(store.write({ key: "k", value: bytes(1) }, { database: "x".repeat(65) }))
        // Nothing was written by the failed calls.
        expect(yield* store.list(ns)).toEqual([])
      }))

    it.scoped("typed tables: Schema values through a codec, typed errors", () =>
      Effect.gen(function*() {
        const { ns, store } = yield* setup
        class User extends Schema.Class<User>("User")({ name: Schema.String, age: Schema.Number }) {}
        const users = yield* Store.table(User, ns).pipe(
          Effect.provideService(Store.Store, store),
          Effect.provide(Codec.layer)
        )
        yield* users.set("ada", new User({ name: "Ada", age: 36 }))
        const ada = yield* users.get("ada")
        expect(ada).toBeInstanceOf(User)
        expect(ada).toEqual(new User({ name: "Ada", age: 36 }))
        expect((yield* store.read("ada", ns))[0]!.metadata["content-type"]).toBe("application/json")
        expect(Option.isNone(yield* users.getOption("bob"))).toBe(true)
        expect((yield* Effect.flip(users.get("bob"))).reason).toBe("NotFound")

        // Written with msgpack, still decodable through the JSON table (the content-type is in metadata).
        const packed = yield* Store.table(User, { ...ns, contentType: "application/msgpack" }).pipe(
          Effect.provideService(Store.Store, store),
          Effect.provide(Codec.layer)
        )
        yield* packed.set("grace", new User({ name: "Grace", age: 45 }), { metadata: { team: "navy" } })
        expect((yield* users.get("grace")).name).toBe("Grace")
        expect((yield* store.read("grace", ns))[0]!.metadata).toEqual({
          team: "navy",
          "content-type": "application/msgpack"
        })
        expect((yield* users.entries()).map(([key, user]) => [key, user.age])).toEqual([["ada", 36], ["grace", 45]])
        expect((yield* users.entries({ prefix: "g" })).map(([key]) => key)).toEqual(["grace"])
        expect(yield* users.list({ offset: 1 })).toEqual(["grace"])

        // Garbage bytes under a key: a Codec error, not a defect.
        yield* store.write({ key: "broken", value: text("{not json") }, ns)
        const broken = yield* Effect.flip(users.get("broken"))
        expect(broken.reason).toBe("Codec")
        expect(broken.key).toBe("broken")
        yield* store.write({ key: "wrong-shape", value: text(JSON.stringify({ name: 1 })) }, ns)
        expect((yield* Effect.flip(users.get("wrong-shape"))).reason).toBe("Codec")
        // Encoding a value that does not match the Schema.
        expect((yield* Effect.flip(users.set("bad", { name: "x", age: "old" } as any))).reason).toBe("Codec")
        yield* users.delete("ada")
        expect(Option.isNone(yield* users.getOption("ada"))).toBe(true)
        // An unknown content-type is Invalid.
        const unknownCodec = yield* Effect.flip(
          Store.table(User, { ...ns, contentType: "text/nope" }).pipe(
            Effect.provideService(Store.Store, store),
            Effect.provide(Codec.layer)
          )
        )
        expect(unknownCodec.reason).toBe("Invalid")
      }))

    if (options.watch) {
      it.scopedLive("watch: writes, deletes and expiries under a prefix, in order", () =>
        Effect.gen(function*() {
          const store = yield* make({ sweepInterval: "100 millis" })
          const ns = { database: "contract", table: freshTable() }
          const changes = yield* Queue.unbounded<Store.Change>()
          yield* store.watch({ ...ns, prefix: "w/" }).pipe(
            Stream.runForEach((change) => Queue.offer(changes, change)),
            Effect.forkScoped
          )
          // The subscription is set up asynchronously: write a probe until it is seen.
          yield* store.write({ key: "w/probe", value: bytes(0) }, ns).pipe(
            Effect.zipRight(Effect.sleep("50 millis")),
            Effect.zipRight(Queue.size(changes)),
            Effect.repeat({ until: (size) => size > 0 }),
            Effect.timeout("5 seconds")
          )
          // Changes arrive in order: once a marker written after the last probe is taken, no probe is left.
          yield* store.write({ key: "w/ready", value: bytes(0) }, ns)
          yield* Queue.take(changes).pipe(
            Effect.repeat({ until: (change) => change.key === "w/ready" }),
            Effect.timeout("5 seconds")
          )

          yield* store.write({ key: "w/a", value: bytes(1) }, ns)
          yield* store.write({ key: "other", value: bytes(1) }, ns) // outside the prefix
          yield* store.write({ key: "w/a", value: bytes(2) }, { database: "contract", table: `${ns.table}x` }) // other table
          yield* store.write({ key: "w/b", value: bytes(2) }, ns)
          yield* store.delete("w/a", ns)
          yield* store.write({ key: "w/ttl", value: bytes(3) }, { ...ns, ttl: "300 millis" })

          const seen: Array<string> = []
          yield* Queue.take(changes).pipe(
            Effect.tap((change) => {
              expect(change.database).toBe("contract")
              expect(change.table).toBe(ns.table)
              seen.push(`${change.type}:${change.key}`)
            }),
            Effect.repeat({ until: () => seen.includes("expire:w/ttl") }),
            Effect.timeout("8 seconds")
          )
          expect(seen).toEqual(["write:w/a", "write:w/b", "delete:w/a", "write:w/ttl", "expire:w/ttl"])
          yield* failureReason(store.read("w/ttl", ns))
        }), 20_000)

      it.scopedLive("watch: the stream ends its subscription when interrupted", () =>
        Effect.gen(function*() {
          const store = yield* make()
          const ns = { database: "contract", table: freshTable() }
          const changes = yield* Queue.unbounded<Store.Change>()
          const fiber = yield* store.watch(ns).pipe(
            Stream.runForEach((change) => Queue.offer(changes, change)),
            Effect.fork
          )
          // Interrupt a subscription that is established: write a probe until the watch reports it.
          yield* store.write({ key: "probe", value: bytes(0) }, ns).pipe(
            Effect.zipRight(Effect.sleep("50 millis")),
            Effect.zipRight(Queue.size(changes)),
            Effect.repeat({ until: (size) => size > 0 }),
            Effect.timeout("5 seconds")
          )
          yield* store.delete("probe", ns)
          yield* Fiber.interrupt(fiber)
          // Still usable afterwards.
          yield* store.write({ key: "after", value: bytes(1) }, ns)
          expect(yield* store.list(ns)).toEqual(["after"])
        }))
    } else {
      it.scoped("watch fails with reason Unsupported", () =>
        Effect.gen(function*() {
          const { ns, store } = yield* setup
          expect(yield* failureReason(Stream.runDrain(store.watch(ns)))).toBe("Unsupported")
        }))
    }

    it.scoped("watch rejects a bad namespace with reason Invalid", () =>
      Effect.gen(function*() {
        const { store } = yield* setup
        expect(yield* failureReason(Stream.runDrain(store.watch({ table: "no spaces allowed" })))).toBe("Invalid")
      }))
  })
}

/** What an engine-restart scenario needs from its test: stop and start the engine in place. */
export interface EngineControl {
  readonly kill: Effect.Effect<unknown, unknown>
  readonly start: Effect.Effect<unknown, unknown>
}

/**
 * The engine restart scenario shared by the Redis and Postgres suites: while the engine is down every
 * operation fails with `Unavailable` within `downBoundMillis`, a plain watch ends with `Unavailable`, and after
 * a restart the same store (no rebuild) works again and a retried watch is subscribed again. `persistent`
 * says whether data written before the crash must survive it.
 */
export const engineRestartScenario = (
  store: Store.Store["Type"],
  control: EngineControl,
  options: { readonly downBoundMillis: number; readonly persistent: boolean }
) =>
  Effect.gen(function*() {
    const ns = { table: "restart" }
    const seen = yield* Queue.unbounded<string>()
    // A plain watcher ends with Unavailable when its connection drops; a retried one listens again.
    const plain = yield* store.watch(ns).pipe(Stream.runDrain, Effect.fork)
    yield* store.watch(ns).pipe(
      Stream.retry(Schedule.spaced("200 millis")),
      Stream.runForEach((change) => Queue.offer(seen, change.key)),
      Effect.forkScoped
    )
    const writeUntilSeen = (key: string) =>
      store.write({ key, value: new Uint8Array([1]) }, ns).pipe(
        Effect.retry(Schedule.spaced("100 millis")),
        Effect.zipRight(Effect.sleep("50 millis")),
        Effect.zipRight(Queue.takeAll(seen)),
        Effect.repeat({ until: (keys) => [...keys].includes(key) }),
        Effect.timeout("10 seconds")
      )
    yield* writeUntilSeen("before")

    yield* Effect.orDie(control.kill)
    let start = Date.now()
    expect(yield* failureReason(store.read("before", ns))).toBe("Unavailable")
    expect(yield* failureReason(store.write({ key: "down", value: new Uint8Array([1]) }, ns))).toBe("Unavailable")
    expect(yield* failureReason(store.list(ns))).toBe("Unavailable")
    expect(yield* failureReason(store.delete("before", ns))).toBe("Unavailable")
    expect(Date.now() - start).toBeLessThan(options.downBoundMillis)
    const ended = yield* Fiber.await(plain).pipe(Effect.timeout("5 seconds"))
    expect(Exit.isFailure(ended) && ended.cause._tag === "Fail" && ended.cause.error.reason).toBe("Unavailable")

    yield* Effect.orDie(control.start)
    start = Date.now()
    // The same store (no rebuild) works again once its client has reconnected.
    yield* store.write({ key: "after", value: new Uint8Array([2]) }, ns).pipe(
      Effect.retry(Schedule.spaced("100 millis")),
      Effect.timeout("5 seconds")
    )
    expect(Date.now() - start).toBeLessThan(5_000)
    expect((yield* store.read("after", ns))[0]!.value).toEqual(new Uint8Array([2]))
    if (options.persistent) {
      // Acknowledged writes survived the crash (same data directory).
      expect((yield* store.read("before", ns))[0]!.value).toEqual(new Uint8Array([1]))
      expect(yield* store.list(ns)).toEqual(["after", "before"])
    } else {
      // No persistence: what was written before the crash is gone.
      expect(yield* store.list(ns)).toEqual(["after"])
    }
    // The retried watcher is subscribed again.
    yield* writeUntilSeen("after-watch")
  })
