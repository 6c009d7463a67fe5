/**
 * `micro services`: every registry entry, its versions and how many nodes run it. Entries of the HTTP broker
 * (one per subscribed topic) are listed as `subscription`s.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import { isSubscription, listServices } from "./discovery.js"

export const services = Command.make("services", options.shared, (config) =>
  Effect.gen(function*() {
    const byName = new Map<string, { kind: string; versions: Set<string>; nodes: Set<string> }>()
    for (const service of yield* listServices(config)) {
      const kind = service.nodes.some(isSubscription) ? "subscription" : "service"
      const entry = byName.get(service.name) ?? { kind, versions: new Set(), nodes: new Set() }
      entry.versions.add(service.version)
      for (const node of service.nodes) entry.nodes.add(node.id)
      byName.set(service.name, entry)
    }
    const rows = [...byName.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([name, entry]) => ({
      name,
      kind: entry.kind,
      versions: [...entry.versions].sort(),
      nodes: entry.nodes.size
    }))
    if (config.asJson) return yield* output.json(rows)
    if (rows.length === 0) return yield* output.text("no services found")
    yield* output.text(output.table(
      ["NAME", "KIND", "VERSIONS", "NODES"],
      rows.map((row) => [row.name, row.kind, row.versions.join(", "), String(row.nodes)])
    ))
  }).pipe(Effect.provide(layers.registry(config)))).pipe(
    Command.withDescription(
      "List registered services (and broker subscriptions): name, kind, versions, number of nodes."
    )
  )
