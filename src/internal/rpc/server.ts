import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import { Codecs } from "../../Codec.js"
import { schemasOf } from "../../Contract.js"
import * as Debug from "../../Debug.js"
import type { Health, Stats, Status } from "../../Debug.js"
import type { TransportError } from "../../Errors.js"
import { currentCallRef } from "../../Metadata.js"
import type { RegistryError, Service as RegisteredService } from "../../Registry.js"
import { Registry } from "../../Registry.js"
import type { ServerInfo, ServerOptions } from "../../Server.js"
import { ServerMiddleware } from "../../Server.js"
import { Transport } from "../../Transport.js"
import { brokerCounters } from "../broker/counters.js"
import { randomId } from "../common/text.js"
import { describe, describeEndpoint } from "../debug/describe.js"
import { listen as listenProbe, type Probed } from "../debug/http.js"
import { CallMetrics } from "../debug/metrics.js"
import * as processStats from "../debug/process.js"
import { TopicDirectory } from "../debug/topics.js"
import { registryCounters } from "../registry/counters.js"
import { keepRegistered, registrationDefaults } from "../registry/registration.js"
import { advertisedAddress } from "../transport/address.js"
import { DeadlineWheel } from "./deadlines.js"
import { EndpointCodecs } from "./endpoint.js"
import { HandlerPool } from "./handlerPool.js"
import { NATIVE_PROTOCOL } from "./protocols.js"
import type { ConnectionLimits, Route, ServerShared } from "./serverConnection.js"
import { ServerConnection } from "./serverConnection.js"
import { ConnectionStats, DURATION_BUCKETS_MS, EndpointStats } from "./serverStats.js"
import { DEFAULT_MAX_FRAME_SIZE } from "./wire.js"

export const defaults = {
  version: "latest",
  address: "0.0.0.0:0",
  registerTtl: registrationDefaults.ttl,
  registerInterval: registrationDefaults.interval,
  drainTimeout: Duration.seconds(10),
  maxConnections: 10_000,
  maxConcurrentStreams: 1_000,
  maxWindow: 1_024,
  handshakeTimeout: Duration.seconds(5),
  frameTimeout: Duration.seconds(30),
  idleTimeout: Duration.minutes(5),
  streamIdleTimeout: Duration.seconds(60),
  writeBufferHighWater: 1024 * 1024,
  goAwayGrace: Duration.seconds(2)
} as const

const millis = (input: Duration.DurationInput | undefined, fallback: Duration.DurationInput): number =>
  Duration.toMillis(Duration.decode(input ?? fallback))

const HEALTH = "Debug.Health"
const STATS = "Debug.Stats"
const DESCRIBE = "Debug.Describe"
const builtIn = (name: string) => name === HEALTH || name === STATS || name === DESCRIBE

const makeRoute = (rpc: Rpc.AnyWithProps, handler: Route["handler"], runtime: Runtime.Runtime<never>): Route => {
  const schemas = schemasOf(rpc)
  return {
    name: rpc._tag,
    stats: new EndpointStats(rpc._tag),
    schemas,
    codecs: new EndpointCodecs(schemas),
    handler,
    pool: new HandlerPool(runtime, currentCallRef)
  }
}

/** An endpoint's counters as `Debug.Stats` reports them (cumulative histogram). */
const snapshotEndpoint = (stats: EndpointStats): Debug.EndpointStats => {
  const durationCounts: Array<number> = []
  let total = 0
  for (const count of stats.durationCounts) durationCounts.push(total += count)
  return {
    endpoint: stats.endpoint,
    started: stats.started,
    succeeded: stats.succeeded,
    failed: stats.failed,
    cancelled: stats.cancelled,
    failedByCode: stats.failedByCode === undefined ? {} : Object.fromEntries(stats.failedByCode),
    inFlight: stats.inFlight,
    durationBucketsMillis: DURATION_BUCKETS_MS,
    durationCounts,
    durationSumMillis: stats.durationSumMillis
  }
}

