/** The contract the gRPC interop suites serve and call: the four call shapes, typed and framework errors, metadata. */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { Contract, Errors, Metadata, Server } from "../../src/index.js"

export class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", {
  id: Schema.String,
  reason: Schema.String
}) {}

export const Interop = RpcGroup.make(
  Rpc.make("Hello", {
    payload: { name: Schema.String },
    success: Schema.Struct({ greeting: Schema.String, caller: Schema.String }),
    error: UserNotFound
  }),
  Rpc.make("Count", { payload: { to: Schema.Int }, success: Schema.Struct({ n: Schema.Int }), stream: true }),
  Contract.clientStream("Sum", {
    payload: Schema.Struct({ value: Schema.Int }),
    success: Schema.Struct({ total: Schema.Int, count: Schema.Int })
  }),
  Contract.bidi("Chat", {
    payload: Schema.Struct({ text: Schema.String }),
    success: Schema.Struct({ text: Schema.String })
  }),
  /** Waits `millis` (or forever when 0) and records whether it was stopped. */
  Rpc.make("Slow", { payload: { millis: Schema.Int, token: Schema.String }, success: Schema.String }),
  /** Dies (a defect). */
  Rpc.make("Fail", { payload: { kind: Schema.String }, success: Schema.String })
)

/** Tokens of Slow calls whose handler started, and of those interrupted (deadline, cancel). */
export const started = new Set<string>()
export const interrupted = new Set<string>()

export const handlers = Interop.toLayer({
  Hello: ({ name }) =>
    name === "nobody"
      ? Effect.fail(new UserNotFound({ id: name, reason: "no such user" }))
      : Effect.map(Effect.orDie(Metadata.currentCall), (call) => ({
        greeting: `Hello ${name}`,
        caller: call.metadata["x-caller"] ?? ""
      })),
  Count: ({ to }) => Stream.range(1, to).pipe(Stream.map((n) => ({ n }))),
  Sum: (input) =>
    Stream.runFold(input, { total: 0, count: 0 }, (acc, item) => ({
      total: acc.total + item.value,
      count: acc.count + 1
    })),
  Chat: (input) => Stream.map(input, ({ text }) => ({ text: text.toUpperCase() })),
  Slow: ({ millis, token }) =>
    Effect.sync(() => started.add(token)).pipe(
      Effect.zipRight(millis === 0 ? Effect.never : Effect.sleep(millis)),
      Effect.as("done"),
      Effect.onInterrupt(() => Effect.sync(() => interrupted.add(token)))
    ),
  Fail: () => Effect.die(new Error("boom"))
})

const frameworkErrors: Record<string, (detail: string, id: string) => Errors.MicroError> = {
  NotFound: Errors.NotFound.of,
  Forbidden: Errors.Forbidden.of,
  Unauthorized: Errors.Unauthorized.of,
  BadRequest: Errors.BadRequest.of,
  ServiceUnavailable: Errors.ServiceUnavailable.of,
  Timeout: Errors.Timeout.of,
  Conflict: Errors.Conflict.of
}

/** Server middleware: metadata `x-fail: <Tag>` rejects the call with that framework error before the handler. */
export const failByMetadata = Server.layerMiddleware((call, next) => {
  const kind = call.metadata["x-fail"]
  const make = kind === undefined ? undefined : frameworkErrors[kind]
  return make === undefined ? next : Effect.fail(make(`rejected by middleware (${kind})`, "interop"))
})
