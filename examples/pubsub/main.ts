/**
 * The pubsub example in one command: starts two billing workers and an auditor (separate processes), waits
 * until their subscriptions are discovered, publishes typed orders, shows what the publisher learns
 * (invalid orders rejected before sending, a handler failure reported back), asks each billing node over
 * RPC what it billed, then stops everything and exits.
 *   npx tsx examples/pubsub/main.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Client, Defaults, Registry, Topic } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { Billing, type Order, OrderPlaced } from "./contract.js"

const here = import.meta.dirname

/** Starts an example process; its output is shown line by line; it is stopped when the scope closes. */
const start = (script: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(here, script)], {
        env: { ...process.env, ...env },
        stdio: ["pipe", "pipe", "inherit"]
      })
      child.stdout!.on("data", (data: Buffer) =>
        process.stdout.write(`  | ${data.toString().replace(/\n(?=.)/g, "\n  | ")}`))
      return child
    }),
    (child: ChildProcess) =>
      Effect.async<void>((resume) => {
        if (child.exitCode !== null) {
          return resume(Effect.void)
        }
        child.once("exit", () =>
          resume(Effect.void))
        child.stdin!.end() // the child exits when its stdin closes (SIGTERM: graceful, it deregisters)
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000)
        child.once("exit", () => clearTimeout(timer))
      })
  )

const subscribers = Effect.flatMap(
  Registry.Registry,
  (registry) =>
    registry.getService(`micro.broker.${OrderPlaced.name}`).pipe(
      Effect.map((services) => services.flatMap((service) => service.nodes).length),
      Effect.orElseSucceed(() => 0)
    )
)

const program = Effect.gen(function*() {
  yield* Console.log("starting billing-1, billing-2 (queue group \"billing\") and an auditor ...")
  yield* start("billing.ts", { NODE_NAME: "billing-1" })
  yield* start("billing.ts", { NODE_NAME: "billing-2" })
  yield* start("auditor.ts")
  yield* subscribers.pipe(
    Effect.repeat({ until: (n) => n === 3, schedule: Schedule.spaced("100 millis") }),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("subscribers not discovered in 30 s") })
  )
  yield* Console.log("3 subscriptions discovered; publishing 6 orders")

  for (let i = 1; i <= 6; i++) {
    const order: Order = { id: `o-${i}`, item: "widget", quantity: i, total: i * 9.5 }
    yield* Topic.publish(OrderPlaced, order, { headers: { "trace-id": `t-${i}` } })
  }

  const invalid = yield* Effect.flip(
    Topic.publish(OrderPlaced, { id: "o-bad", item: "widget", quantity: -1, total: 0 })
  )
  yield* Console.log(`publish of an invalid order → ${invalid._tag}: nothing was sent`)

  const failed = yield* Effect.flip(
    Topic.publish(OrderPlaced, { id: "o-empty", item: "widget", quantity: 0, total: 0 })
  )
  yield* Console.log(
    `publish of an order billing cannot handle → ${failed._tag}` +
      (failed._tag === "BrokerError"
        ? ` ${failed.reason}: ${failed.failures.map((f) => `${f.queue} ${f.reason}`).join(", ")}`
        : "")
  )

  // Fire-and-forget: returns at once, no delivery result.
  yield* Topic.publish(OrderPlaced, { id: "o-7", item: "gadget", quantity: 1, total: 30 }, { fireAndForget: true })
  yield* Effect.sleep("300 millis")

  const billing = yield* Client.make(Billing, { service: "billing" })
  const seen = new Map<string, ReadonlyArray<string>>()
  yield* billing.Invoiced().pipe(
    Effect.tap(({ node, orders }) => Effect.sync(() => seen.set(node, orders))),
    Effect.repeat({ until: () => seen.size === 2, schedule: Schedule.spaced("10 millis") }),
    Effect.timeout("5 seconds"),
    Effect.ignore
  )
  for (const [node, orders] of [...seen].sort()) yield* Console.log(`${node} billed: ${orders.join(", ")}`)
  const all = [...seen.values()].flat()
  yield* Console.log(`each order billed once: ${all.length === 7 && new Set(all).size === 7}`)
  yield* Console.log("stopping ...")
})

program.pipe(
  Effect.scoped,
  Effect.provide(Defaults.layerLoopback),
  NodeRuntime.runMain
)
