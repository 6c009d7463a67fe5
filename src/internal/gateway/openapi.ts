/**
 * OpenAPI 3.1 and the `/docs` page, from `Debug.Describe` answers. A description's JSON Schemas are draft-07
 * documents with their own `$defs`; inside one OpenAPI document their definitions move to
 * `components/schemas` (named `<service>.<Name>`, or `<service>.<endpoint>.<Name>` when two endpoints of a
 * service define one name differently) and their `$ref`s follow; tuple `items` arrays become `prefixItems`.
 */
import type { Description, EndpointDescription } from "../../Debug.js"
import { errorStatusOf } from "./clients.js"

export interface DocumentOptions {
  readonly title: string
  readonly version: string
  /** Status of endpoint errors that declare none. */
  readonly endpointErrorStatus: number
  readonly errorStatus: ReadonlyMap<string, number>
}

type Json = Record<string, unknown>

const componentName = (text: string) => text.replace(/[^a-zA-Z0-9.\-_]/g, "_")

const MicroErrorSchema: Json = {
  type: "object",
  description: "A framework error (go-micro's fields).",
  required: ["_tag", "id", "code", "detail", "status"],
  properties: {
    _tag: { type: "string", description: "The error class: BadRequest, NotFound, Timeout, ServiceNotFound …" },
    id: { type: "string", description: "Who raised it (a service, effect-micro.client, effect-micro.gateway)." },
    code: { type: "integer", description: "The framework's HTTP-like code." },
    detail: { type: "string" },
    status: { type: "string" }
  }
}

/** Rewrites one schema document: refs to components, draft-07 tuples to 2020-12, no `$schema`/`$id`. */
const rewrite = (node: unknown, refs: ReadonlyMap<string, string>): unknown => {
  if (Array.isArray(node)) return node.map((item) => rewrite(item, refs))
  if (typeof node !== "object" || node === null) return node
  const out: Json = {}
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === "$schema" || key === "$id" || key === "$defs" || key === "definitions") continue
    if (key === "$ref" && typeof value === "string") {
      const name = /^#\/(?:\$defs|definitions)\/(.+)$/.exec(value)?.[1]
      const target = name === undefined ? undefined : refs.get(decodeURIComponent(name))
      out.$ref = target === undefined ? value : `#/components/schemas/${target}`
      continue
    }
    if (key === "items" && Array.isArray(value)) {
      out.prefixItems = rewrite(value, refs)
      continue
    }
    if (key === "additionalItems") {
      out.items = rewrite(value, refs)
      continue
    }
    out[key] = rewrite(value, refs)
  }
  return out
}

/** One schema of an endpoint (JSON text) into `components`, returning the schema to embed. */
const place = (text: string, service: string, endpoint: string, components: Json): Json => {
  let parsed: Json
  try {
    parsed = JSON.parse(text) as Json
  } catch {
    return { description: "unreadable JSON Schema" }
  }
  const defs = { ...(parsed.definitions as Json | undefined), ...(parsed.$defs as Json | undefined) }
  const refs = new Map<string, string>()
  for (const name of Object.keys(defs)) {
    const shared = componentName(`${service}.${name}`)
    refs.set(name, shared)
  }
  for (const [name, def] of Object.entries(defs)) {
    let target = refs.get(name)!
    const rewritten = rewrite(def, refs)
    const existing = components[target]
    if (existing !== undefined && JSON.stringify(existing) !== JSON.stringify(rewritten)) {
      target = componentName(`${service}.${endpoint}.${name}`)
      refs.set(name, target)
    }
  }
  for (const [name, def] of Object.entries(defs)) components[refs.get(name)!] = rewrite(def, refs)
  return rewrite(parsed, refs) as Json
}

const isNever = (schema: Json) => typeof schema.not === "object" && Object.keys(schema.not as object).length === 0

const jsonContent = (schema: Json) => ({ "application/json": { schema } })

const streamContent = (message: Json) => ({
  "text/event-stream": {
    schema: {
      type: "string",
      description: "Server-Sent Events: one `data:` event per message; `event: error` ends a failed call."
    }
  },
  "application/x-ndjson": {
    schema: { ...message, description: "One message per line; a failed call ends with {\"$error\": …}." }
  }
})

