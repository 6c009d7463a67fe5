/**
 * Bounds on what untrusted input can cost when it is decoded and when a failure is described.
 *
 * A peer controls every byte a codec decodes. Two things must never depend on the size or shape of those
 * bytes beyond a fixed bound: recursion (a 5 KB body of 2,500 nested `[` overflowed the stack when Effect's
 * formatters printed the value, killing the process) and the size of an error detail (a 4 MB array of the
 * wrong type was echoed back in full, costing ≈ 300 ms of CPU to format). So:
 *
 * - decoded values nested deeper than `MAX_NESTING_DEPTH` are refused before any Schema or formatter sees
 *   them (checked only where the Schema itself does not bound the depth, so the hot path of an ordinary
 *   contract pays nothing);
 * - a Schema failure is formatted by Effect's `TreeFormatter` only when the offending value is small;
 *   otherwise (or if formatting throws) a summary names the path, the expected type and the kind of value;
 * - every detail is cut at `MAX_DETAIL_LENGTH` characters.
 */
import * as ParseResult from "effect/ParseResult"
import type * as AST from "effect/SchemaAST"

/** Deepest nesting of arrays/objects a decoded message may have (protobuf's default recursion limit is 100). */
export const MAX_NESTING_DEPTH = 128

/** Longest error detail built from input, in characters. */
export const MAX_DETAIL_LENGTH = 1024

/** Values up to this many nodes (and this depth) are small enough to print in an error message. */
const FORMAT_NODE_BUDGET = 256
const FORMAT_DEPTH = 16

/** Cuts a detail to `MAX_DETAIL_LENGTH` characters, saying how much was left out. */
export const truncateDetail = (detail: string): string =>
  detail.length <= MAX_DETAIL_LENGTH
    ? detail
    : `${detail.slice(0, MAX_DETAIL_LENGTH)}… (${detail.length - MAX_DETAIL_LENGTH} more characters)`

/** Whether arrays/objects in `value` nest deeper than `maxDepth`. Recursion depth is bounded by `maxDepth`. */
export const exceedsDepth = (value: unknown, maxDepth: number): boolean => {
  if (typeof value !== "object" || value === null) return false
  if (maxDepth === 0) return true
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      if (exceedsDepth(value[i], maxDepth - 1)) return true
    }
    return false
  }
  if (ArrayBuffer.isView(value)) return false
  for (const key in value) {
    if (exceedsDepth((value as Record<string, unknown>)[key], maxDepth - 1)) return true
  }
  return false
}

/**
 * The deepest nesting a value accepted by this AST (on its encoded side) can have, or `undefined` when the
 * Schema does not bound it (`Unknown`, `Any`, `object`, declarations, recursive Schemas).
 */
export const encodedDepthBound = (ast: AST.AST): number | undefined => {
  switch (ast._tag) {
    case "TypeLiteral": {
      let depth = 0
      for (const property of ast.propertySignatures) {
        const inner = encodedDepthBound(property.type)
        if (inner === undefined) return undefined
        depth = Math.max(depth, inner)
      }
      for (const index of ast.indexSignatures) {
        const inner = encodedDepthBound(index.type)
        if (inner === undefined) return undefined
        depth = Math.max(depth, inner)
      }
      return depth + 1
    }
    case "TupleType": {
      let depth = 0
      for (const element of [...ast.elements.map((e) => e.type), ...ast.rest.map((r) => r.type)]) {
        const inner = encodedDepthBound(element)
        if (inner === undefined) return undefined
        depth = Math.max(depth, inner)
      }
      return depth + 1
    }
    case "Union": {
      let depth = 0
      for (const member of ast.types) {
        const inner = encodedDepthBound(member)
        if (inner === undefined) return undefined
        depth = Math.max(depth, inner)
      }
      return depth
    }
    case "Refinement":
      return encodedDepthBound(ast.from)
    case "Transformation":
      return encodedDepthBound(ast.from)
    case "Suspend":
    case "UnknownKeyword":
    case "AnyKeyword":
    case "ObjectKeyword":
    case "Declaration":
      return undefined
    default:
      return 0
  }
}

