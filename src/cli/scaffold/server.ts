/** Template: `src/server.ts`, the server main. */
import type { Names } from "./names.js"

export const server = ({ contract, service }: Names): string =>
  `/**
 * The server main (\`npm run server\`): serves ${service} and registers it in discovery until Ctrl-C (or
 * SIGTERM), which deregisters it and lets the calls in flight finish.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Defaults, Server } from "effect-micro"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { ${contract} } from "./contract.js"
import { HandlersLive } from "./handlers.js"

const ServerLive = Server.layer(${contract}, {
  name: "${service}",
  // Loopback only; "0.0.0.0:0" (the default) listens on every interface, e.g. for other hosts on a LAN.
  address: "127.0.0.1:0"
}).pipe(
  Layer.provide(HandlersLive),
  // The default stack: multicast-DNS discovery, TCP, the codecs, load balancing, the broker and the store.
  // \`layerLoopback\` keeps multicast DNS on this host; \`Defaults.layer\` is the same on every interface.
  Layer.provide(Defaults.layerLoopback)
)

Effect.gen(function*() {
  const server = yield* Server.Server
  yield* Effect.log(\`${service} serving on \${server.address}\`)
  return yield* Effect.never
}).pipe(Effect.provide(ServerLive), NodeRuntime.runMain)
`
