/** `micro stats <service>`: every node's `Debug.Stats`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Client from "../../Client.js"
import type * as Debug from "../../Debug.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import { getService, nodesOf } from "./discovery.js"

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

const render = (stats: Debug.Stats, address: string): string =>
  [
    `node ${stats.node} (${address}), up ${output.millis(stats.uptimeMillis)}: ` +
    `${stats.connections.open} connection(s) open, ${stats.bytes.received} bytes in, ${stats.bytes.sent} out, ` +
    `rss ${megabytes(stats.memory.rss)}, event-loop p99 ${stats.eventLoopDelayMillis.p99.toFixed(1)}ms`,
    output.table(
      ["ENDPOINT", "STARTED", "SUCCEEDED", "FAILED", "CANCELLED", "IN-FLIGHT", "MEAN"],
      stats.endpoints.map((endpoint) => [
        endpoint.endpoint,
        String(endpoint.started),
        String(endpoint.succeeded),
        String(endpoint.failed),
        String(endpoint.cancelled),
        String(endpoint.inFlight),
        endpoint.started === 0 ? "-" : `${(endpoint.durationSumMillis / endpoint.started).toFixed(2)}ms`
      ])
    )
  ].join("\n")

export const stats = Command.make(
  "stats",
  { ...options.shared, service: Args.text({ name: "service" }) },
  (config) =>
    Effect.gen(function*() {
      const nodes = nodesOf(yield* getService(config.service))
      const answers = yield* Effect.forEach(
        nodes,
        ({ node }) => Effect.map(Client.stats(config.service, { node: node.address }), (stats) => ({ stats, node })),
        { concurrency: 16 }
      )
      if (config.asJson) return yield* output.json(answers.map(({ stats }) => stats))
      yield* output.text(answers.map(({ node, stats }) => render(stats, node.address)).join("\n\n"))
    }).pipe(Effect.provide(layers.stack(config)))
).pipe(Command.withDescription("Calls, errors, durations, connections and memory of every node of a service."))
