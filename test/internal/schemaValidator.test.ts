import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { isDeepStrictEqual } from "node:util"
import * as Codec from "../../src/Codec.js"
import { CodecError } from "../../src/Errors.js"
import * as SchemaValidator from "../../src/internal/codec/schemaValidator.js"

// ---------------------------------------------------------------------------------------------------------
// Supported schemas
// ---------------------------------------------------------------------------------------------------------

const Item = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  tags: Schema.Array(Schema.String),
  active: Schema.Boolean,
  score: Schema.Number,
  created: Schema.String
})

enum Color {
  Red = "red",
  Green = 2
}

interface Category {
  readonly name: string
  readonly children: ReadonlyArray<Category>
}
const Category: Schema.Schema<Category> = Schema.Struct({
  name: Schema.String,
  children: Schema.Array(Schema.suspend(() => Category))
})

const Shape = Schema.Union(
  Schema.TaggedStruct("Circle", { radius: Schema.Number.pipe(Schema.between(0, 10)) }),
  Schema.TaggedStruct("Square", { side: Schema.Int, label: Schema.optional(Schema.String) }),
  Schema.TaggedStruct("Text", { text: Schema.NonEmptyString })
)

const supported = {
  Item,
  primitives: Schema.Struct({
    s: Schema.String,
    n: Schema.Number,
    b: Schema.Boolean,
    nil: Schema.Null,
    u: Schema.Undefined,
    lit: Schema.Literal("a", 1, true),
    color: Schema.Enums(Color),
    any: Schema.Unknown
  }),
  nested: Schema.Struct({
    id: Schema.Int,
    address: Schema.Struct({ street: Schema.String, zip: Schema.NullOr(Schema.String) }),
    history: Schema.Array(Schema.Struct({ at: Schema.String, ok: Schema.Boolean }))
  }),
  Shape,
  shapes: Schema.Array(Shape),
  // Members that overlap: Schema returns the first one that decodes (which may strip keys).
  overlapping: Schema.Union(
    Schema.Struct({ a: Schema.Number }),
    Schema.Struct({ a: Schema.Number, b: Schema.String }),
    Schema.Struct({ b: Schema.String })
  ),
  refinements: Schema.Struct({
    int: Schema.Int,
    text: Schema.NonEmptyString,
    ratio: Schema.Number.pipe(Schema.between(0, 10)),
    finite: Schema.optional(Schema.Finite)
  }),
  refinedStruct: Schema.Union(
    Schema.Struct({ lo: Schema.Number, hi: Schema.Number }).pipe(Schema.filter((r) => r.lo <= r.hi)),
    Schema.Struct({ lo: Schema.String })
  ),
  record: Schema.Record({ key: Schema.String, value: Schema.Number }),
  recordOfStructs: Schema.Record({ key: Schema.String, value: Schema.Struct({ x: Schema.Number }) }),
  structWithRecord: Schema.Struct(
    { kind: Schema.Literal("k") },
    Schema.Record({ key: Schema.String, value: Schema.String })
  ),
  literalRecord: Schema.Record({ key: Schema.Literal("x", "y"), value: Schema.Boolean }),
  optionals: Schema.Struct({
    a: Schema.optional(Schema.Number),
    b: Schema.optionalWith(Schema.String, { exact: true }),
    c: Schema.String
  }),
  tuple: Schema.Tuple(Schema.String, Schema.Number),
  tupleOptional: Schema.Tuple(Schema.String, Schema.optionalElement(Schema.Number)),
  tupleRest: Schema.Tuple([Schema.String], Schema.Number, Schema.Boolean),
  nonEmpty: Schema.NonEmptyArray(Schema.Int),
  nullable: Schema.NullOr(Schema.Struct({ a: Schema.String })),
  empty: Schema.Struct({}),
  void: Schema.Void,
  number: Schema.Number,
  recursive: Category
} as const satisfies Record<string, Schema.Schema<any, any, never>>

// ---------------------------------------------------------------------------------------------------------
// Junk generators
// ---------------------------------------------------------------------------------------------------------

