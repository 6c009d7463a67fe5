/** The contract the RPC suites (in-memory and cross-process) exercise: every call shape and failure mode. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Contract, Metadata, Registry, Server } from "../../src/index.js"

export class UnknownName extends Schema.TaggedError<UnknownName>()("UnknownName", { name: Schema.String }) {}

export const Testing = RpcGroup.make(
  Rpc.make("Hello", { payload: { name: Schema.String }, success: Schema.String, error: UnknownName }),
  Rpc.make("Echo", {
    payload: { text: Schema.String },
    success: Schema.Struct({ text: Schema.String, node: Schema.String })
  })
    .annotate(Contract.Idempotent, true),
  Rpc.make("Countdown", { payload: { from: Schema.Number }, success: Schema.Number, stream: true }),
  Contract.clientStream("Sum", { payload: Schema.Number, success: Schema.Number }),
  Contract.bidi("Chat", { payload: Schema.String, success: Schema.String, error: UnknownName }),
  Rpc.make("Sleep", { payload: { millis: Schema.Number }, success: Schema.String }),
  Rpc.make("Boom", { payload: { message: Schema.String } }),
  Rpc.make("WhoAmI", { success: Schema.Record({ key: Schema.String, value: Schema.String }) }),
  Rpc.make("Bytes", { payload: Schema.Uint8ArrayFromSelf, success: Schema.Uint8ArrayFromSelf })
)

/** Handlers; `node` names the serving node so tests can see load balancing. `events` records side effects. */
export const handlers = (node: string, events: Array<string> = []) =>
  Testing.toLayer({
    Hello: ({ name }) => name === "nobody" ? Effect.fail(new UnknownName({ name })) : Effect.succeed(`Hello, ${name}!`),
    Echo: ({ text }) => Effect.succeed({ text, node }),
    Countdown: ({ from }) => Stream.iterate(from, (n) => n - 1).pipe(Stream.take(Math.max(0, from + 1))),
    Sum: (numbers) => Stream.runFold(numbers, 0, (a, b) => a + b),
    Chat: (lines) =>
      lines.pipe(
        Stream.takeWhile((line) => line !== "bye"),
        Stream.mapEffect((line) =>
          line === "nobody" ? Effect.fail(new UnknownName({ name: line })) : Effect.succeed(`echo: ${line}`)
        ),
        Stream.concat(Stream.make("goodbye"))
      ),
    Sleep: ({ millis }) =>
      Effect.sync(() => events.push(`sleep-started:${millis}`)).pipe(
        Effect.zipRight(Effect.sleep(millis)),
        Effect.zipRight(Effect.sync(() => events.push(`sleep-done:${millis}`))),
        Effect.as(`slept ${millis}`),
        Effect.onInterrupt(() => Effect.sync(() => events.push(`sleep-interrupted:${millis}`)))
      ),
    Boom: ({ message }) => Effect.die(new Error(message)),
    WhoAmI: (_, { headers }) =>
      Effect.map(Metadata.currentCall, (call) => ({ ...headers, endpoint: call.endpoint })).pipe(Effect.orDie),
    Bytes: (bytes) => Effect.succeed(bytes.map((b) => 255 - b))
  })

/** A node of `testing` on the memory transport, serving the handlers above as node `node`. */
export const serveMemory = (node: string, events?: Array<string>) =>
  Server.layer(Testing, { name: "testing", address: `memory:${node}`, id: node }).pipe(
    Layer.provide(handlers(node, events))
  )

/** A registered node of `testing` whose memory address nobody listens on (a dead node the registry still lists). */
export const ghostNode = (id: string) =>
  Layer.effectDiscard(Effect.flatMap(Registry.Registry, (registry) =>
    registry.register({
      name: "testing",
      version: "latest",
      metadata: {},
      endpoints: [],
      nodes: [{ id, address: `memory:${id}`, metadata: {} }]
    })))
