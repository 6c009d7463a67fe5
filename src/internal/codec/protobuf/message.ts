/**
 * Messages: the length-delimited wrapper every message shares, the body encoder/decoder of a struct
 * message (closure plan, replaced by generated code where possible), a oneof's body, and the
 * `Timestamp` well-known type.
 *
 * @internal
 */
import { MAX_NESTING_DEPTH } from "../inputLimits.js"
import { generate } from "./codegen.js"
import { inField, makeField, wireName } from "./fields.js"
import { numberScalars } from "./scalars.js"
import {
  Absent,
  type Base,
  describe,
  fail,
  type Field,
  type MessageType,
  type Oneof,
  type Type,
  unwrapMapped
} from "./types.js"

// ---------------------------------------------------------------------------------------------
// messages

/** @internal */
export const makeMessage = (name: string): MessageType => {
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

/** Builds the body encoder/decoder of a struct message. */
export const compileMessage = (message: MessageType, all: Array<Field>): void => {
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

/** @internal */
export const compileOneof = (message: MessageType, oneof: Oneof): void => {
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

/** The `Timestamp` well-known message (seconds and nanos), carrying a `Date`. */
export const makeTimestamp = (name: string): MessageType => {
  const seconds = numberScalars.int64!
  const nanos = numberScalars.int32!
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
  return t
}
