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
 * The plan's types are in `types.ts`; scalars, fields and messages (with their generated code) are built
 * by `scalars.ts`, `fields.ts`, `message.ts` and `codegen.ts`.
 *
 * @internal
 */
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import {
  findAnnotation,
  formatIssue,
  hasIntRefinement,
  IntSchemaId,
  isNullish,
  makeDispatch,
  nullValue,
  tagOf,
  typeConstructorTag,
  typeCore
} from "./ast.js"
import { makeField } from "./fields.js"
import { compileMessage, compileOneof, makeMessage, makeTimestamp } from "./message.js"
import { identifierOf, pascal } from "./names.js"
import { bigintScalars, boolScalar, bytesScalar, jsOf, numberScalars, stringScalar } from "./scalars.js"
import {
  type Base,
  describe,
  type EnumType,
  fail,
  type Field,
  FieldNumberId,
  mapped,
  type MappedType,
  messageOf,
  type MessageType,
  type Oneof,
  optional,
  PlanError,
  type ScalarName,
  type ScalarType,
  ScalarTypeId,
  type Type,
  unwrapMapped
} from "./types.js"
import type { Reader, Writer } from "./wire.js"

/** @internal */
export interface Root {
  readonly message: MessageType
  readonly writeBody: (w: Writer, v: any) => void
  readonly readBody: (r: Reader, end: number) => any
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
    const t = makeTimestamp(this.uniqueName("Timestamp"))
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

const lowerFirst = (s: string): string => s[0]!.toLowerCase() + s.slice(1)
