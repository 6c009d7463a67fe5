/** Template: `src/client.ts`, a client calling the service. */
import type { Names } from "./names.js"

export const client = ({ contract, service }: Names): string =>
  `/**
 * A client (\`npm run client [name]\`, with the server running): finds ${service} through discovery and calls
 * each endpoint once. Load balancing, retries and timeouts come from the layers.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Client, Defaults } from "effect-micro"
import * as Chunk from "effect/Chunk"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { ${contract} } from "./contract.js"

const program = Effect.gen(function*() {
  const client = yield* Client.make(${contract}, { service: "${service}" })

  const greeting = yield* client.Hello({ name: process.argv[2] ?? "Ada" })
  yield* Console.log(\`Hello → \${greeting.message}\`)

  // The endpoint's typed error, handled by its tag.
  yield* client.Hello({ name: " " }).pipe(
    Effect.flatMap((unexpected) => Console.log(\`Hello(" ") → \${unexpected.message}\`)),
    Effect.catchTag("NameRejected", (error) => Console.log(\`Hello(" ") → NameRejected: \${error.reason}\`))
  )

  const ticks = yield* Stream.runCollect(client.Countdown({ from: 3 }))
  yield* Console.log(\`Countdown → \${Chunk.toReadonlyArray(ticks).map((tick) => tick.remaining).join(" ")}\`)
})

// The same stack as the server's (src/server.ts), so it finds what the server registered.
program.pipe(Effect.provide(Defaults.layerLoopback), NodeRuntime.runMain)
`
