/** `micro describe <service>`: its nodes (from the registry) and its contract (from `Debug.Describe`). */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Client from "../../Client.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import { getService, nodesOf } from "./discovery.js"

const parseSchema = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

export const describe = Command.make(
  "describe",
  { ...options.shared, service: Args.text({ name: "service" }) },
  (config) =>
    Effect.gen(function*() {
      const nodes = nodesOf(yield* getService(config.service)).map(({ node, version }) => ({
        id: node.id,
        address: node.address,
        version,
        metadata: node.metadata
      }))
      const description = yield* Client.describe(config.service)
      const endpoints = description.endpoints.map((endpoint) => ({
        ...endpoint,
        request: parseSchema(endpoint.request),
        response: parseSchema(endpoint.response),
        error: parseSchema(endpoint.error)
      }))
      const topics = (description.topics ?? []).map((topic) => ({ ...topic, schema: parseSchema(topic.schema) }))
      if (config.asJson) {
        return yield* output.json({
          service: description.service,
          version: description.version,
          digest: description.digest,
          nodes,
          endpoints,
          topics
        })
      }
      const lines = [
        `service ${description.service} (version ${description.version}, contract digest ${description.digest})`,
        "",
        output.table(
          ["NODE", "ADDRESS", "VERSION", "METADATA"],
          nodes.map((node) => [node.id, node.address, node.version, output.metadata(node.metadata)])
        ),
        "",
        output.table(
          ["ENDPOINT", "SHAPE", "IDEMPOTENT"],
          endpoints.map((endpoint) => [endpoint.name, endpoint.shape, endpoint.idempotent ? "yes" : "no"])
        )
      ]
      // `$schema` is the same on every schema; people need only the rest.
      const show = (schema: unknown) => {
        if (typeof schema !== "object" || schema === null) return JSON.stringify(schema)
        const { $schema: _, ...rest } = schema as Record<string, unknown>
        return JSON.stringify(rest)
      }
      for (const endpoint of endpoints) {
        lines.push(
          "",
          `${endpoint.name} (${endpoint.shape})`,
          `  request:  ${show(endpoint.request)}`,
          `  response: ${show(endpoint.response)}`,
          `  error:    ${show(endpoint.error)}`
        )
      }
      if (topics.length > 0) {
        lines.push(
          "",
          output.table(
            ["TOPIC", "QUEUE", "MESSAGE"],
            topics.map((topic) => [topic.topic, topic.queue ?? "-", show(topic.schema)])
          )
        )
      }
      yield* output.text(lines.join("\n"))
    }).pipe(Effect.provide(layers.stack(config)))
).pipe(
  Command.withDescription(
    "Show a service's nodes, endpoints (JSON Schemas of requests, responses, errors) and subscribed topics."
  )
)
