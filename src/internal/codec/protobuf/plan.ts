/**
 * Schema AST → protobuf plan.
 *
 * The AST is walked once per Schema. Every node becomes a `Type` whose `write`/`read` work on the
 * Schema's **Type side** values:
 * - keywords, literals, enums, structs, records, arrays, unions of literals or messages and refinements
 *   (their filters run on both directions) are handled directly, without calling into Schema;
 * - Date, bigint, Uint8Array and Option are recognised on the type side whatever their encoded form
 *   (so `Schema.Date` travels as a Timestamp and `Schema.BigInt` as an int64);
 * - any other transformation (classes, `optionalWith` defaults, `NumberFromString`, user transforms) runs
 *   Schema's own encode/decode for that node only and lays out its `from` side on the wire.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { errorMessage } from "../../common/text.js"
import { MAX_NESTING_DEPTH } from "../inputLimits.js"
import { identifierOf, pascal } from "./names.js"
import {
  joinBigintSigned,
  joinBigintUnsigned,
  joinSigned,
  joinUnsigned,
  Reader,
  scratch64,
  splitBigint,
  splitNumber,
  WireError,
  type Writer
} from "./wire.js"

// ---------------------------------------------------------------------------------------------
// annotations

/** @internal */
export const FieldNumberId: unique symbol = Symbol.for("effect-micro/Protobuf/FieldNumber")
/** @internal */
export const ScalarTypeId: unique symbol = Symbol.for("effect-micro/Protobuf/Type")

/** @internal */
export type ScalarName =
  | "double"
  | "float"
  | "int32"
  | "int64"
  | "uint32"
  | "uint64"
  | "sint32"
  | "sint64"
  | "fixed32"
  | "fixed64"
  | "sfixed32"
  | "sfixed64"
  | "bool"
  | "string"
  | "bytes"

/** Raised while building a plan: the Schema cannot be mapped to protobuf. */
export class PlanError extends Error {
  constructor(readonly reason: "Unsupported" | "FieldNumber", readonly path: string, detail: string) {
    super(`${path === "" ? "<root>" : path}: ${detail}`)
    this.name = "PlanError"
  }
}

// ---------------------------------------------------------------------------------------------
// types

interface Base {
  /** Wire type of one value (0 varint, 1 fixed64, 2 length-delimited, 5 fixed32). */
  readonly wire: number
  /** Writes one value (without its key). */
  write(w: Writer, v: any): void
  /** Reads one value whose key has been read. */
  read(r: Reader): any
}

/** @internal */
export interface ScalarType extends Base {
  readonly _tag: "Scalar"
  readonly scalar: ScalarName
  readonly packable: boolean
  readonly zero: unknown
  isZero(v: any): boolean
}
/** @internal */
export interface EnumType extends Base {
  readonly _tag: "Enum"
  name: string
  readonly values: ReadonlyArray<unknown>
  readonly labels: ReadonlyArray<string>
}
/** @internal */
export interface MessageType extends Base {
  readonly _tag: "Message"
  name: string
  fields: Array<Field>
  /** A wrapper: the value is the single field's value (top-level scalars, nested repeated). */
  boxed: boolean
  /** A oneof wrapper for a union of messages. */
  oneof: Oneof | undefined
  /** `Timestamp` for dates. */
  wellKnown: "Timestamp" | undefined
  /** Encodes the body (no length prefix). */
  writeBody(w: Writer, v: any): void
  /** Decodes a body that ends at `end`. */
  readBody(r: Reader, end: number): any
}
/** @internal */
export interface Oneof {
  readonly name: string
  readonly members: ReadonlyArray<{ readonly fieldName: string; readonly number: number; readonly type: Type }>
  readonly dispatch: (v: any) => number
}
/** @internal */
export interface RepeatedType {
  readonly _tag: "Repeated"
  readonly element: Type
}
/** @internal */
export interface MapType {
  readonly _tag: "Map"
  readonly key: Type & Base
  readonly value: Type
}
/** @internal */
export interface OptionalType {
  readonly _tag: "Optional"
  readonly inner: Type
  readonly kind: "nullish" | "option"
}
/** @internal */
export interface ConstantType {
  readonly _tag: "Constant"
  readonly value: unknown
}
/** A type whose values are converted (transformation) or checked (refinement) around `inner`. */
export interface MappedType extends Base {
  readonly _tag: "Mapped"
  readonly inner: Type
  readonly to: (v: any) => any
  readonly from: (v: any) => any
}

/** @internal */
export type Type =
  | ScalarType
  | EnumType
  | MessageType
  | RepeatedType
  | MapType
  | OptionalType
  | ConstantType
  | MappedType

/** @internal */
export interface Field {
  readonly name: string
  readonly key: PropertyKey
  readonly number: number
  readonly type: Type
  /** The property may be missing (Schema `optional`): absent on the wire ↔ key missing. */
  readonly optionalKey: boolean
  write(w: Writer, v: any): void
  /** Reads one occurrence; `prev` is the value so far (for repeated/map accumulation). */
  read(r: Reader, wireType: number, prev: any): any
  /** The value when the field never appeared (or `Absent` to leave the key out). */
  missing(): any
}

/** Marker: leave the key out of the decoded object. */
export const Absent: unique symbol = Symbol.for("effect-micro/Protobuf/Absent")

// ---------------------------------------------------------------------------------------------
// scalars

