/**
 * Generated encoders/decoders for struct messages (see the note below); the closure plan of
 * `message.ts` is the fallback and the reference.
 *
 * @internal
 */
import { inField } from "./fields.js"
import {
  Absent,
  describe,
  fail,
  type Field,
  type MessageType,
  type ScalarName,
  type ScalarType,
  unwrapMapped
} from "./types.js"

// ---------------------------------------------------------------------------------------------
// code generation for struct messages
//
// The closure plan (`message.ts`) costs two or three megamorphic calls per field. For struct messages we also
// generate a specialised encoder/decoder (as protobufjs does): common scalars inlined, decoded fields
// held in locals, the result built by one generated constructor (one hidden class). Everything else calls
// the field's closure. Where code generation is unavailable (`--disallow-code-generation-from-strings`) the
// closure plan stays in use.
//
// A constructor rather than an object literal because V8 tracks survival per literal site: if most objects
// of a site outlive a young collection once the young generation is at its maximum size (a burst of
// messages queued at start-up is enough), every later object of that site is allocated in the old
// generation. Decoded messages then all live until a full collection, and pull in what they point to:
// measured on a bidi stream at 64 in flight, 2 MB promoted per scavenge, 10 ms pauses, a third more RSS.
// `new` of a plain function is not tracked. Its prototype is `Object.prototype`: a decoded message is a
// plain object, as before.

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

/** @internal */
export const generate = (
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
  /** The message constructor's arguments (decoded values) and the keys it assigns them to, in field order. */
  const args: Array<string> = []
  const keys: Array<string> = []
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
      args.push(`v${i} === undefined ? ${inline.missing} : v${i}`)
      keys.push(key)
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
      args.push(post(value))
      keys.push(key)
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
    `const o = new Message(${args.join(", ")});`,
    ...extra,
    "return o;"
  ]
  const source = [
    `function Message(${keys.map((_, j) => `a${j}`).join(", ")}) { ${
      keys.map((k, j) => `this[${k}] = a${j};`).join(" ")
    } }`,
    "Message.prototype = Object.prototype;",
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
