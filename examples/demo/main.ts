/**
 * The demo system (`bash scripts/demo.sh`): three services in five processes find each other over
 * multicast DNS on loopback and talk.
 *
 *   greeter ×2  ← welcome ×1  ← this process (the caller)
 *
 * 1. the caller resolves "welcome" by name and calls it; welcome resolves "greeter" and calls it;
 *    replies show which greeter node served each call (load balancing);
 * 2. streaming shapes against the greeter (server, client and bidirectional streams);
 * 3. one greeter node is killed (SIGKILL) under load: calls keep succeeding (retries on the other node)
 *    and the dead node ages out of discovery;
 * 4. everything shuts down gracefully (deregister, drain).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Client, Defaults, Registry } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import { type ChildProcess, spawn } from "node:child_process"
import * as path from "node:path"
import { Greeter } from "../greeter/contract.js"
import { Welcome } from "./welcome.js"

const root = path.resolve(import.meta.dirname, "../..")

const start = (name: string, script: string, env: Record<string, string> = {}) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(process.execPath, ["--import", "tsx", path.join(root, script)], {
        cwd: root,
        env: { ...process.env, ...env },
        stdio: ["ignore", "pipe", "pipe"]
      })
      const prefix = (data: Buffer) =>
        data.toString().trimEnd().split("\n").forEach((line) => console.log(`  [${name}] ${line}`))
      child.stdout!.on("data", prefix)
      child.stderr!.on("data", prefix)
      return child
    }),
    (child) => stop(child, "SIGTERM")
  )

const stop = (child: ChildProcess, signal: NodeJS.Signals) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
    child.once("exit", () => {
      clearTimeout(timer)
      resume(Effect.void)
    })
    child.kill(signal)
  })

const program = Effect.gen(function*() {
  yield* Console.log("» starting greeter-1, greeter-2 and welcome (separate processes, mdns on loopback)")
  const greeter1 = yield* start("greeter-1", "examples/greeter/server.ts", { NODE_NAME: "greeter-1" })
  yield* start("greeter-2", "examples/greeter/server.ts", { NODE_NAME: "greeter-2" })
  yield* start("welcome", "examples/demo/welcome.ts")

  const welcome = yield* Client.make(Welcome, { service: "welcome", timeout: "10 seconds" })
  const greeter = yield* Client.make(Greeter, { service: "greeter" })

  // Processes take a moment to boot: wait (bounded) until every node is discoverable.
  const registry = yield* Registry.Registry
  const nodesOf = (service: string) =>
    registry.getService(service).pipe(
      Effect.map((versions) => versions.flatMap((version) => version.nodes).length),
      Effect.orElseSucceed(() => 0)
    )
  yield* Effect.all([nodesOf("greeter"), nodesOf("welcome")]).pipe(
    Effect.repeat({
      until: ([greeters, welcomes]) => greeters >= 2 && welcomes >= 1,
      schedule: Schedule.spaced("200 millis")
    }),
    Effect.timeoutFail({ duration: "30 seconds", onTimeout: () => new Error("services did not come up in 30 s") })
  )

  yield* Console.log("\n» caller → welcome → greeter, by name, six times")
  for (const name of ["Ada", "Grace", "Edsger", "Barbara", "Alan", "Margaret"]) {
    const reply = yield* welcome.Welcome({ name })
    yield* Console.log(`  ${reply.text}   (greeter node: ${reply.greeterNode})`)
  }
  const rejected = yield* Effect.flip(welcome.Welcome({ name: "" }))
  yield* Console.log(`  Welcome("") → typed error ${rejected._tag}`)

  yield* Console.log("\n» streaming against greeter")
  yield* Console.log(`  Countdown(5) → ${[...yield* Stream.runCollect(greeter.Countdown({ from: 5 }))].join(" ")}`)
  yield* Console.log(`  GreetAll(stream) → ${(yield* greeter.GreetAll(Stream.make("Ada", "Grace"))).join(" ")}`)
  const chat = yield* Stream.runCollect(greeter.Chat(Stream.make("ping", "pong")))
  yield* Console.log(`  Chat(bidi) → ${[...chat].join(" | ")}`)

  yield* Console.log("\n» 400 calls, 16 at a time; greeter-1 is killed with SIGKILL after 100")
  const served: Record<string, number> = {}
  let completed = 0
  yield* Effect.forEach(
    Array.from({ length: 400 }, (_, i) => i),
    (i) =>
      greeter.Hello({ name: `caller-${i}` }).pipe(
        Effect.tap((greeting) =>
          Effect.sync(() => {
            served[greeting.node] = (served[greeting.node] ?? 0) + 1
            if (++completed === 100) greeter1.kill("SIGKILL")
          })
        )
      ),
    { concurrency: 16, discard: true }
  )
  yield* Console.log(`  all ${completed} calls succeeded; served by ${JSON.stringify(served)}`)

  yield* Console.log("\n» shutting down (each service deregisters, then drains)")
})

program.pipe(
  Effect.scoped,
  Effect.provide(Defaults.layerLoopback),
  Effect.tapErrorCause(Effect.logError),
  NodeRuntime.runMain
)