/** Whether a value is small enough to print whole: bounded nodes, depth and string length. */
const isSmall = (value: unknown): boolean => {
  let budget = FORMAT_NODE_BUDGET
  const visit = (u: unknown, depth: number): boolean => {
    if (--budget < 0) return false
    if (typeof u === "string") {
      budget -= u.length >> 4
      return budget >= 0
    }
    if (typeof u !== "object" || u === null) return true
    if (depth >= FORMAT_DEPTH) return false
    if (ArrayBuffer.isView(u)) {
      budget -= u.byteLength >> 4
      return budget >= 0
    }
    if (Array.isArray(u)) {
      for (let i = 0; i < u.length; i++) if (!visit(u[i], depth + 1)) return false
      return true
    }
    for (const key in u) if (!visit((u as Record<string, unknown>)[key], depth + 1)) return false
    return true
  }
  return visit(value, 0)
}

/** A short description of a value's kind, never its contents. */
const kindOf = (u: unknown): string => {
  if (u === null) return "null"
  if (Array.isArray(u)) return `an array of ${u.length} items`
  if (ArrayBuffer.isView(u)) return `${u.byteLength} bytes`
  if (typeof u === "string") return u.length <= 64 ? JSON.stringify(u) : `a string of ${u.length} characters`
  if (typeof u === "object") return "an object"
  return typeof u === "number" || typeof u === "boolean" ? String(u) : typeof u
}

const pathText = (path: ReadonlyArray<PropertyKey>): string =>
  path.length === 0
    ? ""
    : `at ${path.map((key) => `[${typeof key === "symbol" ? String(key) : JSON.stringify(key)}]`).join("")}: `

/** The first leaf of an issue tree with its path, described without printing the offending value. */
const summarize = (issue: ParseResult.ParseIssue): string => {
  const path: Array<PropertyKey> = []
  let current: ParseResult.ParseIssue = issue
  for (let steps = 0; steps < 64; steps++) {
    switch (current._tag) {
      case "Pointer":
        if (Array.isArray(current.path)) { for (const segment of current.path) path.push(segment) }
        else path.push(current.path as PropertyKey)
        current = current.issue
        continue
      case "Composite":
        current = Array.isArray(current.issues) ? current.issues[0]! : current.issues as ParseResult.ParseIssue
        continue
      case "Refinement":
      case "Transformation":
        current = current.issue
        continue
      case "Missing":
        return `${pathText(path)}is missing`
      case "Unexpected":
        return `${pathText(path)}is unexpected`
      case "Type":
      case "Forbidden":
        return `${pathText(path)}expected ${String(current.ast)}, got ${kindOf(current.actual)}`
    }
  }
  return "invalid value"
}

/**
 * Describes a Schema failure: Effect's own message when the value at fault is small, a bounded summary
 * otherwise. Never throws and never exceeds `MAX_DETAIL_LENGTH` (plus a short suffix).
 */
export const formatIssue = (issue: ParseResult.ParseIssue): string => {
  try {
    if (isSmall(issue.actual)) return truncateDetail(ParseResult.TreeFormatter.formatIssueSync(issue))
  } catch {
    // A formatter that throws (e.g. a stack overflow in a recursive Schema's message) falls through.
  }
  try {
    return truncateDetail(summarize(issue))
  } catch {
    return "invalid value"
  }
}

/**
 * What a defect was, for the caller: the error's tag or class name and its message
 * (`UnknownSku: { "sku": "nope" }`, `TypeError: x is undefined`), never its stack. Bounded, never throws.
 */
export const describeDefect = (u: unknown): string => {
  try {
    if (u instanceof Error) {
      const tag = (u as { readonly _tag?: unknown })._tag
      const name = typeof tag === "string" ? tag : u.name !== "Error" ? u.name : u.constructor?.name ?? "Error"
      // A plain `new Error(message)` says nothing more with its class name.
      if (name === "Error") return truncateDetail(u.message)
      return truncateDetail(u.message === "" || u.message === name ? name : `${name}: ${u.message}`)
    }
  } catch {
    // A throwing getter falls through to the generic description.
  }
  return describeUnknown(u)
}

/** A bounded, never-throwing description of a thrown value or defect. */
export const describeUnknown = (u: unknown): string => {
  try {
    if (u instanceof Error) return truncateDetail(u.message)
    if (typeof u === "object" && u !== null && "_tag" in u) {
      return truncateDetail(String((u as { readonly _tag: unknown })._tag))
    }
    if (typeof u === "string") return truncateDetail(u)
    if (!isSmall(u)) return kindOf(u)
    return truncateDetail(JSON.stringify(u) ?? String(u))
  } catch {
    return kindOf(u)
  }
}