/** A valid value with one change somewhere in its top two levels: a key removed, retyped or added. */
const mutate = (value: unknown, junk: unknown, key: string, pick: number, kind: number): unknown => {
  if (Array.isArray(value)) {
    if (value.length === 0) return kind === 0 ? [junk] : value
    const copy = [...value]
    const index = pick % copy.length
    if (kind === 0) copy[index] = junk
    else if (kind === 1) copy.splice(index, 1)
    else if (kind === 2) copy.push(junk)
    else copy[index] = mutate(copy[index], junk, key, Math.floor(pick / 7), (kind + pick) % 3)
    return copy
  }
  if (value !== null && typeof value === "object") {
    const copy: Record<string, unknown> = { ...value as Record<string, unknown> }
    const keys = Object.keys(copy)
    if (kind === 2 || keys.length === 0) {
      copy[key] = junk
      return copy
    }
    const target = keys[pick % keys.length]!
    if (kind === 0) copy[target] = junk
    else if (kind === 1) delete copy[target]
    else copy[target] = mutate(copy[target], junk, key, Math.floor(pick / 7), (kind + pick) % 3)
    return copy
  }
  return junk
}

const mutated = (valid: FastCheck.Arbitrary<unknown>): FastCheck.Arbitrary<unknown> =>
  FastCheck.tuple(
    valid,
    FastCheck.oneof(FastCheck.anything(), FastCheck.constant(undefined), FastCheck.string(), FastCheck.integer()),
    FastCheck.oneof(FastCheck.string(), FastCheck.constantFrom("_tag", "a", "b", "lo", "name", "x")),
    FastCheck.nat(),
    FastCheck.nat({ max: 3 })
  ).map(([value, junk, key, pick, kind]) => mutate(value, junk, key, pick, kind))

// Values Schema's own arbitraries produce that the fast path leaves to Schema on purpose: a "__proto__"
// record key (Schema's output sets the prototype instead of copying the key).
const hasProtoKey = (u: unknown): boolean => {
  if (Array.isArray(u)) return u.some(hasProtoKey)
  if (u !== null && typeof u === "object") {
    return Object.hasOwn(u, "__proto__") || Object.values(u).some(hasProtoKey)
  }
  return false
}

/** Whether Schema decodes `u` to a value deep-equal (prototypes included) to `u`. */
const decodesToItself = (schema: Schema.Schema<any, any, never>, u: unknown): boolean => {
  const decoded = ParseResult.decodeUnknownEither(schema)(u)
  return Either.isRight(decoded) && isDeepStrictEqual(decoded.right, u)
}

/**
 * The contract: `fast(u)` implies decode and encode succeed and return a value deep-equal to `u`.
 * And the converse for these schemas (no filter on a struct inside a union, where the fast path
 * over-approximates): a value Schema returns unchanged takes the fast path, except a "__proto__" key.
 */
const checkSound = (schema: Schema.Schema<any, any, never>, fast: SchemaValidator.Validator, u: unknown) => {
  if (!fast(u)) {
    if (!hasProtoKey(u)) expect(decodesToItself(schema, u), `slow path for ${safeString(u)}`).toBe(false)
    return
  }
  const decoded = ParseResult.decodeUnknownEither(schema)(u)
  expect(Either.isRight(decoded), `decode of ${safeString(u)}`).toBe(true)
  expect(isDeepStrictEqual(Either.getOrThrow(decoded), u), `decoded ${safeString(u)}`).toBe(true)
  const encoded = ParseResult.encodeUnknownEither(schema)(u)
  expect(Either.isRight(encoded), `encode of ${safeString(u)}`).toBe(true)
  expect(isDeepStrictEqual(Either.getOrThrow(encoded), u), `encoded ${safeString(u)}`).toBe(true)
}

const safeString = (u: unknown): string => {
  try {
    return JSON.stringify(u) ?? String(u)
  } catch {
    return String(u)
  }
}

