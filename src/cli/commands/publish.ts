/** `micro publish <topic> [json]`: publishes a JSON message through the HTTP broker. */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import * as Broker from "../../Broker.js"
import * as input from "../input.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"

export const publish = Command.make(
  "publish",
  {
    ...options.shared,
    metadata: options.call.metadata,
    timeout: options.call.timeout,
    topic: Args.text({ name: "topic" }),
    payload: Args.text({ name: "json" }).pipe(
      Args.withDescription("The message as JSON; '-' or nothing reads stdin."),
      Args.optional
    )
  },
  (config) =>
    Effect.gen(function*() {
      const message = yield* input.single(config.payload)
      const timeout = yield* Option.match(config.timeout, {
        onNone: () => Effect.succeed(undefined),
        onSome: options.parseDuration
      })
      yield* Broker.publish(config.topic, new TextEncoder().encode(JSON.stringify(message)), {
        contentType: "application/json",
        ...Option.match(config.metadata, {
          onNone: () => ({}),
          onSome: (map) => ({ headers: Object.fromEntries(HashMap.toEntries(map)) })
        }),
        ...(timeout === undefined ? {} : { timeout })
      })
      yield* config.asJson
        ? output.json({ topic: config.topic, published: true })
        : output.text(`published to ${config.topic}`)
    }).pipe(Effect.provide(layers.stack(config)))
).pipe(
  Command.withDescription("Publish a JSON message to a topic (HTTP broker: every subscriber found in the registry).")
)