const operation = (
  description: Description,
  endpoint: EndpointDescription,
  components: Json,
  options: DocumentOptions
): Json => {
  const { service } = description
  const request = place(endpoint.request, service, endpoint.name, components)
  const response = place(endpoint.response, service, endpoint.name, components)
  const error = place(endpoint.error, service, endpoint.name, components)
  const streamingInput = endpoint.shape === "client-stream" || endpoint.shape === "bidi"
  const streamingOutput = endpoint.shape === "server-stream" || endpoint.shape === "bidi"
  const responses: Record<string, Json> = {
    "200": {
      description: streamingOutput ? "The replies, as they come." : "The reply.",
      content: streamingOutput ? streamContent(response) : jsonContent(response)
    }
  }
  const framework = { $ref: "#/components/schemas/MicroError" }
  const frameworkStatuses: Record<string, string> = {
    "400": "Bad request: malformed JSON, a payload the service rejects, a bad timeout.",
    "401": "Unauthorized (the service's auth rules).",
    "403": "Forbidden (the service's auth rules).",
    "404": "Unknown service or endpoint.",
    "413": "Request body too large.",
    "429": "Rate limited (see Retry-After).",
    "500": "The handler failed.",
    "503": "No node could answer.",
    "504": "The call's deadline passed."
  }
  for (const [status, text] of Object.entries(frameworkStatuses)) {
    responses[status] = { description: text, content: jsonContent(framework) }
  }
  if (!isNever(error)) {
    const declared = errorStatusOf(endpoint.error)
    const statuses = new Set<number>()
    for (const [tag, status] of declared) statuses.add(options.errorStatus.get(tag) ?? status)
    for (const [tag, status] of options.errorStatus) if (endpoint.error.includes(`"${tag}"`)) statuses.add(status)
    statuses.add(options.endpointErrorStatus)
    for (const status of statuses) {
      const key = String(status)
      const existing = responses[key]
      responses[key] = {
        description: existing === undefined
          ? "The endpoint's own error."
          : `${existing.description as string} Or the endpoint's own error.`,
        content: jsonContent(existing === undefined ? error : { anyOf: [error, framework] })
      }
    }
  }
  return {
    operationId: componentName(`${service}.${endpoint.name}`),
    summary: `${endpoint.name} (${endpoint.shape}${endpoint.idempotent ? ", idempotent" : ""})`,
    tags: [service],
    parameters: [{
      name: "X-Micro-Timeout",
      in: "header",
      required: false,
      description: "The call's deadline: 500ms, 2s, 1m or milliseconds (capped by the gateway).",
      schema: { type: "string" }
    }],
    requestBody: {
      required: false,
      content: jsonContent(
        streamingInput ? { type: "array", items: request, description: "Every message of the input stream." } : request
      )
    },
    responses
  }
}

/** The OpenAPI 3.1 document of these services. */
export const document = (descriptions: ReadonlyArray<Description>, options: DocumentOptions): Json => {
  const components: Json = { MicroError: MicroErrorSchema }
  const paths: Json = {}
  const sorted = [...descriptions].sort((a, b) => a.service.localeCompare(b.service))
  for (const description of sorted) {
    for (const endpoint of description.endpoints) {
      const path = `/${encodeURIComponent(description.service)}/${encodeURIComponent(endpoint.name)}`
      paths[path] = { post: operation(description, endpoint, components, options) }
    }
  }
  return {
    openapi: "3.1.0",
    info: { title: options.title, version: options.version },
    tags: sorted.map((description) => ({ name: description.service, description: `version ${description.version}` })),
    paths,
    components: { schemas: components }
  }
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;")

const pretty = (text: string) => {
  try {
    return JSON.stringify(JSON.parse(text), null, 2)
  } catch {
    return text
  }
}

/** A plain HTML page of the services, their endpoints and schemas (no scripts, no external assets). */
export const docsPage = (
  descriptions: ReadonlyArray<Description>,
  title: string,
  unavailable: ReadonlyArray<string>,
  /** The gateway's address as the browser reached it (the `Host` header), for the examples. */
  host: string
) => {
  const sorted = [...descriptions].sort((a, b) => a.service.localeCompare(b.service))
  const sections = sorted.map((description) => {
    const endpoints = description.endpoints.map((endpoint) => {
      const path = `/${encodeURIComponent(description.service)}/${encodeURIComponent(endpoint.name)}`
      const how = endpoint.shape === "unary"
        ? `curl -X POST -H 'content-type: application/json' -d '{…}' http://${host}${path}`
        : endpoint.shape === "server-stream"
        ? `curl -N -X POST -d '{…}' http://${host}${path}   (SSE; NDJSON with -H 'accept: application/x-ndjson')`
        : `WebSocket ws://${host}${path} (one JSON per frame, an empty frame ends the input), or POST a JSON array`
      return `<section class="endpoint"><h3 id="${escapeHtml(`${description.service}.${endpoint.name}`)}">${
        escapeHtml(endpoint.name)
      } <small>${endpoint.shape}${endpoint.idempotent ? ", idempotent" : ""}</small></h3>
<p><code>POST ${escapeHtml(path)}</code></p><pre class="how">${escapeHtml(how)}</pre>
<details><summary>request</summary><pre>${escapeHtml(pretty(endpoint.request))}</pre></details>
<details><summary>response</summary><pre>${escapeHtml(pretty(endpoint.response))}</pre></details>
<details><summary>errors</summary><pre>${escapeHtml(pretty(endpoint.error))}</pre></details></section>`
    }).join("\n")
    return `<h2 id="${escapeHtml(description.service)}">${escapeHtml(description.service)} <small>${
      escapeHtml(description.version)
    }</small></h2>\n${endpoints}`
  }).join("\n")
  const missing = unavailable.length === 0
    ? ""
    : `<p class="unavailable">Not answering Describe: ${unavailable.map(escapeHtml).join(", ")}</p>`
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}pre{background:#f4f4f4;padding:.5rem;overflow:auto}small{color:#666;font-weight:normal}section.endpoint{border-top:1px solid #ddd}</style>
</head><body><h1>${escapeHtml(title)}</h1><p>OpenAPI 3.1: <a href="openapi.json">openapi.json</a></p>
${missing}${sections.length === 0 ? "<p>No services.</p>" : sections}</body></html>`
}
