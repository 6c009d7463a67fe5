/**
 * Dynamic configuration: a tree merged from sources (memory, env, files, command-line flags, etcd),
 * read with an Effect Schema and a default, watched as a `Stream`, hot-reloaded when files or etcd keys
 * change, and bridged to Effect's own `Config` through a `ConfigProvider`.
 *
 * ```ts
 * const ConfigLive = DynamicConfig.layer([
 *   DynamicConfig.memory({ db: { host: "localhost", port: 5432 } }),   // defaults
 *   DynamicConfig.file("config.yaml"),                                   // hot-reloaded
 *   DynamicConfig.env({ prefix: "APP" }),                                // APP_DB_HOST → db.host
 *   DynamicConfig.argv()                                                 // --db.host=x, --db-host x
 * ])
 * const port = yield* DynamicConfig.get("db.port", Schema.Number, { default: 5432 })
 * ```
 *
 * Sources are deep-merged in the order given, later wins; arrays are replaced, not merged. A reload that
 * fails (malformed file, etcd down, a value failing its schema) keeps the last good value and is
 * reported (log + `errors`). See docs/config.md.
 *
 * @since 0.1.0
 */
import type * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type * as SubscriptionRef from "effect/SubscriptionRef"
import * as internal from "./internal/config/dynamicConfig.js"
import * as sources from "./internal/config/sources.js"
import type * as tree from "./internal/config/tree.js"

/**
 * A JSON-like config value.
 * @since 0.1.0
 * @category models
 */
export type Value = tree.Value

/**
 * A config tree (an object at the root).
 * @since 0.1.0
 * @category models
 */
export type Tree = tree.Tree

/**
 * A config path: `"db.host"` or `["db", "host"]`; numeric segments index arrays (`"servers.0.host"`).
 * @since 0.1.0
 * @category models
 */
export type Path = tree.Path

/**
 * Why a config operation failed:
 * - `Missing`: the path is absent and no default was given.
 * - `InvalidValue`: the value at the path does not decode with the schema.
 * - `Parse`: a source's content is malformed (JSON/YAML syntax, not an object at the root).
 * - `Unavailable`: a source could not be read (file missing, etcd down, I/O or watch failure).
 * @since 0.1.0
 * @category errors
 */
export type DynamicConfigErrorReason = "Missing" | "InvalidValue" | "Parse" | "Unavailable"

/**
 * A config error with a `reason` (`Missing`, `InvalidValue`, `Parse`, `Unavailable`), the `path` and the
 * `source` concerned, and a `detail` (for `InvalidValue`, the schema's formatted parse issue).
 * @since 0.1.0
 * @category errors
 */
export class DynamicConfigError extends Data.TaggedError("DynamicConfigError")<{
  readonly reason: DynamicConfigErrorReason
  /** The config path concerned (`db.host`), or "" when the error is about a whole source. */
  readonly path: string
  /** The source concerned (`file:/etc/app.yaml`, `etcd:/app/`), when there is one. */
  readonly source?: string | undefined
  /** Human-readable detail; for `InvalidValue` the schema's formatted parse issue. */
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const where = [this.source, this.path === "" ? undefined : `path "${this.path}"`].filter((s) => s !== undefined)
    return `config ${this.reason}${where.length > 0 ? ` (${where.join(", ")})` : ""}: ${this.detail}`
  }
}

/**
 * What a source reports after it was read: `Right` = it may have changed (the config re-reads it),
 * `Left` = an error to report (the source's last good tree stays).
 * @since 0.1.0
 * @category models
 */
export type SourceSignal = Either.Either<void, DynamicConfigError>

/**
 * An opened source: how to read it, and when to read it again.
 * @since 0.1.0
 * @category models
 */
export interface SourceHandle {
  /** Reads the whole source now. */
  readonly read: Effect.Effect<Tree, DynamicConfigError>
  /** Change notifications (already batched); `Stream.never` for sources that never change. */
  readonly changes: Stream.Stream<SourceSignal>
}

