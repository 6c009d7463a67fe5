import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { schemasOf } from "../src/Contract.js"
import { BadRequest, CodecError, MicroError, TransportError } from "../src/Errors.js"
import { MAX_NESTING_DEPTH } from "../src/internal/codec/inputLimits.js"
import { Builder } from "../src/internal/codec/protobuf/builder.js"
import { codegen } from "../src/internal/codec/protobuf/codegen.js"
import { Reader, Writer } from "../src/internal/codec/protobuf/wire.js"
import * as Protobuf from "../src/Protobuf.js"
import { Account, Circle, Int64, Level, NotFound, Point, Shape, Square } from "./support/protobufSchemas.js"

const roundTrip = <A, I>(schema: Schema.Schema<A, I, never>, value: A): A => {
  const codec = Protobuf.compile(schema)
  const bytes = codec.encode(value)
  if (Either.isLeft(bytes)) throw new Error(bytes.left.detail)
  const decoded = codec.decode(bytes.right)
  if (Either.isLeft(decoded)) throw new Error(decoded.left.detail)
  return decoded.right
}

/** Property: decode(encode(a)) has the same encoded form as a, for arbitrary values of the schema. */
const property = <A, I>(schema: Schema.Schema<A, I, never>, numRuns = 150) => {
  const encode = Schema.encodeSync(schema)
  FastCheck.assert(
    FastCheck.property(Arbitrary.make(schema), (a) => {
      expect(encode(roundTrip(schema, a))).toEqual(encode(a))
    }),
    { numRuns }
  )
}

const decodeError = <A, I>(schema: Schema.Schema<A, I, never>, bytes: ReadonlyArray<number>): CodecError => {
  const result = Protobuf.compile(schema).decode(Uint8Array.from(bytes))
  if (Either.isRight(result)) throw new Error(`expected a CodecError, decoded ${JSON.stringify(result.right)}`)
  expect(result.left).toBeInstanceOf(CodecError)
  expect(result.left.contentType).toBe("application/protobuf")
  return result.left
}

