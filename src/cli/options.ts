/**
 * Options shared by the commands: where discovery is (each also read from a `MICRO_*` environment
 * variable) and the output format; and the per-call options of `call`.
 */
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HashMap from "effect/HashMap"
import * as Option from "effect/Option"
import type { ClientOptions } from "../Client.js"
import { UsageError } from "./exit.js"

/** Where the registry is. */
export interface RegistryOptions {
  readonly registry: "mdns" | "etcd"
  readonly etcd: Option.Option<string>
  readonly mdnsInterface: Option.Option<string>
  readonly mdnsPort: Option.Option<number>
}

export const registry = {
  registry: Options.choice("registry", ["mdns", "etcd"]).pipe(
    Options.withFallbackConfig(Config.literal("mdns", "etcd")("MICRO_REGISTRY")),
    Options.withDefault("mdns" as const),
    Options.withDescription("Discovery: mdns (default) or etcd. Env MICRO_REGISTRY.")
  ),
  etcd: Options.text("etcd").pipe(
    Options.withFallbackConfig(Config.string("MICRO_ETCD")),
    Options.optional,
    Options.withDescription("etcd endpoint(s), host:port, comma-separated (default 127.0.0.1:2379). Env MICRO_ETCD.")
  ),
  mdnsInterface: Options.text("mdns-interface").pipe(
    Options.withFallbackConfig(Config.string("MICRO_MDNS_INTERFACE")),
    Options.optional,
    Options.withDescription(
      "IPv4 address of the interface mdns uses (default: every interface). Env MICRO_MDNS_INTERFACE."
    )
  ),
  mdnsPort: Options.integer("mdns-port").pipe(
    Options.withFallbackConfig(Config.integer("MICRO_MDNS_PORT")),
    Options.optional,
    Options.withDescription("UDP port of mdns (default 5353). Env MICRO_MDNS_PORT.")
  )
}

export const output = {
  asJson: Options.boolean("json").pipe(Options.withDescription("Machine-readable JSON on stdout."))
}

/** The options every command that looks services up takes. */
export const shared = { ...registry, ...output }

/** `500ms`, `2s`, `1.5m` or a number of milliseconds. */
export const parseDuration = (text: string): Effect.Effect<Duration.Duration, UsageError> => {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim())
  if (match === null) return Effect.fail(new UsageError({ detail: `bad duration "${text}" (use 500ms, 2s, 1m)` }))
  const value = Number(match[1])
  const unit = match[2] ?? "ms"
  return Effect.succeed(
    unit === "ms" ? Duration.millis(value) : unit === "s" ? Duration.seconds(value) : Duration.minutes(value)
  )
}

export const call = {
  metadata: Options.keyValueMap("metadata").pipe(
    Options.withAlias("m"),
    Options.optional,
    Options.withDescription("Metadata sent with the call, key=value (repeatable).")
  ),
  timeout: Options.text("timeout").pipe(
    Options.optional,
    Options.withDescription("Per-attempt timeout, e.g. 500ms, 2s (default 5s for unary calls, none for streams).")
  ),
  node: Options.text("node").pipe(
    Options.optional,
    Options.withDescription("Call this node (host:port) instead of one the selector picks.")
  ),
  contentType: Options.choice("content-type", ["application/json", "application/msgpack"]).pipe(
    Options.withDefault("application/json" as const),
    Options.withDescription("Encoding on the wire (protobuf needs the contract's Schemas, which the CLI has not).")
  )
}

export interface CallOptions {
  readonly metadata: Option.Option<HashMap.HashMap<string, string>>
  readonly timeout: Option.Option<string>
  readonly node: Option.Option<string>
  readonly contentType: "application/json" | "application/msgpack"
}

/** The client options `call` passes on. */
export const clientOptions = (options: CallOptions): Effect.Effect<ClientOptions, UsageError> =>
  Effect.map(
    Option.match(options.timeout, { onNone: () => Effect.succeed(undefined), onSome: parseDuration }),
    (timeout) => ({
      ...(timeout === undefined ? {} : { timeout }),
      ...Option.match(options.metadata, {
        onNone: () => ({}),
        onSome: (map) => ({ metadata: Object.fromEntries(HashMap.toEntries(map)) })
      }),
      ...Option.match(options.node, { onNone: () => ({}), onSome: (node) => ({ node }) }),
      contentType: options.contentType
    })
  )
