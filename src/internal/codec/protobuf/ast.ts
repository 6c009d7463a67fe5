/**
 * Reading Schema AST nodes for the builder: type-side cores, annotations down refinement chains, union
 * discriminators, and Schema failures worded with the emitted `.proto` names.
 *
 * @internal
 */
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import { Absent, describe, fail } from "./types.js"

export const IntSchemaId = Symbol.for("effect/SchemaId/Int")

export const typeConstructorTag = (ast: AST.AST): string | undefined => {
  const tc = ast.annotations[AST.TypeConstructorAnnotationId] as { _tag?: string } | undefined
  return tc?._tag
}

/** The type-side core of a node (refinements and transformations peeled), for recognising Date & co. */
export const typeCore = (ast: AST.AST): AST.AST => {
  for (;;) {
    if (AST.isRefinement(ast)) ast = ast.from
    else if (AST.isTransformation(ast)) ast = ast.to
    else return ast
  }
}

export const isNullish = (ast: AST.AST): boolean =>
  AST.isUndefinedKeyword(ast) || AST.isVoidKeyword(ast) || (AST.isLiteral(ast) && ast.literal === null)

/** Finds an annotation on a node or down its refinement chain (outermost wins). */
export const findAnnotation = <A>(ast: AST.AST, id: symbol): A | undefined => {
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

export const hasIntRefinement = (ast: AST.AST): boolean => {
  for (;;) {
    if (!AST.isRefinement(ast)) return false
    if (ast.annotations[AST.SchemaIdAnnotationId] === IntSchemaId) return true
    ast = ast.from
  }
}

/**
 * A Schema failure as `Name.field: message`, `Name` being the emitted `.proto` name (what a peer in
 * another language sees), not the Schema's identifier (`my/app/User`), which is replaced where Schema's
 * own message mentions it. At most three issues are listed.
 */
export const formatIssue = (issue: ParseResult.ParseIssue, name?: string, identifier?: string): string => {
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

/** The `_tag` literal of an anonymous tagged struct, for naming its message. */
export const tagOf = (ast: AST.AST): string | undefined => {
  if (!AST.isTypeLiteral(ast)) return undefined
  const tag = ast.propertySignatures.find((p) => p.name === "_tag")
  return tag !== undefined && AST.isLiteral(tag.type) && typeof tag.type.literal === "string"
    ? tag.type.literal
    : undefined
}

export const nullValue = (ast: AST.AST): unknown => (AST.isLiteral(ast) ? ast.literal : undefined)

/** Picks the union member for a value: by a literal discriminator when every member has one. */
export const makeDispatch = (members: ReadonlyArray<AST.AST>, path: string): (v: any) => number => {
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
