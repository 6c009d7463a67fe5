/**
 * `micro subscribe <topic>`: tails a topic through the HTTP broker. The CLI registers a subscription of its
 * own (no queue group, so it sees every message without taking any from a service's group) and prints each
 * message as one JSON line until interrupted, `--count` messages arrived or `--timeout` passed.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Broker from "../../Broker.js"
import * as HttpBroker from "../../HttpBroker.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"
import * as progress from "../progress.js"

const isJson = (contentType: string) => /[/+]json\b/.test(contentType)

/** The message as one JSON value: a JSON body as its value, any other body as base64. */
const render = (message: Broker.Message) => {
  const text = new TextDecoder().decode(message.body)
  let payload: { readonly payload: unknown } | { readonly base64: string }
  try {
    payload = isJson(message.contentType) ? { payload: JSON.parse(text) } : { base64: toBase64(message.body) }
  } catch {
    payload = { base64: toBase64(message.body) }
  }
  return { topic: message.topic, contentType: message.contentType, headers: message.headers, ...payload }
}

const toBase64 = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64")

export const subscribe = Command.make(
  "subscribe",
  {
    ...options.shared,
    topic: Args.text({ name: "topic" }),
    queue: Options.text("queue").pipe(
      Options.optional,
      Options.withDescription(
        "Join this queue group (takes a share of its messages). Default: none, see every message."
      )
    ),
    count: Options.integer("count").pipe(
      Options.optional,
      Options.withDescription("Exit after this many messages.")
    ),
    timeout: Options.text("timeout").pipe(
      Options.optional,
      Options.withDescription("Exit after this long, e.g. 30s (exit code 0).")
    ),
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("Interface the tail's HTTP endpoint binds to (0.0.0.0 to receive from other hosts).")
    )
  },
  (config) =>
    Effect.gen(function*() {
      const timeout = yield* Option.match(config.timeout, {
        onNone: () => Effect.succeed(undefined),
        onSome: options.parseDuration
      })
      const limit = Option.getOrUndefined(config.count)
      const done = yield* Deferred.make<void>()
      let received = 0
      yield* Broker.subscribe(config.topic, (message) =>
        Effect.suspend(() => {
          received++
          const value = render(message)
          const printed = config.asJson
            ? output.json(value)
            : output.text(JSON.stringify("payload" in value ? value.payload : value))
          return received === limit ? Effect.zipRight(printed, Deferred.succeed(done, undefined)) : printed
        }), Option.match(config.queue, { onNone: () => ({}), onSome: (queue) => ({ queue }) }))
      // Scripts wait for this line before publishing: from here on the subscription is registered.
      yield* progress.note(`subscribed to ${config.topic}`)
      yield* progress.show(() => `${config.topic}: ${received} message(s) (Ctrl-C to stop)`)
      const finished = Deferred.await(done)
      yield* timeout === undefined ? finished : Effect.raceFirst(finished, Effect.sleep(timeout))
    }).pipe(
      Effect.scoped,
      Effect.provide(
        HttpBroker.layer({ host: config.host }).pipe(Layer.provide(layers.registry(config)))
      )
    )
).pipe(Command.withDescription("Print a topic's messages as they arrive, one JSON per line."))
