/** Template: `src/demo.ts`, what `npm start` runs: the server and the client as two processes. */
import type { Names } from "./names.js"

export const demo = ({ service }: Names): string =>
  `/**
 * \`npm start\`: the server and the client as two processes, as in two terminals (\`npm run server\`, then
 * \`npm run client\`). Starts the server, waits until discovery sees it, runs the client, then stops the server
 * (SIGTERM: it deregisters and drains). Exits with 0 when the client succeeded.
 */
import * as Command from "@effect/platform/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Defaults, Registry } from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"

/** \`node --import tsx <script>\`, its output on this terminal. */
const tsx = (script: string) =>
  Command.make(process.execPath, "--import", "tsx", script).pipe(Command.stdout("inherit"), Command.stderr("inherit"))

const program = Effect.gen(function*() {
  yield* Console.log("» starting the server (src/server.ts)")
  // Scoped: the server is stopped when the program ends, whichever way it ends.
  yield* Command.start(tsx("src/server.ts"))

  const registry = yield* Registry.Registry
  yield* registry.getService("${service}").pipe(
    Effect.map((versions) => versions.flatMap((version) => version.nodes).length),
    Effect.orElseSucceed(() => 0),
    Effect.repeat({ until: (nodes) => nodes > 0, schedule: Schedule.spaced("200 millis") }),
    Effect.timeoutFail({
      duration: "30 seconds",
      onTimeout: () => new Error("${service} did not show up in discovery within 30 s")
    })
  )

  yield* Console.log("» running the client (src/client.ts)")
  const exitCode = yield* Command.exitCode(tsx("src/client.ts"))
  if (exitCode !== 0) return yield* Effect.fail(new Error(\`the client exited with code \${exitCode}\`))
  yield* Console.log("» stopping the server")
})

program.pipe(
  Effect.scoped,
  Effect.provide(Defaults.layerLoopback),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
`
