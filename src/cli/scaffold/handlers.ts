/** Template: `src/handlers.ts`, the implementation of the contract. */
import type { Names } from "./names.js"

export const handlers = ({ contract }: Names): string =>
  `/**
 * The implementation of the contract: one handler per endpoint. Handlers are plain Effects and Streams, so
 * they can use any service from their layer (a \`Store\`, a \`Client\` of another service ...).
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import { ${contract}, Greeting, NameRejected, Tick } from "./contract.js"

export const HandlersLive = ${contract}.toLayer({
  Hello: ({ name }) =>
    name.trim() === ""
      ? Effect.fail(new NameRejected({ name, reason: "the name is blank" }))
      : Effect.succeed(new Greeting({ message: \`Hello, \${name}!\` })),
  Countdown: ({ from }) =>
    Stream.iterate(from, (n) => n - 1).pipe(
      Stream.take(from + 1),
      Stream.map((remaining) => new Tick({ remaining }))
    )
})
`
