import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as fs from "node:fs"
import * as nodePath from "node:path"
import * as YAML from "yaml"
import type { ArgvOptions, EnvOptions, FileOptions, Source, SourceOptions } from "../../DynamicConfig.js"
import { DynamicConfigError } from "../../DynamicConfig.js"
import { errorMessage } from "../common/text.js"
import { makeSignals } from "./signals.js"
import type { Environment, Tree, Value } from "./tree.js"
import { interpolate, isObject, setPath, toValue } from "./tree.js"

/** The environment used for `${VAR}` expansion, or undefined when it is off. */
export const interpolationEnv = (option: SourceOptions["interpolate"]): Environment | undefined =>
  option === false ? undefined : option === undefined || option === true ? process.env : option

export const applyInterpolation = (tree: Tree, option: SourceOptions["interpolate"]): Tree => {
  const environment = interpolationEnv(option)
  return environment === undefined ? tree : interpolate(tree, environment) as Tree
}

// ----- memory -----

export const memory = (tree: Tree, options?: SourceOptions & { readonly name?: string | undefined }): Source => ({
  name: options?.name ?? "memory",
  optional: options?.optional ?? false,
  open: Effect.succeed({
    read: Effect.sync(() => applyInterpolation(tree, options?.interpolate)),
    changes: Stream.never
  })
})

export const memoryRef = (
  ref: SubscriptionRef.SubscriptionRef<Tree>,
  options?: SourceOptions & { readonly name?: string | undefined }
): Source => ({
  name: options?.name ?? "memory",
  optional: options?.optional ?? false,
  open: Effect.succeed({
    read: Effect.map(SubscriptionRef.get(ref), (tree) => applyInterpolation(tree, options?.interpolate)),
    // Every element (the first one included, which covers a change made before the subscription) re-reads.
    changes: ref.changes.pipe(Stream.as(Either.right(undefined)))
  })
})

// ----- env -----

/** `DB_MAX__CONNS` → `["db", "max_conns"]`. */
const envSegments = (name: string): ReadonlyArray<string> =>
  name.toLowerCase().split("__").map((part) => part.split("_")).reduce<Array<string>>((acc, parts, i) => {
    if (i === 0) return parts
    // `a__b` joins the segment before and after the double underscore with a literal `_`.
    const last = acc.pop() ?? ""
    return [...acc, `${last}_${parts[0] ?? ""}`, ...parts.slice(1)]
  }, []).filter((s) => s !== "")

export const envTree = (environment: Environment, prefix: string | undefined): Tree => {
  const out: Record<string, Value> = {}
  const wanted = prefix === undefined || prefix === ""
    ? ""
    : (prefix.endsWith("_") ? prefix : `${prefix}_`).toLowerCase()
  // Sorted so that conflicts (APP_DB=x and APP_DB_HOST=y) resolve the same way every time.
  for (const name of Object.keys(environment).sort()) {
    const value = environment[name]
    if (value === undefined) continue
    if (wanted !== "" && !name.toLowerCase().startsWith(wanted)) continue
    const segments = envSegments(name.slice(wanted.length))
    if (segments.length === 0) continue
    setPath(out, segments, value)
  }
  return out
}

export const env = (options?: EnvOptions & { readonly optional?: boolean | undefined }): Source => ({
  name: options?.prefix === undefined ? "env" : `env:${options.prefix}`,
  optional: options?.optional ?? false,
  open: Effect.succeed({
    read: Effect.sync(() => envTree(options?.env ?? process.env, options?.prefix)),
    changes: Stream.never
  })
})

// ----- argv -----

export const argvTree = (args: ReadonlyArray<string>): Tree => {
  const out: Record<string, Value> = {}
  const set = (key: string, value: Value) => {
    const segments = key.split(/[.-]/).filter((s) => s !== "")
    if (segments.length > 0) setPath(out, segments, value)
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") break
    if (!arg.startsWith("--") || arg.length === 2) continue
    const body = arg.slice(2)
    const eq = body.indexOf("=")
    if (eq >= 0) {
      set(body.slice(0, eq), body.slice(eq + 1))
      continue
    }
    const next = args[i + 1]
    if (next !== undefined && !next.startsWith("--")) {
      set(body, next)
      i++
    } else {
      set(body, true)
    }
  }
  return out
}

export const argv = (options?: ArgvOptions): Source => ({
  name: "argv",
  optional: options?.optional ?? false,
  open: Effect.succeed({
    read: Effect.sync(() => applyInterpolation(argvTree(options?.args ?? process.argv.slice(2)), options?.interpolate)),
    changes: Stream.never
  })
})

// ----- file -----

const formatOf = (path: string, option: FileOptions["format"]): "json" | "yaml" =>
  option ?? (nodePath.extname(path).toLowerCase() === ".json" ? "json" : "yaml")

/** Parses file content into a tree; throws a message on malformed input. */
export const parseDocument = (text: string, format: "json" | "yaml"): Tree => {
  if (text.trim() === "") throw new Error("the file is empty")
  const parsed: unknown = format === "json" ? JSON.parse(text) : YAML.parse(text)
  if (!isObject(parsed)) {
    throw new Error(
      `the root must be an object, got ${parsed === null ? "null" : Array.isArray(parsed) ? "an array" : typeof parsed}`
    )
  }
  return toValue(parsed) as Tree
}

export const file = (path: string, options?: FileOptions): Source => {
  const absolute = nodePath.resolve(path)
  const name = `file:${absolute}`
  const format = formatOf(absolute, options?.format)
  const read = Effect.tryPromise({
    try: () => fs.promises.readFile(absolute, "utf8"),
    catch: (cause) =>
      new DynamicConfigError({
        reason: "Unavailable",
        path: "",
        source: name,
        detail: (cause as NodeJS.ErrnoException)?.code === "ENOENT" ? "the file does not exist" : errorMessage(cause),
        cause
      })
  }).pipe(
    Effect.flatMap((text) =>
      Effect.try({
        try: () => applyInterpolation(parseDocument(text, format), options?.interpolate),
        catch: (cause) =>
          new DynamicConfigError({
            reason: "Parse",
            path: "",
            source: name,
            detail: `${format}: ${errorMessage(cause)}`,
            cause
          })
      })
    )
  )
  const open = Effect.gen(function*() {
    if (options?.watch === false) return { read, changes: Stream.never }
    const signals = yield* makeSignals(options?.debounce ?? Duration.millis(50))
    const directory = nodePath.dirname(absolute)
    const base = nodePath.basename(absolute)
    // Watch the directory, not the file: editors and config managers replace the file by renaming a new
    // one over it (a new inode), which a watch on the file itself would miss. `..data` and friends are
    // Kubernetes ConfigMap symlink swaps.
    yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const watcher = fs.watch(directory, { persistent: false }, (_event, filename) => {
            if (filename === null || filename === base || filename.startsWith("..")) {
              signals.offer(Either.right(undefined))
            }
          })
          watcher.on("error", (cause) =>
            signals.offer(Either.left(
              new DynamicConfigError({
                reason: "Unavailable",
                path: "",
                source: name,
                detail: `watch: ${errorMessage(cause)}`,
                cause
              })
            )))
          return watcher
        },
        catch: (cause) =>
          new DynamicConfigError({
            reason: "Unavailable",
            path: "",
            source: name,
            detail: `cannot watch directory ${directory}: ${errorMessage(cause)}`,
            cause
          })
      }),
      (watcher) => Effect.sync(() => watcher.close())
    )
    return { read, changes: signals.changes }
  })
  return { name, optional: options?.optional ?? false, open }
}