const fail = (message: string): never => {
  throw new WireError(message)
}
const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`

/** JSON-ish text of a literal (bigints included), for messages and `.proto` comments. */
export const showLiteral = (v: unknown): string =>
  typeof v === "bigint" ? `${v}n` : v === undefined ? "undefined" : JSON.stringify(v)

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max

const numberScalar = (
  scalar: ScalarName,
  wire: number,
  write: (w: Writer, v: number) => void,
  read: (r: Reader) => number,
  check: (v: unknown) => boolean
): ScalarType => ({
  _tag: "Scalar",
  scalar,
  wire,
  packable: true,
  zero: 0,
  isZero: (v) => v === 0 && !Object.is(v, -0),
  write: (w, v) => {
    if (!check(v)) fail(`expected ${scalar} (number), got ${describe(v)}`)
    write(w, v)
  },
  read
})

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const UINT32_MAX = 4294967295
const SAFE = Number.MAX_SAFE_INTEGER

const readInt64Number = (signed: boolean) => (value: number): number => {
  if (!Number.isSafeInteger(value)) {
    fail(`${signed ? "int64" : "uint64"} value ${value} is outside the safe integer range of a number field`)
  }
  return value
}
const checkSafe = readInt64Number(true)
const checkSafeU = readInt64Number(false)

const zigzag64 = (): void => {
  const { hi, lo } = scratch64
  const sign = hi >> 31
  scratch64.hi = (((hi << 1) | (lo >>> 31)) ^ sign) >>> 0
  scratch64.lo = ((lo << 1) ^ sign) >>> 0
}
const unzigzag64 = (): void => {
  const { hi, lo } = scratch64
  const sign = -(lo & 1)
  scratch64.lo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0
  scratch64.hi = ((hi >>> 1) ^ sign) >>> 0
}

const numberScalars: Record<string, ScalarType> = {
  double: numberScalar("double", 1, (w, v) => w.double(v), (r) => r.double(), (v) => typeof v === "number"),
  float: numberScalar("float", 5, (w, v) => w.float(v), (r) => r.float(), (v) => typeof v === "number"),
  int32: numberScalar(
    "int32",
    0,
    (w, v) => w.int32(v),
    (r) => r.uint32() | 0,
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  uint32: numberScalar("uint32", 0, (w, v) => w.uint32(v), (r) => r.uint32(), (v) => isInt(v, 0, UINT32_MAX)),
  sint32: numberScalar(
    "sint32",
    0,
    (w, v) => w.uint32(((v << 1) ^ (v >> 31)) >>> 0),
    (r) => {
      const z = r.uint32()
      return (z >>> 1) ^ -(z & 1)
    },
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  fixed32: numberScalar("fixed32", 5, (w, v) => w.fixed32(v), (r) => r.fixed32(), (v) => isInt(v, 0, UINT32_MAX)),
  sfixed32: numberScalar(
    "sfixed32",
    5,
    (w, v) => w.fixed32(v),
    (r) => r.fixed32() | 0,
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  int64: numberScalar("int64", 0, (w, v) => {
    splitNumber(v)
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE)),
  uint64: numberScalar("uint64", 0, (w, v) => {
    splitNumber(v)
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    return checkSafeU(joinUnsigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, 0, SAFE)),
  sint64: numberScalar("sint64", 0, (w, v) => {
    splitNumber(v)
    zigzag64()
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    unzigzag64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE)),
  fixed64: numberScalar("fixed64", 1, (w, v) => {
    splitNumber(v)
    w.fixed32(scratch64.lo)
    w.fixed32(scratch64.hi)
  }, (r) => {
    r.fixed64()
    return checkSafeU(joinUnsigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, 0, SAFE)),
  sfixed64: numberScalar("sfixed64", 1, (w, v) => {
    splitNumber(v)
    w.fixed32(scratch64.lo)
    w.fixed32(scratch64.hi)
  }, (r) => {
    r.fixed64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE))
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

const bigintScalar = (
  scalar: ScalarName,
  wire: number,
  signed: boolean,
  encode: (w: Writer) => void,
  decode: (r: Reader) => void
): ScalarType => ({
  _tag: "Scalar",
  scalar,
  wire,
  packable: true,
  zero: 0n,
  isZero: (v) => v === 0n,
  write: (w, v) => {
    if (typeof v !== "bigint" || v < (signed ? INT64_MIN : 0n) || v > (signed ? INT64_MAX : UINT64_MAX)) {
      fail(`expected ${scalar} (bigint), got ${describe(v)}`)
    }
    splitBigint(v)
    encode(w)
  },
  read: (r) => {
    decode(r)
    return signed ? joinBigintSigned(scratch64.lo, scratch64.hi) : joinBigintUnsigned(scratch64.lo, scratch64.hi)
  }
})
const writeVarint64 = (w: Writer) => w.varint64(scratch64.lo, scratch64.hi)
const writeFixed64 = (w: Writer) => {
  w.fixed32(scratch64.lo)
  w.fixed32(scratch64.hi)
}
const bigintScalars: Record<string, ScalarType> = {
  int64: bigintScalar("int64", 0, true, writeVarint64, (r) => r.varint64()),
  uint64: bigintScalar("uint64", 0, false, writeVarint64, (r) => r.varint64()),
  sint64: bigintScalar("sint64", 0, true, (w) => {
    zigzag64()
    writeVarint64(w)
  }, (r) => {
    r.varint64()
    unzigzag64()
  }),
  fixed64: bigintScalar("fixed64", 1, false, writeFixed64, (r) => r.fixed64()),
  sfixed64: bigintScalar("sfixed64", 1, true, writeFixed64, (r) => r.fixed64())
}

const boolScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "bool",
  wire: 0,
  packable: true,
  zero: false,
  isZero: (v) => v === false,
  write: (w, v) => {
    if (typeof v !== "boolean") fail(`expected bool, got ${describe(v)}`)
    w.uint32(v ? 1 : 0)
  },
  read: (r) => {
    r.varint64()
    return scratch64.lo !== 0 || scratch64.hi !== 0
  }
}
const stringScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "string",
  wire: 2,
  packable: false,
  zero: "",
  isZero: (v) => v === "",
  write: (w, v) => {
    if (typeof v !== "string") fail(`expected string, got ${describe(v)}`)
    w.string(v)
  },
  read: (r) => r.string()
}
const bytesScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "bytes",
  wire: 2,
  packable: false,
  zero: new Uint8Array(0),
  isZero: (v) => v.length === 0,
  write: (w, v) => {
    if (!(v instanceof Uint8Array)) fail(`expected bytes (Uint8Array), got ${describe(v)}`)
    w.bytes(v)
  },
  read: (r) => r.bytes()
}

// ---------------------------------------------------------------------------------------------
// builder

const IntSchemaId = Symbol.for("effect/SchemaId/Int")

const typeConstructorTag = (ast: AST.AST): string | undefined => {
  const tc = ast.annotations[AST.TypeConstructorAnnotationId] as { _tag?: string } | undefined
  return tc?._tag
}

/** The type-side core of a node (refinements and transformations peeled), for recognising Date & co. */
const typeCore = (ast: AST.AST): AST.AST => {
  for (;;) {
    if (AST.isRefinement(ast)) ast = ast.from
    else if (AST.isTransformation(ast)) ast = ast.to
    else return ast
  }
}

const isNullish = (ast: AST.AST): boolean =>
  AST.isUndefinedKeyword(ast) || AST.isVoidKeyword(ast) || (AST.isLiteral(ast) && ast.literal === null)

/** Finds an annotation on a node or down its refinement chain (outermost wins). */
const findAnnotation = <A>(ast: AST.AST, id: symbol): A | undefined => {
  for (;;) {
    const v = ast.annotations[id]
    if (v !== undefined) return v as A
    if (AST.isRefinement(ast)) ast = ast.from
    else if (AST.isUnion(ast)) {
      // `Schema.optional(X.annotations(...))` / `Schema.NullOr(...)`: look into the non-nullish member.
      const rest = ast.types.filter((t) => !isNullish(t))
      if (rest.length !== 1) return undefined
      ast = rest[0]!
    } else return undefined
  }
}

const hasIntRefinement = (ast: AST.AST): boolean => {
  for (;;) {
    if (!AST.isRefinement(ast)) return false
    if (ast.annotations[AST.SchemaIdAnnotationId] === IntSchemaId) return true
    ast = ast.from
  }
}

/** @internal */
export interface Root {
  readonly message: MessageType
  readonly writeBody: (w: Writer, v: any) => void
  readonly readBody: (r: Reader, end: number) => any
}

/** @internal */
export const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

export { pascal }

/**
 * A Schema failure as `Name.field: message`, `Name` being the emitted `.proto` name (what a peer in
 * another language sees), not the Schema's identifier (`my/app/User`), which is replaced where Schema's
 * own message mentions it. At most three issues are listed.
 */
const formatIssue = (issue: ParseResult.ParseIssue, name?: string, identifier?: string): string => {
  const issues = ParseResult.ArrayFormatter.formatIssueSync(issue)
  const shown = issues.slice(0, 3).map((i) => {
    let at = name ?? ""
    for (const key of i.path) at += typeof key === "number" ? `[${key}]` : at === "" ? String(key) : `.${String(key)}`
    const message = identifier !== undefined && name !== undefined && identifier !== name
      ? i.message.split(identifier).join(name)
      : i.message
    return at === "" ? message : `${at}: ${message}`
  })
  if (issues.length > 3) shown.push(`(${issues.length - 3} more)`)
  return shown.join("; ")
}

const defaultParseOptions: AST.ParseOptions = {}

/** Builds plans; one builder shares message/enum plans (and names) across several roots. */
export class Builder {
  private readonly messages = new Map<AST.AST, MessageType>()
  private readonly enums = new Map<AST.AST, EnumType>()
  private readonly inProgress = new Set<AST.AST>()
  private readonly names = new Set<string>()
  /** Every named type in creation order (for `.proto` emission). */
  readonly named: Array<MessageType | EnumType> = []
  private timestamp: MessageType | undefined

  private uniqueName(base: string): string {
    let name = base
    for (let i = 2; this.names.has(name); i++) name = `${base}${i}`
    this.names.add(name)
    return name
  }

  /** A root: always a message (non-message Types are boxed into field 1). */
  root(ast: AST.AST, hint: string): Root {
    const type = this.type(ast, hint, "")
    const message = messageOf(type)
    if (message === undefined) {
      const boxed = this.box(type, hint, "value")
      return { message: boxed, writeBody: boxed.writeBody, readBody: boxed.readBody }
    }
    if (type._tag === "Message") return { message, writeBody: message.writeBody, readBody: message.readBody }
    // A class (or other transformation) over a message: the message is the root, converted around it.
    const { from, to } = type as MappedType
    return {
      message,
      writeBody: (w, v) => message.writeBody(w, to(v)),
      readBody: (r, end) => from(message.readBody(r, end))
    }
  }

  type(ast: AST.AST, hint: string, path: string): Type {
    switch (ast._tag) {
      case "StringKeyword":
      case "TemplateLiteral":
        return this.scalarFor(ast, "string", path)
      case "NumberKeyword":
        return this.scalarFor(ast, "number", path)
      case "BooleanKeyword":
        return this.scalarFor(ast, "boolean", path)
      case "BigIntKeyword":
        return this.scalarFor(ast, "bigint", path)
      case "Literal":
        return { _tag: "Constant", value: ast.literal }
      case "UndefinedKeyword":
      case "VoidKeyword":
        return { _tag: "Constant", value: undefined }
      case "Enums":
        return this.enumOf(ast, ast.enums.map(([, v]) => v), ast.enums.map(([k]) => String(k)), hint)
      case "Refinement":
        return this.refinement(ast, hint, path)
      case "Transformation":
        return this.transformation(ast, hint, path)
      case "Declaration":
        return this.declaration(ast, hint, path)
      case "TypeLiteral":
        return this.typeLiteral(ast, hint, path)
      case "TupleType":
        return this.tuple(ast, hint, path)
      case "Union":
        return this.union(ast, hint, path)
      case "Suspend": {
        const inner = ast.f()
        if (this.inProgress.has(inner) && !this.messages.has(inner)) {
          throw new PlanError("Unsupported", path, "recursive schema whose cycle does not pass through a struct")
        }
        return this.type(inner, identifierOf(ast) ?? hint, path)
      }
      case "NeverKeyword":
        throw new PlanError("Unsupported", path, "Schema.Never has no values")
      default:
        throw new PlanError(
          "Unsupported",
          path,
          `${ast._tag} (${
            String(ast)
          }) has no protobuf mapping; use a concrete Schema (struct, scalar, array, record, literal union)`
        )
    }
  }

  private scalarFor(ast: AST.AST, js: "string" | "number" | "boolean" | "bigint" | "bytes", path: string): ScalarType {
    const annotated = findAnnotation<ScalarName>(ast, ScalarTypeId)
    const pick = (name: ScalarName): ScalarType | undefined => {
      switch (js) {
        case "string":
          return name === "string" ? stringScalar : undefined
        case "boolean":
          return name === "bool" ? boolScalar : undefined
        case "bytes":
          return name === "bytes" ? bytesScalar : undefined
        case "number":
          return numberScalars[name]
        case "bigint":
          return bigintScalars[name]
      }
    }
    if (annotated !== undefined) {
      const t = pick(annotated)
      if (t === undefined) {
        throw new PlanError("Unsupported", path, `protobuf type "${annotated}" cannot carry a ${js} value`)
      }
      return t
    }
    switch (js) {
      case "string":
        return stringScalar
      case "boolean":
        return boolScalar
      case "bytes":
        return bytesScalar
      case "bigint":
        return bigintScalars.int64!
      case "number":
        return hasIntRefinement(ast) ? numberScalars.int64! : numberScalars.double!
    }
  }

  private refinement(ast: AST.Refinement, hint: string, path: string): Type {
    let inner = this.type(ast.from, identifierOf(ast) ?? hint, path)
    // A refined keyword (Schema.Int, a `Protobuf.type(...)` annotation on the refinement): re-pick the
    // scalar from the whole refinement chain.
    let base = ast.from
    while (AST.isRefinement(base)) base = base.from
    const core = unwrapMapped(inner)
    if (core._tag === "Scalar" && base._tag !== "Transformation" && base._tag !== "Declaration") {
      const scalar = this.scalarFor(ast, jsOf(core), path)
      if (scalar !== core) inner = inner._tag === "Mapped" ? mapped(scalar, inner.to, inner.from) : scalar
    }
    return this.check(ast, inner)
  }

  /** Runs a refinement's filter on the type-side value in both directions. */
  private check(ast: AST.Refinement, inner: Type): Type {
    // `int()` on an integer scalar: the scalar already checks "safe integer" both ways (hot path).
    if (
      ast.annotations[AST.SchemaIdAnnotationId] === IntSchemaId && inner._tag === "Scalar" &&
      typeof inner.zero === "number" && inner.scalar !== "double" && inner.scalar !== "float"
    ) return inner
    const protoName = messageOf(inner)?.name
    const identifier = identifierOf(ast)
    const run = (v: any): any => {
      const issue = ast.filter(v, defaultParseOptions, ast)
      if (Option.isSome(issue)) fail(formatIssue(issue.value, protoName, identifier))
      return v
    }
    // Peel a nested Mapped so a chain of refinements is one Mapped.
    return mapped(inner, run, run)
  }

  private transformation(ast: AST.Transformation, hint: string, path: string): Type {
    const core = typeCore(ast.to)
    const tc = typeConstructorTag(core)
    // Type-side recognition: the wire carries these natively whatever their encoded form.
    if (core._tag === "BigIntKeyword" || tc === "Date" || tc === "Uint8Array") return this.type(ast.to, hint, path)
    if (tc === "effect/Option") return this.option(ast, hint, path)
    const name = identifierOf(ast) ?? hint
    // General case: Schema runs this node's transformation (and validates the type side), the wire lays
    // out `from`'s type-side value.
    const step = Schema.make(new AST.Transformation(AST.typeAST(ast.from), ast.to, ast.transformation))
    const encode = ParseResult.encodeEither(step)
    const decode = ParseResult.decodeUnknownEither(step)
    const inner = this.type(ast.from, name, path)
    // Failures name the emitted message (or enum), as a peer reading the .proto knows it.
    const protoName = messageOf(inner)?.name ?? (inner._tag === "Enum" ? inner.name : undefined)
    const identifier = identifierOf(ast)
    return mapped(inner, (v) => {
      const r = encode(v)
      return r._tag === "Right" ? r.right : fail(formatIssue(r.left, protoName, identifier))
    }, (v) => {
      const r = decode(v)
      return r._tag === "Right" ? r.right : fail(formatIssue(r.left, protoName, identifier))
    })
  }

  private declaration(ast: AST.Declaration, hint: string, path: string): Type {
    const tc = typeConstructorTag(ast)
    if (tc === "Date") return this.timestampType()
    if (tc === "Uint8Array") return this.scalarFor(ast, "bytes", path)
    if (tc === "effect/Option") {
      const inner = this.type(ast.typeParameters[0]!, hint, path)
      return optional(inner, "option", path)
    }
    throw new PlanError(
      "Unsupported",
      path,
      `declared type ${String(ast)} has no protobuf mapping (supported: Date, Uint8Array, Option, classes)`
    )
  }

  /** Option<X> from any encoding (`Option`, `OptionFromNullOr`, ...): an optional X on the wire. */
  private option(ast: AST.Transformation, hint: string, path: string): Type {
    let from = ast.from
    while (AST.isRefinement(from)) from = from.from
    let value: AST.AST | undefined
    if (AST.isUnion(from)) {
      const rest = from.types.filter((t) => !isNullish(t))
      const some = rest.find((t) =>
        AST.isTypeLiteral(t) &&
        t.propertySignatures.some((p) => p.name === "_tag" && AST.isLiteral(p.type) && p.type.literal === "Some")
      ) as AST.TypeLiteral | undefined
      if (some !== undefined && rest.length === 2) value = some.propertySignatures.find((p) => p.name === "value")?.type
      else if (rest.length === 1) value = rest[0]
    } else if (AST.isDeclaration(from) && typeConstructorTag(from) === "effect/Option") {
      value = from.typeParameters[0]
    }
    if (value === undefined) throw new PlanError("Unsupported", path, `cannot find the value type of ${String(ast)}`)
    return optional(this.type(value, hint, path), "option", path)
  }

  private timestampType(): MessageType {
    if (this.timestamp !== undefined) return this.timestamp
    const seconds = numberScalars.int64!
    const nanos = numberScalars.int32!
    const name = this.uniqueName("Timestamp")
    const t: MessageType = makeMessage(name)
    t.wellKnown = "Timestamp"
    t.fields = [
      makeField("seconds", "seconds", 1, seconds, false),
      makeField("nanos", "nanos", 2, nanos, false)
    ]
    t.writeBody = (w, v) => {
      if (!(v instanceof Date)) fail(`expected a Date, got ${describe(v)}`)
      const ms = v.getTime()
      if (Number.isNaN(ms)) fail("cannot encode an invalid Date")
      const s = Math.floor(ms / 1000)
      const n = (ms - s * 1000) * 1_000_000
      if (s !== 0) {
        w.uint32(8)
        seconds.write(w, s)
      }
      if (n !== 0) {
        w.uint32(16)
        nanos.write(w, n)
      }
    }
    t.readBody = (r, end) => {
      let s = 0
      let n = 0
      while (r.pos < end) {
        const tag = r.uint32()
        r.checkFieldNumber(tag)
        if (tag === 8) s = seconds.read(r)
        else if (tag === 16) n = nanos.read(r)
        else r.skip(tag & 7, tag >>> 3)
      }
      if (r.pos !== end) fail("field overruns its message")
      const date = new Date(s * 1000 + Math.floor(n / 1_000_000))
      if (Number.isNaN(date.getTime())) fail(`timestamp ${s}s ${n}ns is out of the Date range`)
      return date
    }
    this.named.push(t)
    this.timestamp = t
    return t
  }

  private typeLiteral(ast: AST.TypeLiteral, hint: string, path: string): Type {
    const existing = this.messages.get(ast)
    if (existing !== undefined) return existing
    if (ast.indexSignatures.length > 0) return this.record(ast, hint, path)
    const name = this.uniqueName(pascal(identifierOf(ast) ?? hint))
    const message = makeMessage(name)
    this.messages.set(ast, message)
    this.named.push(message)
    this.inProgress.add(ast)
    const fields: Array<Field> = []
    const used = new Map<number, string>()
    let position = 0
    for (const ps of ast.propertySignatures) {
      if (typeof ps.name !== "string") {
        throw new PlanError("Unsupported", path, `symbol keys have no protobuf mapping (${String(ps.name)})`)
      }
      const fieldPath = path === "" ? ps.name : `${path}.${ps.name}`
      let type = this.type(ps.type, `${name}${pascal(ps.name)}`, fieldPath)
      if (type._tag === "Constant") {
        fields.push(makeField(ps.name, ps.name, 0, type, ps.isOptional))
        continue
      }
      position++
      const annotated = ps.annotations[FieldNumberId] ?? findAnnotation<number>(ps.type, FieldNumberId)
      const number = annotated === undefined ? position : Number(annotated)
      if (!Number.isInteger(number) || number < 1 || number > 536870911 || (number >= 19000 && number <= 19999)) {
        throw new PlanError("FieldNumber", fieldPath, `invalid field number ${String(annotated)}`)
      }
      const clash = used.get(number)
      if (clash !== undefined) {
        throw new PlanError(
          "FieldNumber",
          fieldPath,
          `field number ${number} is already used by "${clash}"; set one with Protobuf.fieldNumber(n)`
        )
      }
      used.set(number, ps.name)
      if (ps.isOptional && unwrapMapped(type)._tag !== "Optional") type = optional(type, "nullish", fieldPath)
      fields.push(makeField(ps.name, ps.name, number, type, ps.isOptional))
    }
    this.inProgress.delete(ast)
    compileMessage(message, fields)
    return message
  }

  private record(ast: AST.TypeLiteral, hint: string, path: string): Type {
    if (ast.propertySignatures.length > 0 || ast.indexSignatures.length !== 1) {
      throw new PlanError("Unsupported", path, "a struct with both fields and index signatures has no protobuf mapping")
    }
    const sig = ast.indexSignatures[0]!
    let key = sig.parameter
    while (AST.isRefinement(key)) key = key.from
    if (!AST.isStringKeyword(key)) {
      throw new PlanError("Unsupported", path, `map keys must be strings, got ${String(sig.parameter)}`)
    }
    // Key refinements run through a Mapped string.
    const keyType = this.type(sig.parameter, hint, path)
    const keyCore = unwrapMapped(keyType)
    if (keyCore._tag !== "Scalar" || keyCore.scalar !== "string") {
      throw new PlanError("Unsupported", path, `map keys must be strings, got ${String(sig.parameter)}`)
    }
    const value = this.wrapNested(this.type(sig.type, `${hint}Value`, `${path}[string]`), `${hint}Value`)
    return { _tag: "Map", key: keyType as Type & Base, value }
  }

  private tuple(ast: AST.TupleType, hint: string, path: string): Type {
    const rest = ast.rest.length === 1 ? ast.rest[0]!.type : undefined
    // `Schema.NonEmptyArray(X)` and friends: leading required elements of the rest's type.
    const min = ast.elements.length
    if (min > 0 && rest !== undefined && ast.elements.every((e) => !e.isOptional && e.type === rest)) {
      const element = this.wrapNested(this.type(rest, hint, `${path}[]`), `${hint}Item`)
      const check = (v: any): any =>
        Array.isArray(v) && v.length < min ? fail(`expected at least ${min} element(s), got ${v.length}`) : v
      return mapped({ _tag: "Repeated", element }, check, check)
    }
    if (ast.elements.length > 0 || ast.rest.length !== 1) {
      throw new PlanError(
        "Unsupported",
        path,
        `tuples have no protobuf mapping (${String(ast)}); use an array or a struct`
      )
    }
    const element = this.wrapNested(this.type(ast.rest[0]!.type, hint, `${path}[]`), `${hint}Item`)
    return { _tag: "Repeated", element }
  }

  /** Repeated/map/optional/constant elements cannot nest in proto3: box them into a message. */
  private wrapNested(type: Type, name: string): Type {
    const core = unwrapMapped(type)
    if (core._tag === "Repeated" || core._tag === "Map" || core._tag === "Optional" || core._tag === "Constant") {
      return this.box(type, name, "value")
    }
    return type
  }

  box(type: Type, name: string, field: string): MessageType {
    const message = makeMessage(this.uniqueName(pascal(name)))
    message.boxed = true
    this.named.push(message)
    const core = unwrapMapped(type)
    compileMessage(message, [makeField(field, field, core._tag === "Constant" ? 0 : 1, type, false)])
    return message
  }

  private enumOf(ast: AST.AST, values: ReadonlyArray<unknown>, labels: ReadonlyArray<string>, hint: string): EnumType {
    const existing = this.enums.get(ast)
    if (existing !== undefined) return existing
    const name = this.uniqueName(pascal(identifierOf(ast) ?? hint))
    const index = new Map<unknown, number>()
    values.forEach((v, i) => index.set(v, i))
    const e: EnumType = {
      _tag: "Enum",
      name,
      values,
      labels,
      wire: 0,
      write: (w, v) => {
        const i = index.get(v)
        if (i === undefined) fail(`${describe(v)} is not one of ${name}'s values`)
        w.uint32(i!)
      },
      // proto3 enums are open: a number this side does not know (a newer peer's value) is not an error.
      // A literal union cannot hold it, so it decodes as the first value (number 0, the proto3 default),
      // as a missing field would (docs/protobuf.md).
      read: (r) => {
        const i = r.uint32()
        return i < values.length ? values[i] : values[0]
      }
    }
    this.enums.set(ast, e)
    this.named.push(e)
    return e
  }

  private union(ast: AST.Union, hint: string, path: string): Type {
    const nullish = ast.types.filter(isNullish)
    const rest = ast.types.filter((t) => !isNullish(t))
    if (rest.length === 0) return { _tag: "Constant", value: nullish.length > 0 ? nullValue(nullish[0]!) : undefined }
    if (nullish.length > 0) {
      const inner = rest.length === 1 ? this.type(rest[0]!, hint, path) : this.members(ast, rest, hint, path)
      return optional(inner, "nullish", path, nullish.some((t) => AST.isLiteral(t)))
    }
    if (rest.length === 1) return this.type(rest[0]!, hint, path)
    return this.members(ast, rest, hint, path)
  }

  /** Two or more non-nullish members: an enum (all literals) or a oneof (all messages). */
  private members(ast: AST.Union, rest: ReadonlyArray<AST.AST>, hint: string, path: string): Type {
    if (rest.every((t) => AST.isLiteral(t) || AST.isEnums(t))) {
      const values: Array<unknown> = []
      const labels: Array<string> = []
      for (const t of rest) {
        if (AST.isLiteral(t)) {
          values.push(t.literal)
          labels.push(String(t.literal))
        } else {
          for (const [k, v] of (t as AST.Enums).enums) {
            values.push(v)
            labels.push(k)
          }
        }
      }
      return this.enumOf(ast, values, labels, hint)
    }
    if (rest.every((t) => AST.isBooleanKeyword(t) || (AST.isLiteral(t) && typeof t.literal === "boolean"))) {
      return boolScalar
    }
    return this.oneof(ast, rest, hint, path)
  }

  private oneof(ast: AST.Union, members: ReadonlyArray<AST.AST>, hint: string, path: string): Type {
    const existing = this.messages.get(ast)
    if (existing !== undefined) return existing
    const name = this.uniqueName(pascal(identifierOf(ast) ?? hint))
    const message = makeMessage(name)
    this.messages.set(ast, message)
    this.named.push(message)
    const planned = members.map((m, i) => {
      const memberName = identifierOf(m) ?? tagOf(m) ?? `${name}${i + 1}`
      const type = this.type(m, memberName, `${path}|${i + 1}`)
      if (messageOf(type) === undefined) {
        throw new PlanError(
          "Unsupported",
          path,
          `union member ${
            String(m)
          } is not a struct or class: a union must be all literals (an enum) or all structs/classes (a oneof)`
        )
      }
      const annotated = m.annotations[FieldNumberId]
      const number = annotated === undefined ? i + 1 : Number(annotated)
      const fieldName = lowerFirst(messageOf(type)!.name)
      return { fieldName, number, type }
    })
    if (new Set(planned.map((p) => p.number)).size !== planned.length) {
      throw new PlanError("FieldNumber", path, "two union members have the same field number")
    }
    const oneof: Oneof = { name: "value", members: planned, dispatch: makeDispatch(members, path) }
    message.oneof = oneof
    message.boxed = true
    compileOneof(message, oneof)
    return message
  }
}

