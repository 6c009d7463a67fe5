/**
 * `Debug.Describe`: a contract as data. JSON Schemas of the wire (encoded) form of each message, computed once
 * per server, and a digest of them that the registry carries so a cached description can be checked.
 */
import * as JSONSchema from "effect/JSONSchema"
import type * as Schema from "effect/Schema"
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

export const describeEndpoint = (name: string, schemas: EndpointSchemas): EndpointDescription => ({
  name,
  shape: schemas.shape,
  idempotent: schemas.idempotent,
  request: jsonSchemaText(schemas.request),
  response: jsonSchemaText(schemas.response),
  error: jsonSchemaText(schemas.error)
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
