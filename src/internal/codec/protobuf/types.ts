/**
 * The plan a Schema is built into: the `Type`s and `Field`s the builder produces and the codecs run,
 * the annotations that steer it, and the few helpers every stage shares (failures, `Mapped`/`Optional`
 * constructors). Imports nothing else from the plan, so the other plan modules can all depend on it.
 *
 * @internal
 */
import { type Reader, WireError, type Writer } from "./wire.js"

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

/** @internal */
export interface Base {
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
// shared helpers

/** @internal */
export const fail = (message: string): never => {
  throw new WireError(message)
}

/** @internal */
export const describe = (v: unknown): string =>
  v === null ? "null" : Array.isArray(v) ? "an array" : typeof v === "object" ? "an object" : `${typeof v} ${String(v)}`

/** JSON-ish text of a literal (bigints included), for messages and `.proto` comments. */
export const showLiteral = (v: unknown): string =>
  typeof v === "bigint" ? `${v}n` : v === undefined ? "undefined" : JSON.stringify(v)

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

/** @internal */
export const mapped = (inner: Type, to: (v: any) => any, from: (v: any) => any): MappedType => {
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

/** @internal */
export const optional = (inner: Type, kind: "nullish" | "option", path: string, nullable = false): Type => {
  const core = unwrapMapped(inner)
  if (core._tag === "Optional") return inner
  if (core._tag === "Constant") {
    throw new PlanError("Unsupported", path, "an optional constant has no protobuf mapping")
  }
  const t: OptionalType & { nullable: boolean } = { _tag: "Optional", inner, kind, nullable }
  return t
}
