/**
 * An etcd config source for `DynamicConfig`: every key under a prefix, hot-reloaded with an etcd watch.
 * A separate entry point, so the core never loads `etcd3`.
 *
 * Key `PREFIX/db/host` sets `db.host`; `/` (and `.`) separate segments. A value that is JSON is decoded
 * (`{"host":"x"}`, `5432`, `true`); any other value is taken as a plain string (`localhost`), except that a
 * value starting with `{` or `[` must be valid JSON (else the reload fails with a `Parse` error and the
 * last good tree stays). A value under the bare prefix key must be a JSON object: it is merged at the root.
 *
 * ```ts
 * DynamicConfig.layer([DynamicConfig.file("config.yaml"), EtcdConfigSource.make({ hosts: "127.0.0.1:2379", prefix: "/config/app/" })])
 * ```
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { Etcd3 } from "etcd3"
import type { IOptions } from "etcd3"
import type { Source, SourceOptions } from "../../DynamicConfig.js"
import { DynamicConfigError } from "../../DynamicConfig.js"
import { errorMessage } from "../../internal/common/text.js"
import { makeSignals } from "../../internal/config/signals.js"
import { applyInterpolation } from "../../internal/config/sources.js"
import type { Tree, Value } from "../../internal/config/tree.js"
import { isObject, setPath, toValue } from "../../internal/config/tree.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface EtcdSourceOptions extends SourceOptions {
  /** Keys under this prefix (e.g. `/config/app/`); a missing trailing `/` is added. */
  readonly prefix: string
  /** etcd endpoints (`127.0.0.1:2379` or `http://…`); ignored when `client` is given. Default: `127.0.0.1:2379`. */
  readonly hosts?: string | ReadonlyArray<string> | undefined
  /**
   * An existing client (not closed by the source; its own fault handling applies). Default: a client of its
   * own for `hosts`, closed with the source.
   */
  readonly client?: Etcd3 | undefined
  /** Timeout of one read of the prefix. Default: 3 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Watch events within this window make one reload. Default: 20 millis. */
  readonly debounce?: Duration.DurationInput | undefined
}

type FaultHandling = NonNullable<IOptions["faultHandling"]>

/** Watch reconnection delays: 100 ms doubling up to 2 s (etcd3's default grows to 30 s). */
const reconnectBackoff = (duration = 100): NonNullable<FaultHandling["watchBackoff"]> => ({
  duration,
  next: () => reconnectBackoff(Math.min(duration * 2, 2_000))
})

/**
 * No per-host circuit breaker: etcd3's default one refuses every call for 5 s after three failures, which
 * would delay the re-read after etcd comes back; our reads are already bounded by `timeout`.
 */
const passThrough = {
  execute: (fn: (context: { signal: AbortSignal }) => unknown) =>
    Promise.resolve().then(() => fn({ signal: new AbortController().signal }))
} as unknown as ReturnType<NonNullable<FaultHandling["host"]>>

const normalizeHost = (host: string): string => /^https?:\/\//.test(host) ? host : `http://${host}`

/**
 * Builds the tree from the key/value pairs under `prefix`; throws on a malformed value.
 * @since 0.1.0
 * @category internals
 */
export const treeFromKeys = (prefix: string, entries: Readonly<Record<string, string>>): Tree => {
  const out: Record<string, Value> = {}
  // Sorted: shorter keys first, so `PREFIX/db` = {...} is merged before `PREFIX/db/host` refines it.
  for (const key of Object.keys(entries).sort()) {
    const raw = entries[key]!
    const segments = key.slice(prefix.length).split(/[/.]/).filter((s) => s !== "")
    let value: Value
    const trimmed = raw.trim()
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        value = toValue(JSON.parse(raw))
      } catch (cause) {
        throw new Error(`key ${key}: invalid JSON: ${errorMessage(cause)}`)
      }
    } else {
      try {
        value = toValue(JSON.parse(raw))
      } catch {
        value = raw
      }
    }
    if (segments.length === 0 && !isObject(value)) throw new Error(`key ${key}: the prefix key must hold a JSON object`)
    setPath(out, segments, value)
  }
  return out
}

/**
 * A `DynamicConfig` source reading every key under `prefix`, reloaded on etcd watch events and after the
 * watch reconnects. etcd down at start: the source fails the config unless `optional`; down mid-run: the
 * disconnection is reported to `errors` and the last good values stay.
 * @since 0.1.0
 * @category sources
 */
export const make = (options: EtcdSourceOptions): Source => {
  const prefix = options.prefix.endsWith("/") ? options.prefix : `${options.prefix}/`
  const name = `etcd:${prefix}`
  const timeout = Duration.decode(options.timeout ?? Duration.seconds(3))
  const unavailable = (detail: string, cause?: unknown) =>
    new DynamicConfigError({ reason: "Unavailable", path: "", source: name, detail, cause })

  const open = Effect.gen(function*() {
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() => {
        const hosts = options.hosts === undefined
          ? ["http://127.0.0.1:2379"]
          : (typeof options.hosts === "string" ? [options.hosts] : [...options.hosts]).map(normalizeHost)
        const deadline = Duration.toMillis(timeout)
        return new Etcd3({
          hosts,
          dialTimeout: deadline,
          // Unary calls (the prefix read) get a deadline; watch streams run until cancelled.
          defaultCallOptions: (context) => context.isStream ? {} : { deadline: Date.now() + deadline },
          faultHandling: { host: () => passThrough, watchBackoff: reconnectBackoff() }
        })
      }),
      (client) => Effect.sync(() => client.close())
    ))

    const read = Effect.tryPromise({
      try: () => client.getAll().prefix(prefix).strings(),
      catch: (cause) => unavailable(`read: ${errorMessage(cause)}`, cause)
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () => unavailable(`read timed out after ${Duration.format(timeout)}`)
      }),
      Effect.flatMap((entries) =>
        Effect.try({
          try: () => applyInterpolation(treeFromKeys(prefix, entries), options.interpolate),
          catch: (cause) =>
            new DynamicConfigError({ reason: "Parse", path: "", source: name, detail: errorMessage(cause), cause })
        })
      )
    )

    const signals = yield* makeSignals(options.debounce ?? Duration.millis(20))
    // `watcher()` attaches without waiting for etcd (`create()` would wait forever when etcd is down); the
    // watch manager reconnects with backoff by itself.
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = client.watch().prefix(prefix).watcher()
        watcher.on("data", () => signals.offer(Either.right(undefined)))
        // On every (re)connection, events may have been missed (or the first read failed because etcd was
        // down): re-read the whole prefix. An unchanged tree publishes nothing.
        watcher.on("connected", () => signals.offer(Either.right(undefined)))
        watcher.on(
          "disconnected",
          (cause) => signals.offer(Either.left(unavailable(`watch disconnected: ${errorMessage(cause)}`, cause)))
        )
        watcher.on(
          "error",
          (cause) => signals.offer(Either.left(unavailable(`watch failed: ${errorMessage(cause)}`, cause)))
        )
        return watcher
      }),
      (watcher) =>
        Effect.promise(() => watcher.cancel().catch(() => undefined)).pipe(
          Effect.timeout(Duration.seconds(1)),
          Effect.ignore
        )
    )
    return { read, changes: signals.changes }
  })

  return { name, optional: options.optional ?? false, open }
}
