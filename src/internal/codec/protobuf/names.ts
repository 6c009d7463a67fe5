/**
 * Message names shared by `Protobuf.toProto` and the codec's error details, without the plan builder (so
 * `Contract` and `Errors` can use them cheaply and without an import cycle).
 *
 * `toProto` names an endpoint's messages after the endpoint (`HelloRequest`, `HelloResponse`,
 * `HelloError`) unless the Schema has an identifier. A codec compiled for the same Schema does not know the
 * endpoint, so the runtime records the name on the Schema it compiles (`endpointMessage`) and the codec
 * uses it as the root name: an error detail then says `HelloRequest.name: ...`, as the `.proto` does.
 *
 * @internal
 */
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

/** Annotation: the `.proto` name of a root message whose Schema has no identifier. */
export const MessageNameId: unique symbol = Symbol.for("effect-micro/Protobuf/MessageName")

/** @internal */
export const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** A proto-safe PascalCase name from an identifier annotation or a field name. */
export const pascal = (s: string): string => {
  const last = s.includes("/") ? s.slice(s.lastIndexOf("/") + 1) : s
  const parts = last.split(/[^A-Za-z0-9]+/).filter((p) => p.length > 0)
  let out = parts.map((p) => p[0]!.toUpperCase() + p.slice(1)).join("")
  if (out === "" || /^[0-9]/.test(out)) out = "M" + out
  return out
}

/** The identifier a message takes its name from (a class's is on its transformation's `to` side). */
export const identifierOf = (ast: AST.AST): string | undefined => {
  const id = AST.getIdentifierAnnotation(ast)
  if (Option.isSome(id)) return id.value
  if (AST.isTransformation(ast)) {
    const to = AST.getIdentifierAnnotation(ast.to)
    if (Option.isSome(to)) return to.value
  }
  return undefined
}

/** The name a codec gives a root Schema: its identifier, else the recorded `.proto` name, else `Message`. */
export const rootName = (ast: AST.AST): string => {
  const identifier = identifierOf(ast)
  if (identifier !== undefined) return identifier
  const recorded = ast.annotations[MessageNameId]
  return typeof recorded === "string" ? recorded : "Message"
}

/**
 * `schema` with the name `toProto` gives it as the `role` message of `endpoint` (`HelloRequest`), for
 * the codec's error details. Schemas with an identifier (classes) keep it, as in `toProto`.
 */
export const endpointMessage = <A, I>(
  schema: Schema.Schema<A, I, never>,
  endpoint: string,
  role: "Request" | "Response" | "Error"
): Schema.Schema<A, I, never> =>
  AST.isNeverKeyword(schema.ast) || identifierOf(schema.ast) !== undefined
    ? schema
    : schema.annotations({ [MessageNameId]: `${pascal(endpoint)}${role}` })