describe("schemaValidator", () => {
  for (const [name, schema] of Object.entries(supported)) {
    describe(name, () => {
      const fast = SchemaValidator.compile(schema.ast)

      it("compiles", () => {
        expect(fast).toBeTypeOf("function")
      })

      it("accepts arbitrary valid values (and they decode to themselves)", () => {
        FastCheck.assert(
          FastCheck.property(Arbitrary.make(schema as Schema.Schema<unknown>), (u) => {
            checkSound(schema, fast!, u)
          }),
          { numRuns: 150 }
        )
      })

      it("never accepts what Schema rejects or would change (mutations)", () => {
        FastCheck.assert(
          FastCheck.property(
            mutated(Arbitrary.make(schema as Schema.Schema<unknown>)),
            (u) => checkSound(schema, fast!, u)
          ),
          { numRuns: 300 }
        )
      })

      it("never accepts what Schema rejects or would change (anything)", () => {
        FastCheck.assert(
          FastCheck.property(
            FastCheck.anything({ withNullPrototype: true, withObjectString: true }),
            (u) => checkSound(schema, fast!, u)
          ),
          { numRuns: 200 }
        )
      })
    })
  }

  it("is compiled once per AST", () => {
    expect(SchemaValidator.compile(Item.ast)).toBe(SchemaValidator.compile(Item.ast))
  })

  it("excess keys, class instances, missing required keys and stripped union members go to the slow path", () => {
    const fast = SchemaValidator.compile(Item.ast)!
    const item = { id: 1, name: "n", tags: ["t"], active: true, score: 2, created: "c" }
    expect(fast(item)).toBe(true)
    expect(fast({ ...item, extra: 1 })).toBe(false)
    expect(fast(Object.assign(Object.create(null), item))).toBe(false)
    class Like {
      constructor(readonly id: number) {}
    }
    expect(SchemaValidator.compile(Schema.Struct({ id: Schema.Number }).ast)!(new Like(1))).toBe(false)
    const nonEnumerable = { ...item }
    Object.defineProperty(nonEnumerable, "name", { value: "n", enumerable: false })
    expect(fast(nonEnumerable)).toBe(false)

    const undefinedAllowed = SchemaValidator.compile(Schema.Struct({ a: Schema.Unknown }).ast)!
    expect(undefinedAllowed({})).toBe(false) // Schema returns { a: undefined }
    expect(undefinedAllowed({ a: undefined })).toBe(true)

    const overlapping = SchemaValidator.compile(supported.overlapping.ast)!
    expect(overlapping({ a: 1 })).toBe(true)
    expect(overlapping({ b: "x" })).toBe(true)
    expect(overlapping({ a: 1, b: "x" })).toBe(false) // Schema picks the first member → { a: 1 }

    const shape = SchemaValidator.compile(Shape.ast)!
    expect(shape({ _tag: "Square", side: 2 })).toBe(true)
    expect(shape({ _tag: "Square", side: 2.5 })).toBe(false)
    expect(shape({ _tag: "Circle", radius: 11 })).toBe(false)
    expect(shape({ _tag: "Text", text: "" })).toBe(false)

    const record = SchemaValidator.compile(supported.record.ast)!
    expect(record(JSON.parse("{\"__proto__\": 1}"))).toBe(false)
    expect(record({ a: 1, b: Number.NaN })).toBe(true) // Schema.Number accepts NaN
  })

  it("unsupported schemas compile to undefined", () => {
    class Person extends Schema.Class<Person>("Person")({ name: Schema.String }) {}
    for (
      const schema of [
        Schema.Date,
        Schema.DateFromSelf,
        Person,
        Schema.NumberFromString,
        Schema.BigInt,
        Schema.BigIntFromSelf,
        Schema.SymbolFromSelf,
        Schema.Object,
        Schema.TemplateLiteral("a-", Schema.String),
        Schema.Struct({ at: Schema.Date }),
        Schema.Struct({ a: Schema.optionalWith(Schema.Number, { default: () => 1 }) }),
        Schema.Union(Schema.String, Schema.NumberFromString),
        Schema.Array(Schema.Trim),
        Schema.Record({ key: Schema.NonEmptyString, value: Schema.Number }),
        Schema.Struct({ a: Schema.Number }).annotations({ parseOptions: { onExcessProperty: "preserve" } }),
        Schema.Uint8ArrayFromSelf
      ] as ReadonlyArray<Schema.Schema.Any>
    ) {
      expect(SchemaValidator.compile(schema.ast), String(schema.ast)).toBeUndefined()
    }
  })

  it("a recursive schema with an unsupported node compiles to undefined", () => {
    interface Node {
      readonly at: Date
      readonly next: ReadonlyArray<Node>
    }
    const Node: Schema.Schema<Node, any> = Schema.Struct({
      next: Schema.Array(Schema.suspend(() => Node)),
      at: Schema.Date
    })
    expect(SchemaValidator.compile(Node.ast)).toBeUndefined()
  })

  it("a throwing filter or a stack overflow is a slow-path value, not a crash", () => {
    const fast = SchemaValidator.compile(
      Schema.Number.pipe(Schema.filter((n) => {
        if (n === 13) throw new Error("unlucky")
        return true
      })).ast
    )!
    expect(fast(12)).toBe(true)
    expect(fast(13)).toBe(false)
    let deep: Category = { name: "leaf", children: [] }
    for (let i = 0; i < 100_000; i++) deep = { name: "n", children: [deep] }
    expect(SchemaValidator.compile(Category.ast)!(deep)).toBe(false)
  })
})

