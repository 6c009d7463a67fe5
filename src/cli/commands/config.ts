/**
 * `micro config get|watch [path]`: the dynamic config a service would see, from the same sources merged the
 * same way (later `--source` wins): `file:app.yaml` (or a plain path), `env:PREFIX` (or `env` for every
 * variable) and `etcd:/prefix/` (on `--etcd`). `watch` prints the value again on every change.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as DynamicConfig from "../../DynamicConfig.js"
import { UsageError } from "../exit.js"
import * as options from "../options.js"
import * as output from "../output.js"
import * as progress from "../progress.js"

const shared = {
  source: Options.text("source").pipe(
    Options.withAlias("s"),
    Options.repeated,
    Options.withDescription(
      "A source, lowest priority first (repeatable): file:PATH (or PATH), env[:PREFIX], etcd:/PREFIX/."
    )
  ),
  etcd: options.registry.etcd,
  asJson: options.output.asJson,
  path: Args.text({ name: "path" }).pipe(
    Args.withDescription("Dotted path (db.host); nothing for the whole tree."),
    Args.optional
  )
}

interface Shared {
  readonly source: ReadonlyArray<string>
  readonly etcd: Option.Option<string>
  readonly path: Option.Option<string>
}

const etcdSource = (prefix: string, hosts: Option.Option<string>): Effect.Effect<DynamicConfig.Source, UsageError> =>
  Effect.tryPromise({
    try: () => import("../../plugins/etcd/EtcdConfigSource.js"),
    catch: (error) =>
      new UsageError({ detail: `etcd sources need the etcd3 package (npm install etcd3): ${String(error)}` })
  }).pipe(Effect.map((EtcdConfigSource) =>
    EtcdConfigSource.make({
      prefix,
      hosts: Option.getOrElse(hosts, () => "127.0.0.1:2379").split(",").map((host) => host.trim())
    })
  ))

const sourceOf = (spec: string, hosts: Option.Option<string>): Effect.Effect<DynamicConfig.Source, UsageError> => {
  if (spec === "env") return Effect.succeed(DynamicConfig.env())
  if (spec.startsWith("env:")) return Effect.succeed(DynamicConfig.env({ prefix: spec.slice(4) }))
  if (spec.startsWith("etcd:")) return etcdSource(spec.slice(5), hosts)
  const path = spec.startsWith("file:") ? spec.slice(5) : spec
  if (path === "") return Effect.fail(new UsageError({ detail: `bad source "${spec}"` }))
  return Effect.succeed(DynamicConfig.file(path))
}

/** The merged config of the `--source`s, for as long as the scope lasts. */
const open = (config: Shared) =>
  config.source.length === 0
    ? Effect.fail(new UsageError({ detail: "give at least one --source (file:PATH, env[:PREFIX], etcd:/PREFIX/)" }))
    : Effect.flatMap(
      Effect.forEach(config.source, (spec) => sourceOf(spec, config.etcd)),
      DynamicConfig.make
    )

const pathOf = (config: Shared) => Option.getOrElse(config.path, () => [] as ReadonlyArray<string>)

const print = (asJson: boolean) => (value: unknown) =>
  asJson || typeof value !== "string" ? output.json(value) : output.text(value)

const get = Command.make(
  "get",
  shared,
  (config) =>
    open(config).pipe(
      Effect.flatMap((service) => service.get(pathOf(config), Schema.Unknown)),
      Effect.flatMap(print(config.asJson)),
      Effect.scoped
    )
).pipe(Command.withDescription("Print the merged value at a path (exit 3 if absent)."))

const watch = Command.make(
  "watch",
  {
    ...shared,
    count: Options.integer("count").pipe(Options.optional, Options.withDescription("Exit after this many values."))
  },
  (config) =>
    Effect.gen(function*() {
      const service = yield* open(config)
      let seen = 0
      yield* progress.show(() => `${seen} value(s) (Ctrl-C to stop)`)
      const values = service.watch(pathOf(config), Schema.Unknown)
      yield* values.pipe(
        Option.match(config.count, { onNone: () => (s: typeof values) => s, onSome: (n) => Stream.take(n) }),
        Stream.runForEach((value) => Effect.zipRight(Effect.sync(() => seen++), print(true)(value)))
      )
    }).pipe(Effect.scoped)
).pipe(Command.withDescription("Print the value at a path now and after every change, one JSON per line."))

export const config = Command.make("config").pipe(
  Command.withDescription("Read the dynamic config from files, environment and etcd, merged like a service does."),
  Command.withSubcommands([get, watch])
)