/** The `_tag` literal of an anonymous tagged struct, for naming its message. */
const tagOf = (ast: AST.AST): string | undefined => {
  if (!AST.isTypeLiteral(ast)) return undefined
  const tag = ast.propertySignatures.find((p) => p.name === "_tag")
  return tag !== undefined && AST.isLiteral(tag.type) && typeof tag.type.literal === "string"
    ? tag.type.literal
    : undefined
}
const lowerFirst = (s: string): string => s[0]!.toLowerCase() + s.slice(1)
const nullValue = (ast: AST.AST): unknown => (AST.isLiteral(ast) ? ast.literal : undefined)

const jsOf = (t: ScalarType): "string" | "number" | "boolean" | "bigint" | "bytes" =>
  t.scalar === "string"
    ? "string"
    : t.scalar === "bool"
    ? "boolean"
    : t.scalar === "bytes"
    ? "bytes"
    : typeof t.zero === "bigint"
    ? "bigint"
    : "number"

/** The type under any Mapped layers. */
export const unwrapMapped = (t: Type): Type => {
  while (t._tag === "Mapped") t = t.inner
  return t
}

/** The message a type is laid out as, if any. */
export const messageOf = (t: Type): MessageType | undefined => {
  const core = unwrapMapped(t)
  return core._tag === "Message" ? core : undefined
}

