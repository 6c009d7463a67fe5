/**
 * A `Registry` on etcd v3 (`etcd3` client; the core never imports it, only this entry point does).
 *
 * Layout: one key per node, `<prefix><service>/<node id>` (default prefix `/micro/registry/`, go-micro's),
 * whose value is the JSON of the service with that single node. `/` inside names becomes `-`.
 * Each registration holds a lease with its TTL; registering again renews it (the Server re-registers
 * on an interval), so a process that dies disappears when its lease expires. `watch` is an etcd watch on
 * the prefix. etcd failures (down, timeout) are `RegistryError("Unavailable")`, bounded by `timeout`.
 *
 *   etcdctl get --prefix /micro/registry/
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type IOptions, type Lease } from "etcd3"
import { ServiceNotFound } from "../../Errors.js"
import { didYouMean, errorMessage } from "../../internal/common/text.js"
import { matchesWatch, RegistryView } from "../../internal/registry/view.js"
import type { Event, Service } from "../../Registry.js"
import { Registry, RegistryError } from "../../Registry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface EtcdRegistryOptions {
  /** etcd endpoints, `host:port` or `http(s)://host:port`. */
  readonly hosts: string | ReadonlyArray<string>
  /** Key prefix. Default `/micro/registry/`. */
  readonly prefix?: string | undefined
  /** TTL of registrations made without one. Default 90 s. */
  readonly ttl?: Duration.DurationInput | undefined
  /** Deadline of every etcd call (and of connecting). Default 5 s. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Username/password auth. Default: none. */
  readonly auth?: { readonly username: string; readonly password: string } | undefined
  /** Anything else for the `etcd3` client (TLS credentials, grpc options, fault handling). Default: none. */
  readonly client?: Partial<IOptions> | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "/micro/registry/"

const StringRecord = Schema.Record({ key: Schema.String, value: Schema.String })
const ServiceSchema = Schema.Struct({
  name: Schema.String,
  version: Schema.String,
  metadata: StringRecord,
  endpoints: Schema.Array(Schema.Struct({ name: Schema.String, metadata: StringRecord })),
  nodes: Schema.Array(Schema.Struct({ id: Schema.String, address: Schema.String, metadata: StringRecord }))
})
const decodeService = Schema.decodeUnknownEither(Schema.parseJson(ServiceSchema))

