/**
 * Schema-directed scalar coercion. Env vars and command-line flags only carry strings, files and etcd
 * carry typed JSON/YAML; a schema should read both. Before decoding, each scalar leaf is converted to
 * the scalar type the schema's *encoded* side expects at that place:
 * - a string where a number is expected: `"5432"` → `5432` (only if it parses completely);
 * - a string where a boolean is expected: `"true"`/`"false"` (any case) → boolean;
 * - a number or boolean where a string is expected: `5432` → `"5432"` (YAML `password: 1234`);
 * - the same conversions towards number/boolean/string literals and enums.
 * Anything else is left as is, so the schema reports the mismatch.
 */
import * as AST from "effect/SchemaAST"
import type { Value } from "./tree.js"
import { isObject } from "./tree.js"

interface Accepted {
  /** Any string (StringKeyword, TemplateLiteral) or something this module does not look into. */
  anyString: boolean
  other: boolean
  number: boolean
  boolean: boolean
  readonly stringLiterals: Set<string>
}

const parseNumber = (s: string): number | undefined => {
  const trimmed = s.trim()
  if (trimmed === "") return undefined
  const n = Number(trimmed)
  return Number.isNaN(n) ? undefined : n
}

const parseBoolean = (s: string): boolean | undefined => {
  const lower = s.trim().toLowerCase()
  return lower === "true" ? true : lower === "false" ? false : undefined
}

/** What scalars an AST accepts at the top (through refinements, transformations and unions). */
const accepts = (ast: AST.AST, into: Accepted): void => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      into.anyString = true
      return
    case "NumberKeyword":
      into.number = true
      return
    case "BooleanKeyword":
      into.boolean = true
      return
    case "Literal":
      if (typeof ast.literal === "string") into.stringLiterals.add(ast.literal)
      else if (typeof ast.literal === "number") into.number = true
      else if (typeof ast.literal === "boolean") into.boolean = true
      else into.other = true
      return
    case "Enums":
      for (const [, v] of ast.enums) {
        if (typeof v === "number") into.number = true
        else into.stringLiterals.add(v)
      }
      return
    case "Union":
      for (const member of ast.types) accepts(member, into)
      return
    case "Refinement":
    case "Transformation":
      return accepts(ast.from, into)
    case "Suspend":
      return accepts(ast.f(), into)
    case "TypeLiteral":
    case "TupleType":
    case "UndefinedKeyword":
    case "VoidKeyword":
    case "NeverKeyword":
      // structured or impossible for a scalar: no conversion towards them
      return
    default:
      // unknown, any, declarations...: accept the value as it is
      into.other = true
  }
}

const coerceScalar = (ast: AST.AST, value: string | number | boolean): Value => {
  const into: Accepted = { anyString: false, other: false, number: false, boolean: false, stringLiterals: new Set() }
  accepts(ast, into)
  if (into.other) return value
  if (typeof value === "string") {
    if (into.anyString || into.stringLiterals.has(value)) return value
    if (into.number) {
      const n = parseNumber(value)
      if (n !== undefined) return n
    }
    if (into.boolean) {
      const b = parseBoolean(value)
      if (b !== undefined) return b
    }
    return value
  }
  if (typeof value === "number" ? into.number : into.boolean) return value
  const asString = String(value)
  return into.anyString || into.stringLiterals.has(asString) ? asString : value
}

const coerceAst = (ast: AST.AST, value: Value): Value => {
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") {
    return coerceScalar(ast, value)
  }
  switch (ast._tag) {
    case "Refinement":
    case "Transformation":
      return coerceAst(ast.from, value)
    case "Suspend":
      return coerceAst(ast.f(), value)
    case "Union": {
      // Structured value: use the first member of the same shape.
      const member = ast.types.find((t) => Array.isArray(value) ? shapeOf(t) === "array" : shapeOf(t) === "object")
      return member === undefined ? value : coerceAst(member, value)
    }
    case "TypeLiteral": {
      if (!isObject(value)) return value
      const out: Record<string, Value> = { ...value }
      const named = new Set<PropertyKey>()
      for (const property of ast.propertySignatures) {
        named.add(property.name)
        if (typeof property.name === "string" && out[property.name] !== undefined) {
          out[property.name] = coerceAst(property.type, out[property.name]!)
        }
      }
      if (ast.indexSignatures.length > 0) {
        const signature = ast.indexSignatures[0]!
        for (const key of Object.keys(out)) {
          if (!named.has(key)) out[key] = coerceAst(signature.type, out[key]!)
        }
      }
      return out
    }
    case "TupleType": {
      if (!Array.isArray(value)) return value
      return value.map((item, index) => {
        const element = ast.elements[index]
        if (element !== undefined) return coerceAst(element.type, item)
        const rest = ast.rest[0]
        return rest === undefined ? item : coerceAst(rest.type, item)
      })
    }
    default:
      return value
  }
}

const shapeOf = (ast: AST.AST): "object" | "array" | "other" => {
  switch (ast._tag) {
    case "TypeLiteral":
      return "object"
    case "TupleType":
      return "array"
    case "Refinement":
    case "Transformation":
      return shapeOf(ast.from)
    case "Suspend":
      return shapeOf(ast.f())
    default:
      return "other"
  }
}

/** Coerces `value` towards what `ast` (a schema's full AST) accepts on its encoded side. */
export const coerce = (ast: AST.AST, value: Value): Value => coerceAst(AST.encodedAST(ast), value)