const mapped = (inner: Type, to: (v: any) => any, from: (v: any) => any): MappedType => {
  if (inner._tag === "Mapped") {
    // Flatten: outer `to` runs first on encode, inner `from` first on decode.
    const innerTo = inner.to
    const innerFrom = inner.from
    return mapped(inner.inner, (v) => innerTo(to(v)), (v) => from(innerFrom(v)))
  }
  const base = inner as Type & Partial<Base>
  return {
    _tag: "Mapped",
    inner,
    to,
    from,
    wire: base.wire ?? 2,
    write: (w, v) => base.write!(w, to(v)),
    read: (r) => from(base.read!(r))
  }
}

const optional = (inner: Type, kind: "nullish" | "option", path: string, nullable = false): Type => {
  const core = unwrapMapped(inner)
  if (core._tag === "Optional") return inner
  if (core._tag === "Constant") {
    throw new PlanError("Unsupported", path, "an optional constant has no protobuf mapping")
  }
  const t: OptionalType & { nullable: boolean } = { _tag: "Optional", inner, kind, nullable }
  return t
}

/** Picks the union member for a value: by a literal discriminator when every member has one. */
const makeDispatch = (members: ReadonlyArray<AST.AST>, path: string): (v: any) => number => {
  const candidates = new Map<string, Array<unknown>>()
  const typeSides = members.map((m) => AST.typeAST(m))
  try {
    const sigs = typeSides.map((t) => AST.getPropertySignatures(t))
    for (const ps of sigs[0]!) {
      if (typeof ps.name !== "string") continue
      const values = sigs.map((s) => {
        const p = s.find((q) => q.name === ps.name)
        return p !== undefined && AST.isLiteral(p.type) ? p.type.literal : Absent
      })
      if (values.every((v) => v !== Absent) && new Set(values).size === values.length) candidates.set(ps.name, values)
    }
  } catch {
    // getPropertySignatures throws for shapes without static fields; fall back to guards.
  }
  const key = candidates.has("_tag") ? "_tag" : candidates.keys().next().value
  if (key !== undefined) {
    const index = new Map<unknown, number>()
    candidates.get(key)!.forEach((v, i) => index.set(v, i))
    return (v) => {
      const i = v !== null && typeof v === "object" ? index.get(v[key]) : undefined
      if (i === undefined) fail(`${path === "" ? "value" : path}: no union member matches ${describe(v)}`)
      return i!
    }
  }
  const guards = typeSides.map((t) => ParseResult.is(Schema.make(t)))
  return (v) => {
    for (let i = 0; i < guards.length; i++) if (guards[i]!(v)) return i
    return fail(`${path === "" ? "value" : path}: no union member matches ${describe(v)}`)
  }
}