const segment = (s: string) => s.replace(/\//g, "-")

/** Merges single-node values into one entry per (name, version). */
const group = (values: ReadonlyArray<Service>): Array<Service> => {
  const byKey = new Map<string, Service>()
  for (const service of values) {
    const k = `${service.name}\u0000${service.version}`
    const existing = byKey.get(k)
    byKey.set(k, existing === undefined ? service : { ...existing, nodes: [...existing.nodes, ...service.nodes] })
  }
  return [...byKey.values()]
}

interface Held {
  readonly lease: Lease
  readonly ttlSeconds: number
  value: string
}

/**
 * Connects to etcd and returns the registry; leases held by this instance are revoked when the scope closes.
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: EtcdRegistryOptions): Effect.Effect<Registry.Service, RegistryError, Scope.Scope> =>
  Effect.gen(function*() {
    const prefix = options.prefix ?? defaultPrefix
    const hosts = (typeof options.hosts === "string" ? [options.hosts] : [...options.hosts])
      .map((h) => (/^https?:\/\//.test(h) ? h : `http://${h}`))
    const timeoutMillis = Duration.toMillis(Duration.decode(options.timeout ?? "5 seconds"))
    const defaultTtlMillis = Duration.toMillis(Duration.decode(options.ttl ?? "90 seconds"))
    const where = `etcd ${hosts.join(",")}`

    const clientOptions: IOptions = {
      ...options.client,
      hosts,
      dialTimeout: timeoutMillis,
      // Every unary call carries a deadline, so a dead etcd yields an error instead of a hang.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeoutMillis })
    }
    if (options.auth !== undefined) clientOptions.auth = { ...options.auth }
    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () => new Etcd3(clientOptions),
        catch: (cause) =>
          new RegistryError({ reason: "Unavailable", detail: `cannot create etcd client (${where})`, cause })
      }),
      (client) => Effect.sync(() => client.close())
    )

    /** Runs one etcd call; any failure or overrun is RegistryError("Unavailable"). */
    const call = <A>(what: string, run: () => Promise<A>) =>
      Effect.tryPromise({
        try: run,
        catch: (cause) =>
          new RegistryError({
            reason: "Unavailable",
            detail: `${what} failed (${where}): ${errorMessage(cause)}`,
            cause
          })
      }).pipe(
        // etcd3 retries recoverable errors itself; this bounds the whole thing
        Effect.timeoutFail({
          duration: Duration.millis(timeoutMillis * 2),
          onTimeout: () =>
            new RegistryError({
              reason: "Unavailable",
              detail: `${what} timed out after ${timeoutMillis * 2} ms (${where})`
            })
        })
      )

    const held = new Map<string, Held>()
    const nodeKey = (name: string, nodeId: string) => `${prefix}${segment(name)}/${segment(nodeId)}`

    // Graceful stop: revoke our leases so our nodes go at once rather than at TTL expiry.
    yield* Effect.addFinalizer(() =>
      Effect.forEach([...held.values()], (h) => call("revoke lease", () => h.lease.revoke()).pipe(Effect.ignore), {
        concurrency: "unbounded",
        discard: true
      }).pipe(
        Effect.zipRight(Effect.sync(() => held.clear())),
        Effect.timeout(Duration.millis(timeoutMillis)),
        Effect.ignore
      )
    )

    const grant = (key: string, ttlSeconds: number, value: string) =>
      Effect.gen(function*() {
        const lease = client.lease(ttlSeconds, { autoKeepAlive: false })
        lease.on("lost", () => {}) // renewal is explicit (register); a lost lease is re-granted there
        yield* call("grant lease", () => lease.grant()).pipe(
          Effect.tapError(() =>
            Effect.promise(() => lease.revoke().catch(() => {})).pipe(Effect.timeout("1 second"), Effect.ignore)
          )
        )
        yield* call(`put ${key}`, () => lease.put(key).value(value).exec())
        const previous = held.get(key)
        held.set(key, { lease, ttlSeconds, value })
        if (previous !== undefined) yield* call("revoke old lease", () => previous.lease.revoke()).pipe(Effect.ignore)
      })

    const renew = (key: string, h: Held, value: string) =>
      call("renew lease", () => h.lease.keepaliveOnce()).pipe(
        Effect.flatMap((response) =>
          // an expired lease answers with TTL ≤ 0 (or an EtcdLeaseInvalidError): grant a new one
          Number(response.TTL) <= 0 ? Effect.fail("expired" as const) : Effect.succeed(response)
        ),
        Effect.flatMap(() =>
          h.value === value ? Effect.void : call(`put ${key}`, () => h.lease.put(key).value(value).exec()).pipe(
            Effect.tap(() =>
              Effect.sync(() => {
                h.value = value
              })
            )
          )
        ),
        Effect.catchAll((error) =>
          error === "expired" || (error.cause instanceof EtcdLeaseInvalidError) || h.lease.revoked()
            ? grant(key, h.ttlSeconds, value)
            : Effect.fail(error)
        )
      )

    const register: Registry.Service["register"] = (service, registerOptions) =>
      Effect.gen(function*() {
        const ttlMillis = registerOptions?.ttl === undefined
          ? defaultTtlMillis
          : Duration.toMillis(Duration.decode(registerOptions.ttl))
        if (service.name === "" || !(ttlMillis > 0)) {
          return yield* Effect.fail(
            new RegistryError({
              reason: "Malformed",
              detail: `cannot register "${service.name}" with TTL ${ttlMillis} ms`
            })
          )
        }
        const ttlSeconds = Math.max(1, Math.ceil(ttlMillis / 1000))
        yield* Effect.forEach(service.nodes, (node) => {
          const key = nodeKey(service.name, node.id)
          const value = JSON.stringify({ ...service, nodes: [node] })
          const h = held.get(key)
          return h !== undefined && h.ttlSeconds === ttlSeconds ? renew(key, h, value) : grant(key, ttlSeconds, value)
        }, { discard: true })
      })

    const deregister: Registry.Service["deregister"] = (service) =>
      Effect.forEach(service.nodes, (node) => {
        const key = nodeKey(service.name, node.id)
        const h = held.get(key)
        held.delete(key)
        return call(`delete ${key}`, () => client.delete().key(key).exec()).pipe(
          Effect.zipRight(
            h === undefined ? Effect.void : call("revoke lease", () => h.lease.revoke()).pipe(Effect.ignore)
          )
        )
      }, { discard: true })

    const parse = (kv: IKeyValue) => decodeService(kv.value.toString("utf8"))

    const read = (keyPrefix: string) =>
      call(`get ${keyPrefix}`, () => client.getAll().prefix(keyPrefix).exec()).pipe(
        Effect.flatMap((response) => {
          const services: Array<Service> = []
          const malformed: Array<string> = []
          for (const kv of response.kvs) {
            const decoded = parse(kv)
            if (Either.isRight(decoded)) services.push(decoded.right)
            else malformed.push(kv.key.toString())
          }
          return Effect.as(
            malformed.length > 0
              ? Effect.logWarning("etcd registry: skipped malformed values", malformed)
              : Effect.void,
            { services, response }
          )
        })
      )

    const getService: Registry.Service["getService"] = (name) =>
      read(`${prefix}${segment(name)}/`).pipe(
        Effect.flatMap(({ services }) => {
          const found = group(services.filter((s) => s.name === name && s.nodes.length > 0))
          if (found.length > 0) return Effect.succeed(found)
          const notFound = (known: ReadonlyArray<string>) =>
            Effect.fail(ServiceNotFound.of(
              `service "${name}" is not registered in etcd (${where}, prefix ${prefix})${didYouMean(name, known)}`
            ))
          // The names etcd does know, for a suggestion; a failed listing only loses the suggestion.
          return read(prefix).pipe(
            Effect.matchEffect({
              onFailure: () => notFound([]),
              onSuccess: ({ services: all }) => notFound(all.map((s) => s.name))
            })
          )
        })
      )

    const listServices: Registry.Service["listServices"] = read(prefix).pipe(
      Effect.map(({ services }) => group(services.filter((s) => s.nodes.length > 0)))
    )

    const watch: Registry.Service["watch"] = (watchOptions) =>
      Stream.unwrapScoped(Effect.gen(function*() {
        const keyPrefix = watchOptions?.service === undefined ? prefix : `${prefix}${segment(watchOptions.service)}/`
        // Load the current state, then watch from the next revision: no gap, no replay of old state.
        const { response, services } = yield* read(keyPrefix)
        const view = new RegistryView()
        const byKey = new Map<string, Service>()
        response.kvs.forEach((kv) => {
          const decoded = parse(kv)
          if (Either.isRight(decoded)) byKey.set(kv.key.toString(), decoded.right)
        })
        for (const service of services) view.upsert(service, Number.POSITIVE_INFINITY)
        const mailbox = yield* Mailbox.make<Event, RegistryError>()
        const emit = (event: Event | undefined) => {
          if (event !== undefined && matchesWatch(watchOptions)(event)) mailbox.unsafeOffer(event)
        }
        const stable = (service: Service): Service => {
          const previous = view.get(service.name, 0).find((s) => s.version === service.version)
          if (previous === undefined) return service
          return {
            ...service,
            metadata: JSON.stringify(previous.metadata) === JSON.stringify(service.metadata)
              ? previous.metadata
              : service.metadata,
            endpoints: JSON.stringify(previous.endpoints) === JSON.stringify(service.endpoints)
              ? previous.endpoints
              : service.endpoints
          }
        }
        const watcher = client.watch().prefix(keyPrefix).startRevision(String(Number(response.header.revision) + 1))
          .watcher()
        yield* Effect.addFinalizer(() => call("cancel watch", () => watcher.cancel()).pipe(Effect.ignore))
        watcher.on("put", (kv) => {
          const key = kv.key.toString()
          const decoded = parse(kv)
          if (Either.isLeft(decoded)) return
          const service = decoded.right
          const before = byKey.get(key)
          byKey.set(key, service)
          if (before !== undefined && (before.name !== service.name || before.version !== service.version)) {
            emit(view.remove(before))
          }
          emit(view.upsert(stable(service), Number.POSITIVE_INFINITY))
        })
        watcher.on("delete", (kv) => {
          const key = kv.key.toString()
          const before = byKey.get(key)
          byKey.delete(key)
          if (before !== undefined) emit(view.remove(before))
        })
        watcher.on("error", (cause) => {
          mailbox.unsafeDone(
            Exit.fail(
              new RegistryError({
                reason: "Unavailable",
                detail: `etcd watch failed (${where}): ${cause.message}`,
                cause
              })
            )
          )
        })
        return Mailbox.toStream(mailbox)
      }))

    return Registry.of({ register, deregister, getService, listServices, watch })
  })

/**
 * The etcd `Registry` layer.
 * @example
 * import * as EtcdRegistry from "effect-micro/plugins/etcd/EtcdRegistry"
 *
 * export const registry = EtcdRegistry.layer({ hosts: "127.0.0.1:2379" })
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: EtcdRegistryOptions): Layer.Layer<Registry, RegistryError> =>
  Layer.scoped(Registry, make(options))

/**
 * `layer` with its options read from `Config`, e.g. `EtcdRegistry.layerConfig({ hosts: Config.array(Config.string(), "ETCD_HOSTS") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<EtcdRegistryOptions>
): Layer.Layer<Registry, RegistryError | ConfigError.ConfigError> =>
  Layer.scoped(Registry, Effect.flatMap(Config.unwrap(config), make))
