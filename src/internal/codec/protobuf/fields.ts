/**
 * Fields of a message: one `Field` per property, with the proto3 rules of its kind (implicit presence of
 * singular fields, optional, packed repeated, map entries) and the wire-type checks of each.
 *
 * @internal
 */
import * as Option from "effect/Option"
import { errorMessage } from "../../common/text.js"
import {
  Absent,
  type Base,
  describe,
  fail,
  type Field,
  type MapType,
  type OptionalType,
  PlanError,
  type RepeatedType,
  showLiteral,
  type Type,
  unwrapMapped
} from "./types.js"
import { Reader } from "./wire.js"

/** @internal */
export const wireName = ["varint", "fixed64", "length-delimited", "start-group", "end-group", "fixed32", "6", "7"]

/** Rethrows a scalar field's encode failure as `Message.field: ...` (what the emitted .proto calls them). */
export const inField = (message: string, field: string, cause: unknown): never =>
  fail(`${message}.${field}: ${errorMessage(cause)}`)

/** @internal */
export const wrongWire = (name: string, number: number, got: number, expected: number): never =>
  fail(`field ${name} (${number}): wire type ${wireName[got]}, expected ${wireName[expected]}`)

/** @internal */
export const makeField = (name: string, key: PropertyKey, number: number, type: Type, optionalKey: boolean): Field => {
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

const NO_ELEMENTS: ReadonlyArray<never> = []

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
      // `slice()` of a shared empty array, not `[]`: see the note on allocation sites in codegen.ts.
      const out: Array<unknown> = prev === undefined ? NO_ELEMENTS.slice() : prev
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