// ---------------------------------------------------------------------------------------------
// messages

const makeMessage = (name: string): MessageType => {
  const m: MessageType = {
    _tag: "Message",
    name,
    fields: [],
    boxed: false,
    oneof: undefined,
    wellKnown: undefined,
    wire: 2,
    writeBody: () => {},
    readBody: () => undefined,
    write: (w, v) => {
      const start = w.beginLength()
      m.writeBody(w, v)
      w.endLength(start)
    },
    read: (r) => {
      const end = r.length()
      // Recursive Schemas: bound the recursion a peer can cause (the limit the other codecs apply too).
      if (++r.depth > MAX_NESTING_DEPTH) {
        fail(`messages nested more than ${MAX_NESTING_DEPTH} deep (MAX_NESTING_DEPTH)`)
      }
      const saved = r.end
      r.end = end
      const v = m.readBody(r, end)
      r.end = saved
      r.depth--
      return v
    }
  }
  return m
}

const wireName = ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32", "6", "7"]

/** Rethrows a scalar field's encode failure as `Message.field: ...` (what the emitted .proto calls them). */
const inField = (message: string, field: string, cause: unknown): never =>
  fail(`${message}.${field}: ${errorMessage(cause)}`)

const wrongWire = (name: string, number: number, got: number, expected: number): never =>
  fail(`field ${name} (${number}): wire type ${wireName[got]}, expected ${wireName[expected]}`)

