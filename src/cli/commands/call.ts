/**
 * `micro call <service> <endpoint> [json]`: calls an endpoint with plain JSON through `Client.dynamic`, in
 * the endpoint's own call shape. Replies go to stdout (one JSON value, or one per line for streams); the
 * endpoint's typed error goes to stderr as its JSON with exit code 1.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Client from "../../Client.js"
import * as Errors from "../../Errors.js"
import { EndpointError } from "../exit.js"
import * as input from "../input.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"

/** Endpoint errors arrive as their JSON value; framework errors as our classes. */
const endpointError = (error: unknown) => Errors.isMicroError(error) ? error : new EndpointError({ value: error })

export const call = Command.make(
  "call",
  {
    ...options.shared,
    ...options.call,
    service: Args.text({ name: "service" }),
    endpoint: Args.text({ name: "endpoint" }),
    payload: Args.text({ name: "json" }).pipe(
      Args.withDescription("The request as JSON; '-' or nothing reads stdin (JSON lines for streaming input)."),
      Args.optional
    )
  },
  (config) =>
    Effect.gen(function*() {
      const callOptions = yield* options.clientOptions(config)
      const client = yield* Client.dynamic(config.service, callOptions)
      const endpoint = client.description.endpoints.find((endpoint) => endpoint.name === config.endpoint)
      const method = client.methods[config.endpoint]
      if (endpoint === undefined || method === undefined) {
        const known = client.description.endpoints.map((endpoint) => endpoint.name).join(", ")
        return yield* Effect.fail(
          Errors.NotFound.of(
            `service ${config.service} has no endpoint ${config.endpoint} (it has: ${known})`,
            "effect-micro.cli"
          )
        )
      }
      // Unary replies are pretty-printed for people; streamed ones are always one compact line each.
      const printOne = (value: unknown) =>
        config.asJson ? output.json(value) : output.text(JSON.stringify(value, null, 2))
      const printEach = (replies: Stream.Stream<unknown, unknown>) =>
        Stream.runForEach(replies, output.json).pipe(Effect.mapError(endpointError))
      switch (endpoint.shape) {
        case "unary": {
          const payload = yield* input.single(config.payload)
          const call = method(payload, callOptions) as Effect.Effect<unknown, unknown>
          return yield* printOne(yield* Effect.mapError(call, endpointError))
        }
        case "server-stream": {
          const payload = yield* input.single(config.payload)
          return yield* printEach(method(payload, callOptions) as Stream.Stream<unknown, unknown>)
        }
        case "client-stream": {
          const { invalid, messages } = yield* input.many(config.payload)
          const call = method(messages, callOptions) as Effect.Effect<unknown, unknown>
          const reply = yield* Effect.mapError(call, endpointError)
          yield* input.checkInput(invalid)
          return yield* printOne(reply)
        }
        case "bidi": {
          const { invalid, messages } = yield* input.many(config.payload)
          yield* printEach(method(messages, callOptions) as Stream.Stream<unknown, unknown>)
          return yield* input.checkInput(invalid)
        }
      }
    }).pipe(Effect.provide(layers.stack(config)))
).pipe(
  Command.withDescription(
    "Call an endpoint with JSON. Streaming input (client-stream, bidi) is JSON lines on stdin; streamed replies are one JSON per line."
  )
)