describe("Protobuf codec", () => {
  describe("round trips (property-based)", () => {
    const cases: ReadonlyArray<[string, Schema.Schema<any, any, never>]> = [
      ["String", Schema.String],
      ["Number", Schema.Number],
      ["Int", Schema.Int],
      ["Boolean", Schema.Boolean],
      ["BigIntFromSelf", Int64],
      ["BigInt (string-encoded)", Schema.BigInt.pipe(Schema.betweenBigInt(-(2n ** 63n), 2n ** 63n - 1n))],
      ["Uint8ArrayFromSelf", Schema.Uint8ArrayFromSelf],
      ["Uint8Array (array-encoded)", Schema.Uint8Array],
      ["Date", Schema.Date],
      ["DateFromSelf (valid)", Schema.ValidDateFromSelf],
      ["literal union", Schema.Literal("a", "b", 3, true)],
      ["Enums", Schema.Enums(Level)],
      ["int32", Schema.Int.pipe(Schema.between(-(2 ** 31), 2 ** 31 - 1)).annotations(Protobuf.scalarType("int32"))],
      ["sint32", Schema.Int.pipe(Schema.between(-(2 ** 31), 2 ** 31 - 1)).annotations(Protobuf.scalarType("sint32"))],
      ["uint32", Schema.Int.pipe(Schema.between(0, 2 ** 32 - 1)).annotations(Protobuf.scalarType("uint32"))],
      ["fixed32", Schema.Int.pipe(Schema.between(0, 2 ** 32 - 1)).annotations(Protobuf.scalarType("fixed32"))],
      [
        "sfixed32",
        Schema.Int.pipe(Schema.between(-(2 ** 31), 2 ** 31 - 1)).annotations(Protobuf.scalarType("sfixed32"))
      ],
      ["sint64 number", Schema.Int.annotations(Protobuf.scalarType("sint64"))],
      ["uint64 number", Schema.NonNegativeInt.annotations(Protobuf.scalarType("uint64"))],
      ["fixed64 number", Schema.NonNegativeInt.annotations(Protobuf.scalarType("fixed64"))],
      ["sfixed64 number", Schema.Int.annotations(Protobuf.scalarType("sfixed64"))],
      [
        "sint64 bigint",
        Schema.BigIntFromSelf.pipe(Schema.betweenBigInt(-(2n ** 63n), 2n ** 63n - 1n)).annotations(
          Protobuf.scalarType("sint64")
        )
      ],
      [
        "uint64 bigint",
        Schema.BigIntFromSelf.pipe(Schema.betweenBigInt(0n, 2n ** 64n - 1n)).annotations(Protobuf.scalarType("uint64"))
      ],
      ["struct", Schema.Struct({ a: Schema.String, b: Schema.Number, c: Schema.Boolean })],
      ["nested struct", Schema.Struct({ inner: Schema.Struct({ deep: Schema.Struct({ v: Schema.String }) }) })],
      [
        "arrays",
        Schema.Struct({
          s: Schema.Array(Schema.String),
          n: Schema.Array(Schema.Number),
          b: Schema.Array(Schema.Boolean)
        })
      ],
      ["array of arrays", Schema.Array(Schema.Array(Schema.Int))],
      ["array of structs", Schema.Array(Schema.Struct({ k: Schema.String }))],
      ["record", Schema.Record({ key: Schema.String, value: Schema.Number })],
      ["record of structs", Schema.Record({ key: Schema.String, value: Schema.Struct({ n: Schema.Int }) })],
      ["record of arrays", Schema.Record({ key: Schema.String, value: Schema.Array(Schema.String) })],
      [
        "optional fields",
        Schema.Struct({
          a: Schema.optional(Schema.String),
          b: Schema.optionalWith(Schema.Number, { exact: true }),
          c: Schema.optional(Schema.Struct({ x: Schema.Number }))
        })
      ],
      [
        "NullOr",
        Schema.Struct({ a: Schema.NullOr(Schema.String), b: Schema.NullOr(Schema.Struct({ x: Schema.Int })) })
      ],
      ["top-level NullOr", Schema.NullOr(Schema.Number)],
      ["Option", Schema.Struct({ a: Schema.Option(Schema.String), b: Schema.OptionFromNullOr(Schema.Date) })],
      ["array of NullOr", Schema.Array(Schema.NullOr(Schema.String))],
      ["Class", Point],
      ["TaggedClass union (oneof)", Shape],
      ["array of oneof", Schema.Array(Shape)],
      [
        "tagged struct union",
        Schema.Union(
          Schema.TaggedStruct("A", { a: Schema.String }),
          Schema.TaggedStruct("B", { b: Schema.Number })
        )
      ],
      ["TaggedError", NotFound],
      ["MicroError", MicroError],
      ["everything", Account],
      ["optionalWith default", Schema.Struct({ n: Schema.optionalWith(Schema.Number, { default: () => 7 }) })],
      ["NumberFromString (transformation)", Schema.Struct({ n: Schema.NumberFromString })],
      ["refined string", Schema.Struct({ s: Schema.NonEmptyString, t: Schema.String.pipe(Schema.maxLength(5)) })],
      ["template literal", Schema.TemplateLiteral("id-", Schema.Number)],
      ["unicode strings", Schema.Array(Schema.String)],
      ["NonEmptyArray", Schema.Struct({ a: Schema.NonEmptyArray(Schema.String) })],
      ["bigint literal union", Schema.Literal(1n, 2n, "x")]
    ]
    for (const [name, schema] of cases) {
      it(name, () => property(schema))
    }

    it("long unicode strings and big messages (length prefix shifting)", () => {
      const schema = Schema.Struct({ s: Schema.String, nested: Schema.Struct({ t: Schema.String }) })
      FastCheck.assert(
        FastCheck.property(
          FastCheck.string({ unit: "binary", minLength: 30, maxLength: 20_000 }),
          FastCheck.string({ unit: "grapheme", maxLength: 300 }),
          (s, t) => {
            expect(roundTrip(schema, { s, nested: { t } })).toEqual({ s, nested: { t } })
          }
        ),
        { numRuns: 50 }
      )
    })
  })

  describe("values", () => {
    it("hostile field names cannot inject code into the generated codec", () => {
      // Each key closes the string literal it would have been pasted into and runs an expression.
      const hostile = [
        `x" + (globalThis.__pwned = "quote") + "`,
        `y\\" + (globalThis.__pwned = "backslash") + "`,
        `z\u2028" + (globalThis.__pwned = "separator") + "`
      ]
      const g = globalThis as { __pwned?: string }
      for (const key of hostile) {
        const schema = Schema.Struct({ [key]: Schema.String, n: Schema.Int })
        const codec = Protobuf.compile(schema)
        const value = { [key]: "v", n: 7 }
        expect(Either.getOrThrow(codec.decode(Either.getOrThrow(codec.encode(value))))).toEqual(value)
        // The missing-field path is where the name is part of the generated source.
        const missing = codec.encode({ n: 7 } as never)
        expect(Either.isLeft(missing) && missing.left.detail).toContain(`: missing`)
        expect(g.__pwned).toBeUndefined()
      }
    })

    it("Void travels as an empty body", () => {
      const codec = Protobuf.compile(Schema.Void)
      const bytes = Either.getOrThrow(codec.encode(undefined))
      expect(bytes.length).toBe(0)
      expect(Either.getOrThrow(codec.decode(bytes))).toBeUndefined()
    })

    it("top-level scalars are field 1 of a wrapper message", () => {
      expect([...Either.getOrThrow(Protobuf.compile(Schema.String).encode("hi"))]).toEqual([10, 2, 104, 105])
      expect([...Either.getOrThrow(Protobuf.compile(Schema.Int).encode(-1))]).toEqual([
        8,
        255,
        255,
        255,
        255,
        255,
        255,
        255,
        255,
        255,
        1
      ])
    })

    it("decodes classes and errors into their own classes", () => {
      const shape = roundTrip(Shape, new Circle({ center: new Point({ x: 1, y: 2 }), radius: 3 }))
      expect(shape).toBeInstanceOf(Circle)
      expect((shape as Circle).center).toBeInstanceOf(Point)
      expect(roundTrip(Shape, new Square({ corner: new Point({ x: 0, y: 0 }), side: 1 }))).toBeInstanceOf(Square)
      for (
        const error of [
          BadRequest.of("bad"),
          TransportError.of("reset", "127.0.0.1:1", "boom"),
          CodecError.of("x", "y")
        ]
      ) {
        const decoded = roundTrip(MicroError, error)
        expect(decoded).toBeInstanceOf(error.constructor)
        expect(decoded).toEqual(error)
      }
    })

    it("Option, nullable and optional collapse to presence", () => {
      const schema = Schema.Struct({
        a: Schema.Option(Schema.Int),
        b: Schema.NullOr(Schema.Int),
        c: Schema.optional(Schema.Int),
        d: Schema.Int
      })
      expect(roundTrip(schema, { a: Option.none(), b: null, d: 0 })).toEqual({ a: Option.none(), b: null, d: 0 })
      expect(roundTrip(schema, { a: Option.some(0), b: 0, c: 0, d: 5 })).toEqual({
        a: Option.some(0),
        b: 0,
        c: 0,
        d: 5
      })
    })

    it("keeps -0, NaN and infinities of doubles", () => {
      const schema = Schema.Array(Schema.Number)
      const out = roundTrip(schema, [-0, NaN, Infinity, -Infinity, 5e-324])
      expect(Object.is(out[0], -0)).toBe(true)
      expect(out.slice(1)).toEqual([NaN, Infinity, -Infinity, 5e-324])
    })

    it("float fields round to 32-bit precision", () => {
      const schema = Schema.Number.annotations(Protobuf.scalarType("float"))
      expect(roundTrip(schema, 0.1)).toBe(Math.fround(0.1))
    })

    it("recursive schemas through Schema.suspend", () => {
      interface Tree {
        readonly value: number
        readonly children: ReadonlyArray<Tree>
      }
      const Tree: Schema.Schema<Tree> = Schema.Struct({
        value: Schema.Number,
        children: Schema.Array(Schema.suspend((): Schema.Schema<Tree> => Tree))
      }).annotations({ identifier: "Tree" })
      const tree: Tree = {
        value: 1,
        children: [{ value: 2, children: [] }, { value: 3, children: [{ value: 4, children: [] }] }]
      }
      expect(roundTrip(Tree, tree)).toEqual(tree)
    })

    it("compile is memoised per Schema", () => {
      expect(Protobuf.compile(Account)).toBe(Protobuf.compile(Account))
    })

    it("codecAlias speaks the same bytes under application/x-protobuf", () => {
      expect(Protobuf.codecAlias.contentType).toBe("application/x-protobuf")
      const bytes = Either.getOrThrow(Protobuf.codecAlias.compile(Point).encode(new Point({ x: 1, y: 2 })))
      expect(Either.getOrThrow(Protobuf.compile(Point).decode(bytes))).toEqual(new Point({ x: 1, y: 2 }))
    })
  })

  describe("field numbers", () => {
    it("default to declaration order, constants (_tag) skipped", () => {
      const schema = Schema.TaggedStruct("T", { a: Schema.String, b: Schema.String })
      expect([...Either.getOrThrow(Protobuf.compile(schema).encode({ _tag: "T", a: "x", b: "y" }))]).toEqual([
        10,
        1,
        120,
        18,
        1,
        121
      ])
    })

    it("come from annotations on the field's Schema or its property signature", () => {
      const schema = Schema.Struct({
        a: Schema.String.annotations(Protobuf.fieldNumber(7)),
        b: Schema.propertySignature(Schema.String).annotations(Protobuf.fieldNumber(100)),
        c: Schema.optional(Schema.String.annotations(Protobuf.fieldNumber(9)))
      })
      const bytes = [...Either.getOrThrow(Protobuf.compile(schema).encode({ a: "x", b: "y", c: "z" }))]
      expect(bytes).toEqual([58, 1, 120, 162, 6, 1, 121, 74, 1, 122])
      expect(roundTrip(schema, { a: "x", b: "y", c: "z" })).toEqual({ a: "x", b: "y", c: "z" })
    })

    it("a clash is a clear error", () => {
      const schema = Schema.Struct({ a: Schema.String, b: Schema.String.annotations(Protobuf.fieldNumber(1)) })
      const result = Protobuf.validate(schema)
      expect(Either.isLeft(result) && result.left.reason).toBe("FieldNumber")
      const encoded = Protobuf.compile(schema).encode({ a: "x", b: "y" })
      expect(Either.isLeft(encoded) && encoded.left.detail).toMatch(/field number 1 is already used by "a"/)
    })
  })

  describe("unknown fields", () => {
    it("are skipped (every wire type, groups included)", () => {
      const wide = Schema.Struct({
        a: Schema.String,
        b: Schema.Number,
        c: Schema.Array(Schema.Int),
        d: Schema.Struct({ x: Schema.String }),
        e: Schema.Int.annotations(Protobuf.scalarType("fixed32")),
        f: Schema.Int
      })
      const narrow = Schema.Struct({ a: Schema.String })
      const bytes = Either.getOrThrow(
        Protobuf.compile(wide).encode({ a: "keep", b: 1.5, c: [1, 2], d: { x: "y" }, e: 7, f: 300 })
      )
      // + an unknown group (field 20: start 163 1, varint field 1, end 164 1)
      const withGroup = Uint8Array.from([...bytes, 163, 1, 8, 1, 164, 1])
      expect(Either.getOrThrow(Protobuf.compile(narrow).decode(withGroup))).toEqual({ a: "keep" })
    })

    it("missing fields read as proto3 defaults", () => {
      const schema = Schema.Struct({
        s: Schema.String,
        n: Schema.Number,
        b: Schema.Boolean,
        l: Schema.Array(Schema.Int),
        m: Schema.Record({ key: Schema.String, value: Schema.Int }),
        e: Schema.Literal("x", "y"),
        big: Schema.BigIntFromSelf,
        bytes: Schema.Uint8ArrayFromSelf,
        nested: Schema.Struct({ z: Schema.Int })
      })
      expect(Either.getOrThrow(Protobuf.compile(schema).decode(new Uint8Array(0)))).toEqual({
        s: "",
        n: 0,
        b: false,
        l: [],
        m: {},
        e: "x",
        big: 0n,
        bytes: new Uint8Array(0),
        nested: { z: 0 }
      })
    })
  })

  describe("bad input → CodecError, never a throw or a hang", () => {
    const S = Schema.Struct({ name: Schema.String, n: Schema.Int, tags: Schema.Array(Schema.Int) })

    it("truncated varint", () => {
      expect(decodeError(S, [16, 0x80]).detail).toMatch(/truncated/)
    })
    it("truncated fixed64", () => {
      expect(decodeError(Schema.Number, [9, 0, 0, 0]).detail).toMatch(/truncated/)
    })
    it("over-long varint", () => {
      expect(decodeError(S, [16, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).detail).toMatch(
        /longer than 10 bytes/
      )
    })
    it("wrong wire type for a known field", () => {
      expect(decodeError(S, [13, 0, 0, 0, 0]).detail).toMatch(
        /field name \(1\): wire type fixed32, expected length-delimited/
      )
    })
    it("oversized length", () => {
      expect(decodeError(S, [10, 5, 97]).detail).toMatch(/exceeds/)
    })
    it("negative length", () => {
      expect(decodeError(S, [10, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]).detail).toMatch(/exceeds/)
    })
    it("field number 0 and invalid wire types", () => {
      expect(decodeError(S, [0, 0]).detail).toMatch(/field number 0/)
      expect(decodeError(S, [0x7e, 0]).detail).toMatch(/invalid wire type 6/)
    })
    it("unterminated or mismatched group", () => {
      expect(decodeError(S, [163, 1, 8, 1]).detail).toMatch(/truncated/)
      expect(decodeError(S, [163, 1, 172, 1]).detail).toMatch(/mismatched end-group/)
    })
    it("invalid UTF-8", () => {
      expect(decodeError(S, [10, 2, 0xc3, 0x28]).detail).toMatch(/UTF-8/)
    })
    it("unknown enum numbers decode as the first value (proto3 enums are open)", () => {
      const E = Schema.Struct({ e: Schema.Literal("a", "b"), es: Schema.Array(Schema.Literal("a", "b")) })
      const codec = Protobuf.compile(E)
      // e = 9; es packed [1, 7, 0]; es unpacked 5
      expect(codec.decode(Uint8Array.from([8, 9, 18, 3, 1, 7, 0, 16, 5]))).toEqual(
        Either.right({ e: "a", es: ["b", "a", "a", "a"] })
      )
      // A negative number (int32 -1 is a 10-byte varint) too; known numbers are unchanged.
      expect(codec.decode(Uint8Array.from([8, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1]))).toEqual(
        Either.right({ e: "a", es: [] })
      )
      expect(codec.decode(Uint8Array.from([8, 1]))).toEqual(Either.right({ e: "b", es: [] }))
    })
    it("int64 beyond the safe range of a number field", () => {
      expect(decodeError(S, [16, 255, 255, 255, 255, 255, 255, 255, 255, 127]).detail).toMatch(/safe integer/)
    })
    it("empty NonEmptyArray", () => {
      expect(decodeError(Schema.Struct({ a: Schema.NonEmptyArray(Schema.Int) }), []).detail).toMatch(/at least 1/)
    })
    it("no oneof member set", () => {
      expect(decodeError(Shape, []).detail).toMatch(/no member of the union/)
    })
    it("refinements are checked on decode", () => {
      expect(decodeError(Schema.Struct({ s: Schema.NonEmptyString }), []).detail).toMatch(/Expected a non empty string/)
    })
    it("non-Uint8Array input", () => {
      const result = Protobuf.compile(S).decode("nope" as any)
      expect(Either.isLeft(result)).toBe(true)
    })
    it("deeply nested recursive input is bounded", () => {
      interface Node {
        readonly next: Node | null
      }
      const Node: Schema.Schema<Node> = Schema.Struct({
        next: Schema.NullOr(Schema.suspend((): Schema.Schema<Node> => Node))
      })
      const nested = (levels: number): Array<number> => {
        let bytes = new Uint8Array(0)
        for (let i = 0; i < levels; i++) {
          const prefix = [10]
          for (let len = bytes.length;; len >>>= 7) {
            if (len < 128) {
              prefix.push(len)
              break
            }
            prefix.push((len & 127) | 128)
          }
          bytes = Uint8Array.from([...prefix, ...bytes])
        }
        return [...bytes]
      }
      // MAX_NESTING_DEPTH (128, shared with the other codecs) nested messages decode; one more is refused.
      expect(MAX_NESTING_DEPTH).toBe(128)
      const ok = Protobuf.compile(Node).decode(Uint8Array.from(nested(MAX_NESTING_DEPTH)))
      expect(Either.isRight(ok)).toBe(true)
      let depth = 0
      for (let n: Node | null = Either.getOrThrow(ok); n !== null; n = n.next) depth++
      expect(depth).toBe(MAX_NESTING_DEPTH + 1)
      const error = decodeError(Node, nested(MAX_NESTING_DEPTH + 1))
      expect(error).toBeInstanceOf(CodecError)
      expect(error.detail).toMatch(/nested more than 128 deep \(MAX_NESTING_DEPTH\)/)
      expect(decodeError(Node, nested(2000)).detail).toMatch(/MAX_NESTING_DEPTH/)
    })
    it("random bytes never throw (fuzz)", () => {
      const codecs = [S, Account, MicroError, Shape].map((s) => Protobuf.compile(s as Schema.Schema<any, any, never>))
      FastCheck.assert(
        FastCheck.property(FastCheck.uint8Array({ maxLength: 200 }), (bytes) => {
          for (const codec of codecs) {
            const result = codec.decode(bytes)
            expect(Either.isLeft(result) || Either.isRight(result)).toBe(true)
          }
        }),
        { numRuns: 2000 }
      )
    })
    it("mutated valid messages never throw (fuzz)", () => {
      const codec = Protobuf.compile(MicroError)
      const valid = Either.getOrThrow(codec.encode(TransportError.of("reset", "127.0.0.1:9", "boom")))
      FastCheck.assert(
        FastCheck.property(FastCheck.nat(valid.length - 1), FastCheck.integer({ min: 0, max: 255 }), (i, b) => {
          const bytes = Uint8Array.from(valid)
          bytes[i] = b
          const result = codec.decode(bytes)
          expect(Either.isLeft(result) || Either.isRight(result)).toBe(true)
        }),
        { numRuns: 1000 }
      )
    })
  })

  describe("bad values on encode → CodecError", () => {
    const S = Schema.Struct({ name: Schema.String, n: Schema.Int })
    it("wrong types, missing fields, refinement failures", () => {
      const codec = Protobuf.compile(S)
      for (const bad of [{ name: 1, n: 1 }, { name: "x" }, { name: "x", n: 1.5 }, null, "str"]) {
        const result = codec.encode(bad as any)
        expect(Either.isLeft(result) && result.left).toBeInstanceOf(CodecError)
      }
    })
    it("out-of-range integers for annotated scalar types", () => {
      const codec = Protobuf.compile(Schema.Number.annotations(Protobuf.scalarType("uint32")))
      expect(Either.isLeft(codec.encode(-1))).toBe(true)
      expect(Either.isLeft(codec.encode(2 ** 32))).toBe(true)
    })
    it("values matching no union member", () => {
      const result = Protobuf.compile(Shape).encode({ _tag: "Triangle" } as any)
      expect(Either.isLeft(result) && result.left.detail).toMatch(/no union member matches/)
    })
    it("bigints outside 64 bits", () => {
      expect(Either.isLeft(Protobuf.compile(Schema.BigIntFromSelf).encode(2n ** 63n))).toBe(true)
      const uint = Protobuf.compile(Schema.BigIntFromSelf.annotations(Protobuf.scalarType("uint64")))
      expect(Either.isLeft(uint.encode(-1n))).toBe(true)
      expect(Either.getOrThrow(uint.decode(Either.getOrThrow(uint.encode(2n ** 64n - 1n))))).toBe(2n ** 64n - 1n)
    })
    it("invalid dates", () => {
      expect(Either.isLeft(Protobuf.compile(Schema.DateFromSelf).encode(new Date(NaN)))).toBe(true)
    })
  })

  describe("unsupported schemas → clear error", () => {
    const cases: ReadonlyArray<[string, Schema.Schema<any, any, never>, RegExp]> = [
      ["Unknown", Schema.Unknown, /UnknownKeyword.*no protobuf mapping/],
      ["Any", Schema.Struct({ a: Schema.Any }), /a: AnyKeyword/],
      [
        "primitive | struct",
        Schema.Union(Schema.String, Schema.Struct({ a: Schema.String })),
        /union member string is not a struct/
      ],
      ["tuple", Schema.Tuple(Schema.String, Schema.Number), /tuples have no protobuf mapping/],
      [
        "symbol-keyed record",
        Schema.Record({ key: Schema.SymbolFromSelf, value: Schema.String }),
        /map keys must be strings/
      ],
      ["Never", Schema.Never as unknown as Schema.Schema<any, any, never>, /Schema.Never/],
      ["scalar type mismatch", Schema.String.annotations(Protobuf.scalarType("int32")), /cannot carry a string/],
      ["optional array", Schema.Struct({ a: Schema.NullOr(Schema.Array(Schema.String)) }), /optional array/]
    ]
    for (const [name, schema, detail] of cases) {
      it(name, () => {
        const result = Protobuf.validate(schema)
        expect(Either.isLeft(result)).toBe(true)
        const codec = Protobuf.compile(schema)
        const encoded = codec.encode(undefined)
        const decoded = codec.decode(new Uint8Array(0))
        expect(Either.isLeft(encoded) && encoded.left.detail).toMatch(detail)
        expect(Either.isLeft(decoded) && decoded.left.detail).toMatch(/unsupported schema/)
      })
    }
  })

  describe("closure plan (used where code generation is unavailable)", () => {
    it("struct messages are generated by default", () => {
      expect((new Builder().root(Account.ast, "A").message.writeBody as any).generated).toBe(true)
    })
    it("gives the same bytes and values as the generated plan", () => {
      const generated = new Builder().root(Account.ast, "A")
      codegen.enabled = false
      let closures: ReturnType<Builder["root"]>
      try {
        closures = new Builder().root(Account.ast, "A")
      } finally {
        codegen.enabled = true
      }
      expect((closures.message.writeBody as any).generated).toBeUndefined()
      const encode = (root: typeof closures, a: unknown) => {
        const w = new Writer(64)
        root.writeBody(w, a)
        return w.finish()
      }
      const toEncoded = Schema.encodeSync(Account)
      FastCheck.assert(
        FastCheck.property(Arbitrary.make(Account), (a) => {
          const bytes = encode(closures, a)
          expect(bytes).toEqual(encode(generated, a))
          const decoded = closures.readBody(new Reader(bytes, 0, bytes.length), bytes.length)
          expect(toEncoded(decoded)).toEqual(toEncoded(a))
        }),
        { numRuns: 100 }
      )
      expect(() => closures.readBody(new Reader(Uint8Array.from([18, 5, 1]), 0, 3), 3)).toThrow(/exceeds/)
    })
  })
})

describe("Protobuf error details and framework error codes", () => {
  class User extends Schema.Class<User>("my/app/User")({ name: Schema.String, age: Schema.Int }) {}

  it("a failure names the emitted .proto message, not the Schema's identifier", () => {
    const codec = Protobuf.compile(User)
    const encoded = codec.encode({ name: 1, age: 2 } as any)
    expect(Either.isLeft(encoded) && encoded.left.detail).toBe("encode: User.name: Expected string, actual 1")
    const notAUser = codec.encode("nope" as any)
    expect(Either.isLeft(notAUser) && notAUser.left.detail).toMatch(/^encode: User: Expected User\b.*, actual "nope"$/)
    expect(Either.isLeft(notAUser) && notAUser.left.detail).not.toContain("my/app/User")
    // A refinement of a message (a filter on the whole struct) names the message too.
    const Range = Schema.Struct({ lo: Schema.Number, hi: Schema.Number }).pipe(
      Schema.filter((r) => r.lo <= r.hi || "lo above hi", { identifier: "my/app/Range" })
    )
    const range = Protobuf.compile(Range).decode(Uint8Array.from([9, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f]))
    expect(Either.isLeft(range) && range.left.detail).toBe("decode: Range: lo above hi")
    // The same name as in the emitted file.
    expect(Protobuf.toProto(RpcGroup.make(Rpc.make("Save", { payload: User })))).toContain("message User {")
  })

  it("an endpoint's anonymous messages are named in details as in the emitted .proto (HelloRequest, MicroError)", () => {
    const Group = RpcGroup.make(
      Rpc.make("SetMood", {
        payload: { mood: Schema.Literal("happy", "sad"), inner: Schema.Struct({ s: Schema.String }) },
        success: Schema.Struct({ ok: Schema.Boolean }),
        error: Schema.Union(NotFound, Schema.Struct({ _tag: Schema.Literal("Busy") }))
      })
    )
    const proto = Protobuf.toProto(Group)
    for (const name of ["SetMoodRequest", "SetMoodResponse", "SetMoodError", "MicroError"]) {
      expect(proto).toContain(`message ${name} {`)
    }
    expect(proto).toContain("enum SetMoodRequestMood {")
    // The Schemas the runtime compiles for the endpoint (client and server alike).
    const schemas = schemasOf(Group.requests.get("SetMood")! as Rpc.AnyWithProps)
    const request = Protobuf.compile(schemas.request)
    const missing = request.encode({ mood: "happy" } as any)
    expect(Either.isLeft(missing) && missing.left.detail).toBe("encode: SetMoodRequest.inner: missing")
    const mood = request.encode({ mood: "angry", inner: { s: "" } } as any)
    expect(Either.isLeft(mood) && mood.left.detail).toBe(
      "encode: string angry is not one of SetMoodRequestMood's values"
    )
    const response = Protobuf.compile(schemas.response).encode({ ok: "yes" } as any)
    expect(Either.isLeft(response) && response.left.detail).toBe(
      "encode: SetMoodResponse.ok: expected bool, got string yes"
    )
    // The closure plan (no code generation) says the same.
    codegen.enabled = false
    try {
      const closures = new Builder().root(
        Schema.Struct({ ok: Schema.Boolean, n: Schema.Number }).ast,
        "SetMoodResponse"
      )
      expect(() => closures.writeBody(new Writer(16), { ok: true, n: "1" })).toThrow(
        "SetMoodResponse.n: expected double (number), got string 1"
      )
    } finally {
      codegen.enabled = true
    }
    const error = Protobuf.compile(schemas.error).decode(new Uint8Array(0))
    expect(Either.isLeft(error) && error.left.detail).toBe("decode: SetMoodError: no member of the union is set")
    const framework = Protobuf.compile(MicroError).decode(new Uint8Array(0))
    expect(Either.isLeft(framework) && framework.left.detail).toBe("decode: MicroError: no member of the union is set")
    // Only the protobuf name is recorded: the JSON codec and Schema see the same Schema as before.
    expect(Schema.decodeUnknownSync(schemas.request)({ mood: "sad", inner: { s: "x" } })).toEqual({
      mood: "sad",
      inner: { s: "x" }
    })
    // A Schema with an identifier keeps its name (as in toProto).
    const classy = schemasOf(Rpc.make("Save", { payload: User }) as unknown as Rpc.AnyWithProps)
    expect(classy.request).toBe(User)
  })

  it("the framework error code is an int32 in the .proto and a varint on the wire", () => {
    const proto = Protobuf.toProto(RpcGroup.make(Rpc.make("Ping")))
    expect(proto).toContain("message BadRequest {\n  string id = 1;\n  int32 code = 2;")
    expect(proto).not.toMatch(/double code/)
    const bytes = Either.getOrThrow(Protobuf.compile(BadRequest).encode(BadRequest.of("x", "svc")))
    // id = "svc" (field 1), then code = 400 as field 2, wire type 0 (varint): 0x10, 0x90 0x03.
    expect([...bytes.subarray(0, 8)]).toEqual([10, 3, 115, 118, 99, 0x10, 0x90, 0x03])
    expect(roundTrip(MicroError, BadRequest.of("x", "svc"))).toEqual(BadRequest.of("x", "svc"))
    // go-micro's errors.proto: int32, so a code outside int32 (or not an integer) is refused, typed.
    const bad = Protobuf.compile(BadRequest).encode(Object.assign(BadRequest.of("x"), { code: 2 ** 31 }))
    expect(Either.isLeft(bad) && bad.left).toBeInstanceOf(CodecError)
    expect(Either.isLeft(bad) && bad.left.detail).toMatch(
      /BadRequest\.code: Expected a number between -2147483648 and 2147483647/
    )
    // A code written as a double by an older peer is a typed error, not a crash.
    const old = Protobuf.compile(BadRequest).decode(Uint8Array.from([0x11, 0, 0, 0, 0, 0, 0, 0x79, 0x40]))
    expect(Either.isLeft(old) && old.left.detail).toMatch(/field code \(2\): wire type fixed64, expected varint/)
  })
})
