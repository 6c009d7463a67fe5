import * as ConfigProvider from "effect/ConfigProvider"
import * as ConfigProviderPathPatch from "effect/ConfigProviderPathPatch"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as PubSub from "effect/PubSub"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { DynamicConfig, GetOptions, Source, SourceHandle } from "../../DynamicConfig.js"
import { DynamicConfigError } from "../../DynamicConfig.js"
import { coerce } from "./coerce.js"
import type { Path, Tree } from "./tree.js"
import { deepEqual, getPath, mergeAll, pathSegments, pathString } from "./tree.js"

/** How many past errors a new `errors` subscriber receives. */
const ERRORS_REPLAY = 32

/** Decodes the value at `path` of `tree`: default when absent, typed errors otherwise. */
export const decodeAt = <A, I>(
  tree: Tree,
  path: Path,
  schema: Schema.Schema<A, I, never>,
  options?: GetOptions<A>
): Either.Either<A, DynamicConfigError> => {
  const raw = getPath(tree, path)
  if (raw === undefined) {
    if (options !== undefined && "default" in options) return Either.right(options.default as A)
    return Either.left(
      new DynamicConfigError({ reason: "Missing", path: pathString(path), detail: "no value and no default" })
    )
  }
  const decoded = ParseResult.decodeUnknownEither(schema)(coerce(schema.ast, raw))
  return Either.mapLeft(decoded, (issue) =>
    new DynamicConfigError({
      reason: "InvalidValue",
      path: pathString(path),
      detail: ParseResult.TreeFormatter.formatIssueSync(issue),
      cause: issue
    }))
}

interface Opened {
  readonly source: Source
  readonly handle: SourceHandle | undefined
}

export const make = (
  sources: ReadonlyArray<Source>
): Effect.Effect<DynamicConfig.Service, DynamicConfigError, Scope.Scope> =>
  Effect.gen(function*() {
    const errorsHub = yield* Effect.acquireRelease(
      PubSub.unbounded<DynamicConfigError>({ replay: ERRORS_REPLAY }),
      PubSub.shutdown
    )
    const report = (error: DynamicConfigError) =>
      Effect.logWarning(error.message).pipe(
        Effect.annotateLogs({ module: "effect-micro/DynamicConfig", reason: error.reason }),
        Effect.zipRight(PubSub.publish(errorsHub, error)),
        Effect.asVoid
      )
    const withSource = (source: Source, error: DynamicConfigError) =>
      error.source === undefined ? new DynamicConfigError({ ...error, source: source.name }) : error

    // Open and read every source, in order. A required source failing here fails the config.
    const opened: Array<Opened> = []
    const trees: Array<Tree> = []
    for (const source of sources) {
      const result = yield* source.open.pipe(
        Effect.flatMap((handle) =>
          Effect.matchEffect(handle.read, {
            onFailure: (error) => Effect.succeed({ handle, tree: undefined, error }),
            onSuccess: (tree) => Effect.succeed({ handle, tree, error: undefined })
          })
        ),
        Effect.catchAll((error) => Effect.succeed({ handle: undefined, tree: undefined, error }))
      )
      if (result.error !== undefined) {
        const error = withSource(source, result.error)
        if (!source.optional) return yield* Effect.fail(error)
        yield* report(error)
      }
      opened.push({ source, handle: result.handle })
      trees.push(result.tree ?? {})
    }

    const ref = yield* SubscriptionRef.make(mergeAll(trees))
    const lock = yield* Effect.makeSemaphore(1)

    /** Stores a source's new tree and publishes the merged tree if it changed. */
    const apply = (index: number, tree: Tree) =>
      lock.withPermits(1)(Effect.suspend(() => {
        trees[index] = tree
        const merged = mergeAll(trees)
        return Effect.flatMap(
          SubscriptionRef.get(ref),
          (current) => deepEqual(current, merged) ? Effect.void : SubscriptionRef.set(ref, merged)
        )
      }))

    const readAndApply = (index: number) => {
      const { handle, source } = opened[index]!
      if (handle === undefined) return Effect.void
      return handle.read.pipe(
        Effect.matchEffect({
          onFailure: (error) =>
            Effect.zipRight(report(withSource(source, error)), Effect.fail(withSource(source, error))),
          onSuccess: (tree) => apply(index, tree)
        })
      )
    }

    // One fiber per watching source, so a slow source (etcd timing out) never delays a file reload.
    for (let index = 0; index < opened.length; index++) {
      const { handle, source } = opened[index]!
      if (handle === undefined) continue
      yield* handle.changes.pipe(
        Stream.runForEach((signal) =>
          Either.isLeft(signal)
            ? report(withSource(source, signal.left))
            : Effect.ignore(readAndApply(index))
        ),
        Effect.forkScoped
      )
    }

    const get = <A, I>(path: Path, schema: Schema.Schema<A, I, never>, options?: GetOptions<A>) =>
      Effect.flatMap(SubscriptionRef.get(ref), (tree) => decodeAt(tree, path, schema, options))

    const watch = <A, I>(path: Path, schema: Schema.Schema<A, I, never>, options?: GetOptions<A>) =>
      Stream.suspend(() => {
        let last: Option.Option<A> = Option.none()
        return ref.changes.pipe(
          Stream.mapEffect((tree) => {
            const decoded = decodeAt(tree, path, schema, options)
            if (Either.isLeft(decoded)) {
              // Before the first good value there is nothing to keep: the stream fails.
              return Option.isNone(last) ? Effect.fail(decoded.left) : Effect.as(report(decoded.left), Option.none<A>())
            }
            if (Option.isSome(last) && deepEqual(last.value, decoded.right)) return Effect.succeed(Option.none<A>())
            last = Option.some(decoded.right)
            return Effect.succeed(last)
          }),
          Stream.filterMap((o) => o)
        )
      })

    const reload = Effect.forEach(opened, (_, index) => Effect.either(readAndApply(index)), {
      concurrency: "unbounded"
    })
      .pipe(Effect.flatMap((results) => {
        const failed = results.find(Either.isLeft)
        return failed === undefined ? Effect.void : Effect.fail(failed.left)
      }))

    const service: DynamicConfig.Service = {
      snapshot: SubscriptionRef.get(ref),
      get,
      watch,
      changes: ref.changes,
      errors: Stream.fromPubSub(errorsHub),
      reload
    }
    return service
  })

/** Effect's ConfigProvider paths are segments; a segment with dots (`Config.string("db.host")`) is split. */
const normalize = (path: ReadonlyArray<string>): ReadonlyArray<string> => pathSegments(path)

export const toConfigProvider = (service: DynamicConfig.Service): ConfigProvider.ConfigProvider => {
  // Rebuilt only when the tree changes (trees are immutable values).
  let cachedTree: Tree | undefined
  let cachedProvider: ConfigProvider.ConfigProvider | undefined
  const current = Effect.map(service.snapshot, (tree) => {
    if (tree !== cachedTree || cachedProvider === undefined) {
      cachedTree = tree
      cachedProvider = ConfigProvider.fromJson(tree)
    }
    return cachedProvider.flattened
  })
  return ConfigProvider.fromFlat(ConfigProvider.makeFlat({
    load: (path, primitive, split) => Effect.flatMap(current, (flat) => flat.load(normalize(path), primitive, split)),
    enumerateChildren: (path) => Effect.flatMap(current, (flat) => flat.enumerateChildren(normalize(path))),
    patch: ConfigProviderPathPatch.empty
  }))
}