const makeField = (name: string, key: PropertyKey, number: number, type: Type, optionalKey: boolean): Field => {
  // Field-level Mapped layers over a structural type (a refinement on an array, ...) run around the
  // whole field value; over a plain value type they run per value (inside `type.write`).
  if (type._tag === "Mapped") {
    const core = type.inner
    if (core._tag === "Repeated" || core._tag === "Map" || core._tag === "Optional" || core._tag === "Constant") {
      const field = fieldFor(name, key, number, core, optionalKey)
      const write = field.write
      const to = type.to
      return { ...field, type, write: (w, v) => write(w, to(v)), post: type.from } as Field
    }
  }
  return fieldFor(name, key, number, type, optionalKey)
}

const fieldFor = (name: string, key: PropertyKey, number: number, type: Type, optionalKey: boolean): Field => {
  switch (type._tag) {
    case "Constant": {
      const value = type.value
      return {
        name,
        key,
        number: 0,
        type,
        optionalKey,
        write: (_, v) => {
          // `undefined` constants (Schema.Void) accept anything, as Schema.Void does.
          if (value !== undefined && v !== value && !(optionalKey && v === undefined)) {
            fail(`field ${name}: expected ${showLiteral(value)}, got ${describe(v)}`)
          }
        },
        read: () => value,
        missing: () => value
      }
    }
    case "Repeated":
      return repeatedField(name, key, number, type, optionalKey)
    case "Map":
      return mapField(name, key, number, type, optionalKey)
    case "Optional":
      return optionalField(name, key, number, type as OptionalType & { nullable: boolean }, optionalKey)
    default:
      return singularField(name, key, number, type as Type & Base, optionalKey)
  }
}

const singularField = (
  name: string,
  key: PropertyKey,
  number: number,
  type: Type & Base,
  optionalKey: boolean
): Field => {
  const wire = type.wire
  const tag = number * 8 + wire
  // proto3 implicit presence: zero scalars and the first enum value are not written.
  const scalar = type._tag === "Scalar" ? type : undefined
  const zeroEnum = type._tag === "Enum" ? type.values[0] : Absent
  return {
    name,
    key,
    number,
    type,
    optionalKey,
    write: (w, v) => {
      if (scalar !== undefined ? scalar.isZero(v) : v === zeroEnum) return
      w.uint32(tag)
      type.write(w, v)
    },
    read: (r, wt) => {
      if (wt !== wire) wrongWire(name, number, wt, wire)
      return type.read(r)
    },
    missing: () => {
      const core = unwrapMapped(type)
      if (core._tag === "Message" && core.oneof !== undefined) fail(`field ${name}: missing`)
      return readEmpty(type)
    }
  }
}

const emptyBytes = new Uint8Array(0)

/** The proto3 default of a type: what a missing field reads as. */
const readEmpty = (type: Type): any => {
  switch (type._tag) {
    case "Mapped":
      return type.from(readEmpty(type.inner))
    case "Scalar":
      return type.scalar === "bytes" ? new Uint8Array(0) : type.zero
    case "Enum":
      return type.values[0]
    case "Message":
      return type.readBody(new Reader(emptyBytes, 0, 0), 0)
    default:
      return fail("no default value")
  }
}

const optionalField = (
  name: string,
  key: PropertyKey,
  number: number,
  type: OptionalType & { nullable: boolean },
  optionalKey: boolean
): Field => {
  const inner = type.inner as Type & Base
  const core = unwrapMapped(inner)
  if (core._tag === "Repeated" || core._tag === "Map") {
    throw new PlanError("Unsupported", name, "an optional array or map has no protobuf mapping; use an empty one")
  }
  const wire = inner.wire
  const tag = number * 8 + wire
  const option = type.kind === "option"
  const absentValue = option ? Option.none() : optionalKey ? Absent : type.nullable ? null : undefined
  return {
    name,
    key,
    number,
    type,
    optionalKey,
    write: option
      ? (w, v) => {
        if (!Option.isOption(v)) fail(`field ${name}: expected an Option, got ${describe(v)}`)
        if (v._tag === "None") return
        w.uint32(tag)
        inner.write(w, v.value)
      }
      : (w, v) => {
        if (v === undefined || v === null) return
        w.uint32(tag)
        inner.write(w, v)
      },
    read: option
      ? (r, wt) => {
        if (wt !== wire) wrongWire(name, number, wt, wire)
        return Option.some(inner.read(r))
      }
      : (r, wt) => {
        if (wt !== wire) wrongWire(name, number, wt, wire)
        return inner.read(r)
      },
    missing: () => absentValue
  }
}