/** JSON turns ±Infinity and NaN into null; such values do not round-trip through `application/json` (fast path or not). */
const jsonSafe = (u: unknown): boolean =>
  typeof u === "number"
    ? Number.isFinite(u)
    : Array.isArray(u)
    ? u.every(jsonSafe)
    : u !== null && typeof u === "object"
    ? Object.values(u).every(jsonSafe)
    : true

describe("Codec fast path", () => {
  const messageOf = (either: Either.Either<unknown, CodecError>): string => {
    if (Either.isRight(either)) throw new Error("expected a CodecError")
    expect(either.left).toBeInstanceOf(CodecError)
    return either.left.detail
  }

  for (const codec of [Codec.json, Codec.msgpack]) {
    describe(codec.contentType, () => {
      it("round-trips supported schemas", () => {
        for (
          const schema of [Item, Shape, supported.nested, supported.optionals, supported.recursive, supported.tupleRest]
        ) {
          const compiled = codec.compile(schema as Schema.Schema<unknown>)
          FastCheck.assert(
            FastCheck.property(Arbitrary.make(schema as Schema.Schema<unknown>).filter(jsonSafe), (value) => {
              const bytes = Either.getOrThrow(compiled.encode(value))
              const decoded = Either.getOrThrow(compiled.decode(bytes))
              // Both formats drop `undefined` members and turn -0 into 0; compare encoded forms through JSON.
              expect(JSON.parse(JSON.stringify(decoded))).toEqual(JSON.parse(JSON.stringify(value)))
            }),
            { numRuns: 100 }
          )
        }
      })

      it("strips excess keys on encode (slow path), as before", () => {
        const compiled = codec.compile(Item)
        const item = { id: 1, name: "n", tags: ["t"], active: true, score: 2, created: "c" }
        const bytes = Either.getOrThrow(compiled.encode({ ...item, secret: "x" } as typeof Item.Type))
        expect(Either.getOrThrow(compiled.decode(bytes))).toEqual(item)
        expect(Either.getOrThrow(compiled.decode(bytes))).not.toHaveProperty("secret")
      })

      it("error messages are the ParseResult messages", () => {
        const compiled = codec.compile(Shape)
        const serialize = (u: unknown) =>
          codec === Codec.json
            ? Buffer.from(JSON.stringify(u))
            : Either.getOrThrow(Codec.msgpack.compile(Schema.Unknown).encode(u))
        for (const bad of [{ _tag: "Square", side: 1.5 }, { _tag: "Nope" }, [1], "x", { _tag: "Text", text: "" }]) {
          const decodeIssue = ParseResult.decodeUnknownEither(Shape)(bad)
          expect(Either.isLeft(decodeIssue)).toBe(true)
          if (Either.isLeft(decodeIssue)) {
            expect(messageOf(compiled.decode(serialize(bad)))).toBe(
              `decode: ${ParseResult.TreeFormatter.formatIssueSync(decodeIssue.left)}`
            )
          }
          const encodeIssue = ParseResult.encodeUnknownEither(Shape)(bad)
          if (Either.isLeft(encodeIssue)) {
            expect(messageOf(compiled.encode(bad as typeof Shape.Type))).toBe(
              `encode: ${ParseResult.TreeFormatter.formatIssueSync(encodeIssue.left)}`
            )
          }
        }
      })
    })
  }

  it("json: a value the fast path accepts but JSON cannot carry fails as it did before", () => {
    const compiled = Codec.json.compile(Schema.Unknown)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(messageOf(compiled.encode(cyclic))).toMatch(/^encode: .*circular/i)
  })
})