const connectionLimits = (options: ServerOptions): ConnectionLimits => {
  const limits = options.limits ?? {}
  return {
    maxFrameSize: options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    maxConcurrentStreams: limits.maxConcurrentStreams ?? defaults.maxConcurrentStreams,
    maxWindow: limits.maxWindow ?? defaults.maxWindow,
    handshakeTimeoutMillis: millis(limits.handshakeTimeout, defaults.handshakeTimeout),
    frameTimeoutMillis: millis(limits.frameTimeout, defaults.frameTimeout),
    idleTimeoutMillis: millis(limits.idleTimeout, defaults.idleTimeout),
    streamIdleTimeoutMillis: millis(limits.streamIdleTimeout, defaults.streamIdleTimeout),
    writeHighWater: limits.writeBufferHighWater ?? defaults.writeBufferHighWater,
    goAwayGraceMillis: millis(limits.goAwayGrace, defaults.goAwayGrace)
  }
}

export const make = <Rpcs extends Rpc.Any>(
  group: RpcGroup.RpcGroup<Rpcs>,
  options: ServerOptions
): Effect.Effect<
  ServerInfo,
  TransportError | RegistryError,
  Scope.Scope | Transport | Registry | Codecs | Rpc.ToHandler<Rpcs>
> =>
  Effect.gen(function*() {
    const transport = yield* Transport
    const registry = yield* Registry
    const codecs = yield* Codecs
    const wrappers = yield* ServerMiddleware
    const runtime = yield* Effect.runtime<never>()

    const routes = new Map<string, Route>()
    let status: Status = "not-ready"
    for (const rpc of group.requests.values() as Iterable<Rpc.AnyWithProps>) {
      const entry = runtime.context.unsafeMap.get(rpc.key) as Rpc.Handler<string> | undefined
      if (entry === undefined) return yield* Effect.dieMessage(`no handler for endpoint "${rpc._tag}"`)
      // One runtime per endpoint, built once: the handler's own context over the server's.
      const endpointRuntime = Runtime.make({
        context: Context.merge(runtime.context, entry.context),
        fiberRefs: runtime.fiberRefs,
        runtimeFlags: runtime.runtimeFlags
      })
      routes.set(rpc._tag, makeRoute(rpc, entry.handler, endpointRuntime))
    }
    if (yield* Debug.Metrics) {
      for (const route of routes.values()) route.stats.metrics = new CallMetrics("server", options.name, route.name)
    }
    for (const name of routes.keys()) {
      if (builtIn(name)) return yield* Effect.dieMessage(`the endpoint name "${name}" is built in; rename yours`)
    }
    const description = describe(
      options.name,
      options.version ?? defaults.version,
      [...routes.values()].map((route) => describeEndpoint(route.name, route.schemas))
    )

    const deadlines = new DeadlineWheel(yield* Effect.clock)
    yield* Effect.forkScoped(deadlines.run)

    const reportDefect = Runtime.runFork(runtime)
    const connectionStats = new ConnectionStats()
    const shared: ServerShared = {
      service: options.name,
      routes,
      codecs,
      wrappers,
      limits: connectionLimits(options),
      draining: false,
      nextClientId: 1,
      deadlines,
      connectionStats,
      reportDefect: (message, defect) => {
        reportDefect(Effect.logError(`${options.name}: ${message}`, Cause.die(defect)))
      }
    }
    // The probe port opens first and closes last (after the drain below): `/ready` says 503 for the whole
    // stop, `/health` answers to the end.
    const probed: { current: Probed | undefined } = { current: undefined }
    const probe = options.http === undefined ? undefined : yield* listenProbe(options.http, () => probed.current)
    const maxConnections = options.limits?.maxConnections ?? defaults.maxConnections
    const connections = new Set<ServerConnection>()
    let allClosed: Deferred.Deferred<void> | undefined
    const drainTimeout = Duration.decode(options.drainTimeout ?? defaults.drainTimeout)

    // Graceful stop, registered before listening so it always runs: stop accepting (the listener's own
    // finalizer, which runs first), GOAWAY every connection, wait until each has been acknowledged and
    // its calls are done (it then closes itself), at most `drainTimeout`; then stop what is left.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        status = "draining"
        shared.draining = true
        if (connections.size > 0) {
          const closed = yield* Deferred.make<void>()
          allClosed = closed
          for (const connection of connections) connection.goAway()
          // Finalizers are uninterruptible: the wait must be made interruptible for the timeout to apply.
          yield* Effect.interruptible(Deferred.await(closed)).pipe(Effect.timeoutOption(drainTimeout))
        }
        for (const connection of connections) connection.close()
        connections.clear()
        // Idle handler fibers end now; busy ones (interrupted by `close` above) after their call.
        for (const route of routes.values()) route.pool.close()
      })
    )

    const listener = yield* transport.listen(options.address ?? defaults.address, (connection) => {
      const serverConnection = new ServerConnection(shared, connection, connections.size >= maxConnections)
      connections.add(serverConnection)
      connection.onClose(() => {
        connections.delete(serverConnection)
        if (connections.size === 0 && allClosed !== undefined) Deferred.unsafeDone(allClosed, Effect.void)
      })
    })

    yield* processStats.acquire
    const startedAt = Date.now()
    const address = advertisedAddress(listener.address, options.advertise)
    const node = {
      id: options.id ?? `${options.name}-${randomId()}`,
      address,
      metadata: {
        transport: transport.name,
        protocol: NATIVE_PROTOCOL,
        describe: description.digest,
        ...options.metadata
      }
    }
    const service: RegisteredService = {
      name: options.name,
      version: options.version ?? defaults.version,
      metadata: options.metadata ?? {},
      // The built-in Debug endpoints are answered by every server: not listed.
      endpoints: [...routes.values()].map((route) => ({
        name: route.name,
        metadata: { shape: route.schemas.shape, ...(route.schemas.idempotent ? { idempotent: "true" } : {}) }
      })),
      nodes: [node]
    }

    const health = Effect.sync((): Health => ({
      status,
      service: options.name,
      version: service.version,
      node: node.id,
      address,
      uptimeMillis: Date.now() - startedAt
    }))
    const stats = Effect.sync((): Stats => ({
      service: options.name,
      node: node.id,
      uptimeMillis: Date.now() - startedAt,
      endpoints: [...routes.values()].filter((route) => !builtIn(route.name)).map((route) =>
        snapshotEndpoint(route.stats)
      ),
      connections: { open: connectionStats.open, accepted: connectionStats.accepted, refused: connectionStats.refused },
      bytes: { received: connectionStats.bytesIn, sent: connectionStats.bytesOut },
      broker: { ...brokerCounters },
      registry: { ...registryCounters },
      ...processStats.snapshot()
    }))
    probed.current = { health, stats }
    const topics = yield* TopicDirectory
    const describeNow = Effect.sync(() => ({ ...description, topics: topics.list() }))
    for (const rpc of Debug.Contract.requests.values() as Iterable<Rpc.AnyWithProps>) {
      const answer = rpc._tag === HEALTH ? health : rpc._tag === STATS ? stats : describeNow
      routes.set(rpc._tag, makeRoute(rpc, () => answer, runtime))
    }

    if (options.register !== false) {
      // Registered last, so it runs first on shutdown: clients stop picking this node before it drains.
      yield* keepRegistered(registry, service, {
        ttl: options.registerTtl,
        interval: options.registerInterval,
        label: options.name,
        // Not ready from the moment clients are told to stop picking this node.
        onDeregister: Effect.sync(() => {
          status = "draining"
        })
      })
    }

    if (status === "not-ready") status = "serving"
    return {
      address,
      listenAddress: listener.address,
      httpAddress: probe?.address,
      node,
      service,
      health,
      stats
    } satisfies ServerInfo
  })