const repeatedField = (
  name: string,
  key: PropertyKey,
  number: number,
  type: RepeatedType,
  optionalKey: boolean
): Field => {
  const element = type.element as Type & Base
  const core = unwrapMapped(element)
  const packable = core._tag === "Scalar" ? core.packable : core._tag === "Enum"
  const wire = element.wire
  const tag = number * 8 + wire
  const packedTag = number * 8 + 2
  return {
    name,
    key,
    number,
    type,
    optionalKey,
    write: (w, v) => {
      if (!Array.isArray(v)) {
        if (v === undefined && optionalKey) return
        fail(`field ${name}: expected an array, got ${describe(v)}`)
      }
      const n = v.length
      if (n === 0) return
      if (packable) {
        w.uint32(packedTag)
        const start = w.beginLength()
        for (let i = 0; i < n; i++) element.write(w, v[i])
        w.endLength(start)
      } else {
        for (let i = 0; i < n; i++) {
          w.uint32(tag)
          element.write(w, v[i])
        }
      }
    },
    read: (r, wt, prev) => {
      const out: Array<unknown> = prev === undefined ? [] : prev
      if (wt === wire) out.push(element.read(r))
      else if (packable && wt === 2) {
        const end = r.length()
        const saved = r.end
        r.end = end
        while (r.pos < end) out.push(element.read(r))
        r.end = saved
      } else wrongWire(name, number, wt, wire)
      return out
    },
    missing: () => optionalKey ? Absent : []
  }
}

const mapField = (name: string, key: PropertyKey, number: number, type: MapType, optionalKey: boolean): Field => {
  const value = type.value as Type & Base
  const keyType = type.key
  const valueCore = unwrapMapped(value)
  const tag = number * 8 + 2
  const valueTag = 16 + value.wire
  const valueMissing = fieldFor("value", "value", 2, value, false).missing
  return {
    name,
    key,
    number,
    type,
    optionalKey,
    write: (w, v) => {
      if (v === null || typeof v !== "object" || Array.isArray(v)) {
        if (v === undefined && optionalKey) return
        fail(`field ${name}: expected a record, got ${describe(v)}`)
      }
      for (const k in v) {
        if (!Object.prototype.hasOwnProperty.call(v, k)) continue
        w.uint32(tag)
        const start = w.beginLength()
        w.uint32(10)
        keyType.write(w, k)
        w.uint32(valueTag)
        value.write(w, v[k])
        w.endLength(start)
      }
    },
    read: (r, wt, prev) => {
      if (wt !== 2) wrongWire(name, number, wt, 2)
      const out: Record<string, unknown> = prev === undefined ? {} : prev
      const end = r.length()
      const saved = r.end
      r.end = end
      let k = ""
      let val: unknown = Absent
      while (r.pos < end) {
        const t = r.uint32()
        r.checkFieldNumber(t)
        if (t === 10) k = keyType.read(r)
        else if (t === valueTag) val = value.read(r)
        else if (t >>> 3 === 1 || t >>> 3 === 2) {
          fail(`map ${name}: wire type ${wireName[t & 7]} for entry field ${t >>> 3}`)
        } else r.skip(t & 7, t >>> 3)
      }
      r.end = saved
      if (r.pos !== end) fail(`map ${name}: entry overruns its length`)
      if (val === Absent) val = valueCore._tag === "Message" ? valueMissing() : valueMissing()
      Object.defineProperty(out, k, { value: val, enumerable: true, writable: true, configurable: true })
      return out
    },
    missing: () => optionalKey ? Absent : {}
  }
}

/** Builds the body encoder/decoder of a struct message. */
const compileMessage = (message: MessageType, all: Array<Field>): void => {
  message.fields = all
  const fields = all
  const n = fields.length
  const boxed = message.boxed
  let max = 0
  for (const f of fields) max = Math.max(max, f.number)
  const byNumber: Array<number> = max <= 1024 ? new Array(max + 1).fill(-1) : []
  const byNumberMap = new Map<number, number>()
  fields.forEach((f, i) => {
    if (f.number === 0) return
    if (max <= 1024) byNumber[f.number] = i
    else byNumberMap.set(f.number, i)
  })
  const lookup = max <= 1024
    ? (num: number) => (num <= max ? byNumber[num]! : -1)
    : (num: number) => byNumberMap.get(num) ?? -1
  const posts = fields.map((f) => (f as Field & { post?: (v: any) => any }).post)
  const required = fields.map((f) => {
    const core = unwrapMapped(f.type)
    return !f.optionalKey && core._tag !== "Optional" && core._tag !== "Constant"
  })
  // Scalar fields' type errors are prefixed with `Message.field` (a message field's own errors name theirs).
  const scalars = fields.map((f) => unwrapMapped(f.type)._tag === "Scalar")
  message.writeBody = boxed
    ? (w, v) => fields[0]!.write(w, v)
    : (w, v) => {
      if (v === null || typeof v !== "object") fail(`expected ${message.name} (an object), got ${describe(v)}`)
      for (let i = 0; i < n; i++) {
        const f = fields[i]!
        const fv = v[f.key]
        if (fv === undefined && required[i]) {
          fail(`${message.name}.${f.name}: missing`)
        }
        if (scalars[i]) {
          try {
            f.write(w, fv)
          } catch (cause) {
            inField(message.name, f.name, cause)
          }
        } else f.write(w, fv)
      }
    }
  message.readBody = (r, end) => {
    const values = new Array(n)
    while (r.pos < end) {
      const tag = r.uint32()
      r.checkFieldNumber(tag)
      const i = lookup(tag >>> 3)
      if (i === -1) r.skip(tag & 7, tag >>> 3)
      else values[i] = fields[i]!.read(r, tag & 7, values[i])
    }
    if (r.pos !== end) fail(`${message.name}: a field overruns the message`)
    if (boxed) {
      let v = values[0]
      if (v === undefined) v = fields[0]!.missing()
      const post = posts[0]
      return post === undefined ? (v === Absent ? undefined : v) : post(v === Absent ? undefined : v)
    }
    const out: Record<PropertyKey, unknown> = {}
    for (let i = 0; i < n; i++) {
      const f = fields[i]!
      let v = values[i]
      if (v === undefined) v = f.missing()
      const post = posts[i]
      if (post !== undefined) v = post(v === Absent ? undefined : v)
      if (v !== Absent) out[f.key] = v
    }
    return out
  }
  if (!boxed) {
    const generated = generate(message, fields, required, posts)
    if (generated !== undefined) {
      message.writeBody = generated.writeBody
      message.readBody = generated.readBody
    }
  }
}