/**
 * A config source. `open` acquires its resources (watchers, clients) in the config's scope.
 * A source that fails to open or to read at start fails the config, unless it is `optional`: then it
 * counts as empty, the error is reported, and it is picked up when it becomes readable.
 * @since 0.1.0
 * @category models
 */
export interface Source {
  /** For errors and logs: `file:/etc/app.yaml`, `env:APP`, `etcd:/app/`. */
  readonly name: string
  readonly optional: boolean
  readonly open: Effect.Effect<SourceHandle, DynamicConfigError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface GetOptions<A> {
  /**
   * Returned when the path is absent (a present value that fails the schema is still an error). Default: none
   * (an absent path fails with `Missing`).
   */
  readonly default?: A | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class DynamicConfig extends Context.Tag("effect-micro/DynamicConfig")<DynamicConfig, DynamicConfig.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace DynamicConfig {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The merged tree now. */
    readonly snapshot: Effect.Effect<Tree>
    /** Decodes the value at `path`; the default when absent; `Missing`/`InvalidValue` otherwise. */
    readonly get: <A, I>(
      path: Path,
      schema: Schema.Schema<A, I, never>,
      options?: GetOptions<NoInfer<A>>
    ) => Effect.Effect<A, DynamicConfigError>
    /**
     * The current decoded value, then each new one when it changes (structural equality). Fails if the
     * first value is missing or invalid; later invalid or missing values are reported to `errors` and
     * skipped, so the stream keeps the last good value.
     */
    readonly watch: <A, I>(
      path: Path,
      schema: Schema.Schema<A, I, never>,
      options?: GetOptions<NoInfer<A>>
    ) => Stream.Stream<A, DynamicConfigError>
    /** The merged tree now, then after each change. */
    readonly changes: Stream.Stream<Tree>
    /** Reload errors: the last ones still buffered (up to 32, including start-up errors of optional sources), then new ones. */
    readonly errors: Stream.Stream<DynamicConfigError>
    /** Re-reads every source now; fails with the first error (all are reported; good reads still apply). */
    readonly reload: Effect.Effect<void, DynamicConfigError>
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SourceOptions {
  /** Start even when the source cannot be read (it counts as empty until it can). Default: false. */
  readonly optional?: boolean | undefined
  /**
   * `${VAR}` / `${VAR:-default}` expansion in string values: `true` (default) reads `process.env`, an
   * object is the environment to read, `false` turns it off.
   */
  readonly interpolate?: boolean | Readonly<Record<string, string | undefined>> | undefined
}

/**
 * A fixed tree (defaults, tests).
 * @since 0.1.0
 * @category sources
 */
export const memory: (tree: Tree, options?: SourceOptions & { readonly name?: string | undefined }) => Source =
  sources.memory

/**
 * A tree held in a `SubscriptionRef`: setting the ref updates the config (tests, programmatic overrides).
 * @since 0.1.0
 * @category sources
 */
export const memoryRef: (
  ref: SubscriptionRef.SubscriptionRef<Tree>,
  options?: SourceOptions & { readonly name?: string | undefined }
) => Source = sources.memoryRef

/**
 * @since 0.1.0
 * @category models
 */
export interface EnvOptions {
  /** Only variables starting with `PREFIX_` (case-insensitive), prefix stripped. Default: every variable. */
  readonly prefix?: string | undefined
  /** The environment to read. Default: `process.env`, read at each (re)load. */
  readonly env?: Readonly<Record<string, string | undefined>> | undefined
}

/**
 * Environment variables: `APP_DB_HOST=x` with prefix `APP` → `db.host = "x"`. Names are lower-cased and
 * split on `_`; `__` stands for a literal `_` (`APP_DB_MAX__CONNS` → `db.max_conns`). Values are strings
 * (numbers and booleans are coerced when the schema asks for them); no interpolation.
 * @since 0.1.0
 * @category sources
 */
export const env: (options?: EnvOptions & { readonly optional?: boolean | undefined }) => Source = sources.env

/**
 * @since 0.1.0
 * @category models
 */
export interface FileOptions extends SourceOptions {
  /**
   * How the file is parsed. Default: from the extension (`.json`; `.yaml`/`.yml`); other extensions are parsed as
   * YAML (a superset of JSON).
   */
  readonly format?: "json" | "yaml" | undefined
  /** Hot reload. Default: true. */
  readonly watch?: boolean | undefined
  /** Changes within this window make one reload. Default: 50 millis. */
  readonly debounce?: Duration.DurationInput | undefined
}

/**
 * A JSON or YAML file whose root is an object. Watched through its directory (so editors' atomic
 * rename-over, delete and re-create are seen), with changes batched within `debounce`.
 * @since 0.1.0
 * @category sources
 */
export const file: (path: string, options?: FileOptions) => Source = sources.file

/**
 * @since 0.1.0
 * @category models
 */
export interface ArgvOptions extends SourceOptions {
  /** The arguments to read flags from. Default: `process.argv.slice(2)`. */
  readonly args?: ReadonlyArray<string> | undefined
}

/**
 * Command-line flags: `--db.host=x`, `--db.host x`, `--db-host x` all set `db.host` (`.` and `-` both
 * separate segments); a flag without a value is `true`; the last occurrence wins; `--` ends the flags;
 * positional arguments are ignored.
 * @since 0.1.0
 * @category sources
 */
export const argv: (options?: ArgvOptions) => Source = sources.argv

/**
 * Builds the service: opens every source, reads them, merges (later wins) and keeps watching until the
 * scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  sources: ReadonlyArray<Source>
) => Effect.Effect<DynamicConfig.Service, DynamicConfigError, Scope.Scope> = internal.make

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (sources: ReadonlyArray<Source>): Layer.Layer<DynamicConfig, DynamicConfigError> =>
  Layer.scoped(DynamicConfig, make(sources))

/**
 * A `ConfigProvider` reading the current merged tree at every read. Both `Config.string("db.host")` and
 * `Config.nested("db")(Config.string("host"))` read `db.host` (dots in names split into segments); arrays
 * read with `Config.array`; numbers and booleans are exposed as strings, as Effect's providers expect.
 * @since 0.1.0
 * @category bridge
 */
export const toConfigProvider: (service: DynamicConfig.Service) => ConfigProvider.ConfigProvider =
  internal.toConfigProvider

/**
 * Installs `toConfigProvider` as the `ConfigProvider`, so `Config.*` reads in the program see the current
 * dynamic config. Compose: `DynamicConfig.layerConfigProvider.pipe(Layer.provideMerge(DynamicConfig.layer(sources)))`.
 * @since 0.1.0
 * @category bridge
 */
export const layerConfigProvider: Layer.Layer<never, never, DynamicConfig> = Layer.unwrapEffect(
  Effect.map(DynamicConfig, (service) => Layer.setConfigProvider(toConfigProvider(service)))
)

/**
 * `get` on the service in context.
 * @since 0.1.0
 * @category accessors
 */
export const get = <A, I>(
  path: Path,
  schema: Schema.Schema<A, I, never>,
  options?: GetOptions<NoInfer<A>>
): Effect.Effect<A, DynamicConfigError, DynamicConfig> =>
  Effect.flatMap(DynamicConfig, (service) => service.get(path, schema, options))

/**
 * `watch` on the service in context.
 * @since 0.1.0
 * @category accessors
 */
export const watch = <A, I>(
  path: Path,
  schema: Schema.Schema<A, I, never>,
  options?: GetOptions<NoInfer<A>>
): Stream.Stream<A, DynamicConfigError, DynamicConfig> =>
  Stream.unwrap(Effect.map(DynamicConfig, (service) => service.watch(path, schema, options)))
