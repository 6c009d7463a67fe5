/** `micro health [service]`: asks every node (of one service, or of all) for its `Debug.Health`. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Client from "../../Client.js"
import { Unhealthy } from "../exit.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import { getService, isSubscription, listServices, nodesOf } from "./discovery.js"

/** A probe should not wait as long as a call: a node this slow to say it is alive is not healthy. */
const probeTimeout = "2 seconds"

export const health = Command.make(
  "health",
  {
    ...options.shared,
    service: Args.text({ name: "service" }).pipe(
      Args.withDescription("Only this service (default: every service)."),
      Args.optional
    )
  },
  (config) =>
    Effect.gen(function*() {
      const services = yield* Option.match(config.service, {
        onNone: () => listServices(config),
        onSome: getService
      })
      // Every service: its RPC nodes only (broker subscriptions are listed by `services`, not probed).
      const nodes = Option.isSome(config.service)
        ? nodesOf(services)
        : nodesOf(services).filter(({ node }) => !isSubscription(node))
      const rows = yield* Effect.forEach(nodes, ({ node, service, version }) =>
        Client.health(service, { node: node.address, timeout: probeTimeout }).pipe(
          Effect.map((answer) => ({
            service,
            version,
            node: node.id,
            address: node.address,
            status: answer.status as string,
            uptimeMillis: answer.uptimeMillis as number | undefined,
            error: undefined as string | undefined
          })),
          Effect.catchAll((error) =>
            Effect.succeed({
              service,
              version,
              node: node.id,
              address: node.address,
              status: "unreachable",
              uptimeMillis: undefined,
              error: `${error._tag}: ${error.detail}`
            })
          )
        ), { concurrency: 16 })
      if (config.asJson) {
        yield* output.json(rows)
      } else if (rows.length === 0) {
        yield* output.text("no services found")
      } else {
        yield* output.text(output.table(
          ["SERVICE", "VERSION", "NODE", "ADDRESS", "STATUS", "UPTIME"],
          rows.map((row) => [
            row.service,
            row.version,
            row.node,
            row.address,
            row.error === undefined ? row.status : `${row.status} (${row.error})`,
            row.uptimeMillis === undefined ? "-" : output.millis(row.uptimeMillis)
          ])
        ))
      }
      const notServing = rows.filter((row) =>
        row.status !== "serving"
      ).length
      if (notServing > 0) {
        return yield* Effect.fail(new Unhealthy({ nodes: notServing }))
      }
    }).pipe(Effect.provide(layers.stack(config)))
).pipe(
  Command.withDescription("Health of every node of a service (or of every service). Exit 2 when a node is not serving.")
)