// ---------------------------------------------------------------------------------------------
// code generation for struct messages
//
// The closure plan above costs two or three megamorphic calls per field. For struct messages we also
// generate a specialised encoder/decoder (as protobufjs does): common scalars inlined, decoded fields
// held in locals, the result built as one object literal (one hidden class). Everything else calls the
// field's closure. Where code generation is unavailable (`--disallow-code-generation-from-strings`) the
// closure plan stays in use.

interface Inline {
  readonly check: string
  readonly zero: string
  readonly write: string
  readonly read: string
  readonly missing: string
}

const inlineScalars: Partial<Record<ScalarName, Inline>> = {
  string: {
    check: `typeof x === "string"`,
    zero: `x.length === 0`,
    write: `w.string(x)`,
    read: `r.string()`,
    missing: `""`
  },
  double: {
    check: `typeof x === "number"`,
    zero: `x === 0 && 1 / x > 0`,
    write: `w.double(x)`,
    read: `r.double()`,
    missing: `0`
  },
  float: {
    check: `typeof x === "number"`,
    zero: `x === 0 && 1 / x > 0`,
    write: `w.float(x)`,
    read: `r.float()`,
    missing: `0`
  },
  bool: {
    check: `typeof x === "boolean"`,
    zero: `x === false`,
    write: `w.uint32(x ? 1 : 0)`,
    read: `r.bool()`,
    missing: `false`
  },
  int32: {
    check: `typeof x === "number" && (x | 0) === x`,
    zero: `x === 0`,
    write: `w.int32(x)`,
    read: `(r.uint32() | 0)`,
    missing: `0`
  },
  uint32: {
    check: `typeof x === "number" && (x >>> 0) === x`,
    zero: `x === 0`,
    write: `w.uint32(x)`,
    read: `r.uint32()`,
    missing: `0`
  },
  int64: {
    check: `typeof x === "number" && Number.isSafeInteger(x)`,
    zero: `x === 0`,
    write: `if (x >= 0 && x <= 4294967295) w.uint32(x); else F[I].type.write(w, x)`,
    read: `r.int64()`,
    missing: `0`
  }
}

/** Code generation switch (tests turn it off to exercise the closure plan). */
export const codegen = { enabled: true }

const generate = (
  message: MessageType,
  fields: ReadonlyArray<Field>,
  required: ReadonlyArray<boolean>,
  posts: ReadonlyArray<((v: any) => any) | undefined>
): Pick<MessageType, "writeBody" | "readBody"> | undefined => {
  if (!codegen.enabled || fields.some((f) => f.key === "__proto__" || typeof f.key !== "string")) return undefined
  const inlineOf = (f: Field): Inline | undefined => {
    const t = f.type
    if (t._tag !== "Scalar") return undefined
    if (t.scalar === "int64" && typeof t.zero !== "number") return undefined
    return inlineScalars[t.scalar]
  }
  const w: Array<string> = [
    `if (v === null || typeof v !== "object") fail("expected " + NAME + " (an object), got " + describe(v));`,
    "let x;"
  ]
  const cases: Array<string> = []
  const slow: Array<string> = []
  const build: Array<string> = []
  const extra: Array<string> = []
  fields.forEach((f, i) => {
    // Every name and key enters the source as a JSON string literal: a crafted field name cannot inject code.
    const key = JSON.stringify(f.key)
    const missing = JSON.stringify(`.${f.name}: missing`)
    const inline = inlineOf(f)
    w.push(`x = v[${key}];`)
    if (inline !== undefined) {
      const tag = f.number * 8 + (f.type as ScalarType).wire
      w.push(
        `if (${inline.check}) { if (!(${inline.zero})) { w.uint32(${tag}); ${
          inline.write.replace("F[I]", `F[${i}]`)
        }; } }`,
        `else if (x === undefined) fail(NAME + ${missing});`,
        `else { try { F[${i}].write(w, x); } catch (e) { IN_FIELD(NAME, ${JSON.stringify(f.name)}, e); } }`
      )
      cases.push(`case ${tag}: v${i} = ${inline.read}; break;`)
      slow.push(`case ${f.number}: v${i} = F[${i}].read(r, tag & 7, v${i}); break;`)
      build.push(`${key}: v${i} === undefined ? ${inline.missing} : v${i}`)
      return
    }
    if (required[i]) w.push(`if (x === undefined) fail(NAME + ${missing});`)
    w.push(
      unwrapMapped(f.type)._tag === "Scalar"
        ? `try { F[${i}].write(w, x); } catch (e) { IN_FIELD(NAME, ${JSON.stringify(f.name)}, e); }`
        : `F[${i}].write(w, x);`
    )
    if (f.number !== 0) slow.push(`case ${f.number}: v${i} = F[${i}].read(r, tag & 7, v${i}); break;`)
    const value = `(v${i} === undefined ? F[${i}].missing() : v${i})`
    const post = posts[i] !== undefined
      ? (e: string) => `P[${i}](${e} === ABSENT ? undefined : ${e})`
      : (e: string) => e
    if (f.optionalKey) {
      extra.push(`{ const y = ${post(value)}; if (y !== ABSENT) o[${key}] = y; }`)
    } else {
      build.push(`${key}: ${post(value)}`)
    }
  })
  const decls = fields.map((_, i) => `v${i}`).join(", ")
  const read = [
    `let ${decls};`,
    "while (r.pos < end) {",
    "  const tag = r.uint32();",
    "  switch (tag) {",
    ...cases.map((c) => "    " + c),
    "    default: {",
    "      const num = tag >>> 3;",
    "      if (num === 0) r.checkFieldNumber(tag);",
    "      switch (num) {",
    ...slow.map((c) => "        " + c),
    "        default: r.skip(tag & 7, num);",
    "      }",
    "    }",
    "  }",
    "}",
    `if (r.pos !== end) fail(NAME + ": a field overruns the message");`,
    `const o = { ${build.join(", ")} };`,
    ...extra,
    "return o;"
  ]
  const source = [
    "return {",
    `writeBody: function (w, v) { ${w.join("\n")} },`,
    `readBody: function (r, end) { ${read.join("\n")} }`,
    "};"
  ].join("\n")
  try {
    const make = new Function("F", "P", "fail", "describe", "NAME", "ABSENT", "IN_FIELD", source)
    const generated = make(fields, posts, fail, describe, message.name, Absent, inField)
    generated.writeBody.generated = true
    return generated
  } catch {
    return undefined
  }
}

const compileOneof = (message: MessageType, oneof: Oneof): void => {
  const members = oneof.members.map((m) => ({ ...m, type: m.type as Type & Base }))
  message.fields = []
  message.writeBody = (w, v) => {
    const m = members[oneof.dispatch(v)]!
    w.uint32(m.number * 8 + 2)
    m.type.write(w, v)
  }
  const byNumber = new Map(members.map((m) => [m.number, m]))
  message.readBody = (r, end) => {
    let out: unknown = Absent
    while (r.pos < end) {
      const tag = r.uint32()
      r.checkFieldNumber(tag)
      const m = byNumber.get(tag >>> 3)
      if (m === undefined) r.skip(tag & 7, tag >>> 3)
      else {
        if ((tag & 7) !== 2) {
          fail(`${message.name}.${m.fieldName}: wire type ${wireName[tag & 7]}, expected length-delimited`)
        }
        out = m.type.read(r)
      }
    }
    if (r.pos !== end) fail(`${message.name}: a field overruns the message`)
    if (out === Absent) fail(`${message.name}: no member of the union is set`)
    return out
  }
}
