/**
 * `Debug.Describe`: a contract as data. JSON Schemas of the wire (encoded) form of each message, computed once
 * per server, and a digest of them that the registry carries so a cached description can be checked.
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import { createHash } from "node:crypto"
import type { EndpointSchemas } from "../../Contract.js"
import type { Description, EndpointDescription } from "../../Debug.js"
import { errorMessage } from "../common/text.js"

// Computed once per Schema object (contracts and topics are usually module constants).
const jsonSchemas = new WeakMap<object, string>()

/** A Schema's JSON Schema as JSON text; one with no JSON Schema form (a declared type) says why. */
export const jsonSchemaText = (schema: Schema.Schema.All): string => {
  let text = jsonSchemas.get(schema)
  if (text === undefined) {
    try {
      text = JSON.stringify(JSONSchema.make(schema as Schema.Schema<unknown, unknown>))
    } catch (error) {
      text = JSON.stringify({ description: `no JSON Schema: ${errorMessage(error)}` })
    }
    jsonSchemas.set(schema, text)
  }
  return text
}

/**
 * The HTTP status an error class declares with `@effect/platform`'s `HttpApiSchema.annotations({ status })`
 * (the key is spelled out so the core does not import the platform's HTTP API modules).
 */
const AnnotationStatus = Symbol.for("@effect/platform/HttpApiSchema/AnnotationStatus")

/** `_tag` → HTTP status of the tagged members of an error Schema that declare one. */
const statusesOf = (ast: SchemaAST.AST, into: Map<string, number>): Map<string, number> => {
  switch (ast._tag) {
    case "Union":
      for (const member of ast.types) statusesOf(member, into)
      return into
    case "Suspend":
      return into
    case "Transformation": {
      const status = ast.to.annotations[AnnotationStatus] ?? ast.annotations[AnnotationStatus]
      const tag = tagOf(ast.to) ?? tagOf(ast.from)
      if (typeof status === "number" && tag !== undefined) into.set(tag, status)
      return into
    }
    default: {
      const status = ast.annotations[AnnotationStatus]
      const tag = tagOf(ast)
      if (typeof status === "number" && tag !== undefined) into.set(tag, status)
      return into
    }
  }
}

/** The literal `_tag` of a struct or class AST (a class declaration reads its surrogate struct). */
const tagOf = (ast: SchemaAST.AST): string | undefined => {
  const surrogate = ast.annotations[SchemaAST.SurrogateAnnotationId] as SchemaAST.AST | undefined
  const struct = surrogate ?? ast
  if (struct._tag !== "TypeLiteral") return undefined
  const property = struct.propertySignatures.find((signature) => signature.name === "_tag")
  return property !== undefined && property.type._tag === "Literal" && typeof property.type.literal === "string"
    ? property.type.literal
    : undefined
}

/**
 * Adds `"x-http-status": n` to each object schema of the JSON Schema whose `_tag` declares a status, so the
 * HTTP gateway (and OpenAPI) can answer the endpoint's error with it. Nothing changes without annotations.
 */
const withStatuses = (jsonSchema: string, statuses: Map<string, number>): string => {
  if (statuses.size === 0) return jsonSchema
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const item of node) visit(item)
      return
    }
    if (typeof node !== "object" || node === null) return
    const record = node as Record<string, unknown>
    const tag = (record.properties as { _tag?: { enum?: ReadonlyArray<unknown> } } | undefined)?._tag?.enum?.[0]
    if (typeof tag === "string" && statuses.has(tag)) record["x-http-status"] = statuses.get(tag)
    for (const key in record) visit(record[key])
  }
  const parsed = JSON.parse(jsonSchema) as unknown
  visit(parsed)
  return JSON.stringify(parsed)
}

export const describeEndpoint = (name: string, schemas: EndpointSchemas): EndpointDescription => ({
  name,
  shape: schemas.shape,
  idempotent: schemas.idempotent,
  request: jsonSchemaText(schemas.request),
  response: jsonSchemaText(schemas.response),
  error: withStatuses(jsonSchemaText(schemas.error), statusesOf(schemas.error.ast, new Map()))
})

export const describe = (
  service: string,
  version: string,
  endpoints: ReadonlyArray<EndpointDescription>
): Description => ({
  service,
  version,
  // 16 hex digits of SHA-256 over the endpoints: short enough for an mdns TXT record.
  digest: createHash("sha256").update(JSON.stringify(endpoints)).digest("hex").slice(0, 16),
  endpoints
})
