/**
 * Publisher process of the `pubsub` group: publishes the bench `Item` (109 bytes of JSON) to the scenario's
 * subscriber as fast as the flow rule lets it, until SIGTERM. Usage (run by run.ts):
 *
 *   node bench/.build/bench/pubsub/publisher.js <scenario> <json {nats?, inflight, maxLag, subscriber: READY json}>
 *
 * Flow rules (scenarios.ts):
 * - `results` (publishers awaiting each publish): `inflight` fibers, each publishing in a loop (a new
 *   publish starts when one's delivery results are in, or once queued when fire-and-forget), so `inflight`
 *   publishes are always outstanding; scenarios with a fixed count also take one event-loop turn per publish;
 *   for Moleculer, `inflight` loops each awaiting its `emit` (written to the transporter);
 * - `credit` (fire-and-forget, every other scenario): bursts of `burst` publishes, each burst followed by a
 *   turn of the event loop (`setImmediate`), while fewer than `maxLag` events are ahead of the count the
 *   subscriber reports every 5 ms over UDP (subscriber.ts); otherwise it waits for the next report. Without
 *   it a fire-and-forget publisher outruns the subscriber (NATS then drops it as a slow consumer, HTTP and
 *   Moleculer queue without bound).
 *
 * stdout: `READY` once publishing started; on SIGUSR2 `MARK <published> <errors> <first error json>`.
 */
import type * as Layer from "effect/Layer"
import * as dgram from "node:dgram"
import type { Broker } from "../../src/Broker.js"
import { payload } from "../payload.js"
import { pubsubScenarios, topic } from "./scenarios.js"

const [name, configArg] = process.argv.slice(2)
const scenario = pubsubScenarios.find((s) => s.name === name)
if (scenario === undefined) {
  process.stderr.write(`usage: publisher.ts <scenario> <json>\n`)
  process.exit(2)
}
interface Config {
  readonly nats?: string
  readonly inflight: number
  readonly maxLag: number
  readonly burst: number
  readonly subscriber: {
    readonly credit: number
    readonly nodeID?: string
    readonly port?: number
    readonly endpoint?: string
    readonly id?: string
  }
}
const config = JSON.parse(configArg!) as Config

let published = 0
let errors = 0
let firstError: string | undefined
const onError = (error: unknown) => {
  errors++
  firstError ??= String((error as any)?.message ?? error).slice(0, 500)
}

const exit = () => process.exit(0)
process.on("SIGTERM", exit)
process.on("SIGINT", exit)
process.on("SIGUSR2", () => {
  process.stdout.write(`MARK ${published} ${errors} ${JSON.stringify(firstError ?? null)}\n`)
})

// ---------------------------------------------------------------------------------------------
// credit: the subscriber's delivered count, every 5 ms

let delivered = 0
let wakeUp: (() => void) | undefined
const credit = dgram.createSocket("udp4")
credit.on("message", (msg) => {
  delivered = Number(msg.toString())
  const wake = wakeUp
  wakeUp = undefined
  wake?.()
})
await new Promise<void>((resolve) => credit.bind(0, "127.0.0.1", resolve))
const hello = () => credit.send("hello", config.subscriber.credit, "127.0.0.1")
hello()
setInterval(hello, 1000).unref()

const immediate = () => new Promise<void>((resolve) => setImmediate(resolve))
/** Resolves at the next credit report, or after 20 ms (a lost datagram must not stall the publisher). */
const nextReport = () =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      wakeUp = undefined
      resolve()
    }, 20)
    wakeUp = () => {
      clearTimeout(timer)
      resolve()
    }
  })

/** Fire-and-forget driver: `publishBurst(n)` publishes n events synchronously-ish (may return a promise). */
const pump = async (publishOne: () => void | Promise<void>): Promise<never> => {
  process.stdout.write("READY\n")
  for (;;) {
    const room = config.maxLag - (published - delivered)
    if (room <= 0) {
      await nextReport()
      continue
    }
    const n = Math.min(room, config.burst)
    for (let i = 0; i < n; i++) {
      published++
      const result = publishOne()
      if (result !== undefined) result.then(undefined, onError)
    }
    await immediate()
  }
}

/**
 * `results` driver for Promise code: `inflight` publishers, each awaiting its publish, then one turn of the
 * event loop: a service publishing one event per request it handles (without the turn, `await publish()` in
 * a loop never leaves the microtask queue).
 */
const awaitingPublishers = async (publishOne: () => Promise<void>): Promise<void> => {
  process.stdout.write("READY\n")
  await Promise.all(Array.from({ length: scenario.inflight ?? config.inflight }, async () => {
    for (;;) {
      published++
      await publishOne().catch(onError)
      await immediate()
    }
  }))
}

// ---------------------------------------------------------------------------------------------

const moleculer = async (transporter: unknown) => {
  await import("../loopbackOnly.js")
  const { default: moleculer } = await import("moleculer")
  const broker = new moleculer.ServiceBroker({
    nodeID: `bench-pub-${process.pid}`,
    namespace: "bench-pubsub",
    logger: false,
    metrics: { enabled: false },
    tracing: { enabled: false },
    serializer: "JSON",
    transporter: transporter as any
  })
  await broker.start()
  await broker.waitForServices(["bench"], 20_000)
  const emit = () => broker.emit("bench.event", payload) as unknown as Promise<void>
  if (scenario.flow === "credit") return pump(emit)
  // Moleculer resolves an emit once the packet is written to the transporter: it has no delivery result.
  return awaitingPublishers(emit)
}

const moleculerTcp = () =>
  moleculer({
    type: "TCP",
    options: { udpDiscovery: false, urls: `127.0.0.1:${config.subscriber.port}/${config.subscriber.nodeID}` }
  })

/**
 * `inflight` publishers, each POSTing one event and awaiting its `204` (then one event-loop turn), on one
 * undici connection with the requests pipelined: the HTTP exchange an HTTP broker's delivery result costs,
 * with nothing of a broker around it.
 */
const rawHttp = async () => {
  const { default: Undici } = await import("@effect/platform-node/Undici")
  const inflight = scenario.inflight ?? config.inflight
  const dispatcher = new Undici.Agent({ connections: 1, pipelining: inflight })
  const url = config.subscriber.endpoint!
  const headers = { "content-type": "application/json" }
  const publishOne = async () => {
    const response = await Undici.request(url, {
      method: "POST",
      headers,
      body: JSON.stringify(payload),
      dispatcher,
      idempotent: true
    })
    await response.body.dump()
    if (response.statusCode !== 204) throw new Error(`status ${response.statusCode}`)
  }
  return awaitingPublishers(publishOne)
}

const effectMicro = async (kind: "http" | "http-ff" | "nats") => {
  const Effect = await import("effect/Effect")
  const Layer = await import("effect/Layer")
  const Topic = await import("../../src/Topic.js")
  const { Item } = await import("../contract.js")
  const ItemTopic = Topic.make(topic, Item)
  let broker: Layer.Layer<Broker>
  if (kind === "nats") {
    const NatsBroker = await import("../../src/plugins/nats/NatsBroker.js")
    broker = NatsBroker.layer({ servers: config.nats! }).pipe(Layer.orDie)
  } else {
    const HttpBroker = await import("../../src/HttpBroker.js")
    const Registry = await import("../../src/Registry.js")
    const CachedRegistry = await import("../../src/CachedRegistry.js")
    // The subscriber's node, as it registered it, pre-filled in a memory registry behind the cached registry
    // (what a publisher normally uses); mdns would only add the discovery round trips before the first publish.
    const url = new URL(config.subscriber.endpoint!)
    const node = {
      id: config.subscriber.id!,
      address: url.host,
      metadata: { broker: "http", topic, path: url.pathname }
    }
    const registry = Layer.effectDiscard(
      Effect.flatMap(
        Registry.Registry,
        (registry) =>
          registry.register({ name: `micro.broker.${topic}`, version: "1", metadata: {}, endpoints: [], nodes: [node] })
      )
    ).pipe(Layer.provideMerge(Registry.layerMemory))
    broker = HttpBroker.layer().pipe(Layer.provide(CachedRegistry.layer()), Layer.provide(registry), Layer.orDie)
  }
  const fireAndForget = kind !== "http"
  const publishOne = Topic.publish(ItemTopic, payload, { fireAndForget }).pipe(
    Effect.catchAllCause((cause) => Effect.sync(() => onError(cause)))
  )
  const program = Effect.gen(function*() {
    if (scenario.flow === "results") {
      const step = Effect.zipRight(Effect.sync(() => published++), publishOne)
      // Fixed publisher counts model a service publishing once per request it handles: one publish per
      // turn of the event loop per publisher (as the Moleculer references do).
      const loop = Effect.forever(
        scenario.inflight === undefined ? step : Effect.zipRight(step, Effect.promise(immediate))
      )
      yield* Effect.sync(() => process.stdout.write("READY\n"))
      yield* Effect.forEach(Array.from({ length: scenario.inflight ?? config.inflight }), () => loop, {
        concurrency: "unbounded",
        discard: true
      })
      return
    }
    // Same credit rule as `pump`, written as an Effect loop (what user code would do).
    yield* Effect.sync(() => process.stdout.write("READY\n"))
    for (;;) {
      const room = config.maxLag - (published - delivered)
      if (room <= 0) {
        yield* Effect.promise(nextReport)
        continue
      }
      const n = Math.min(room, config.burst)
      for (let i = 0; i < n; i++) {
        published++
        yield* publishOne
      }
      yield* Effect.promise(immediate)
    }
  })
  Effect.runFork(program.pipe(Effect.provide(broker))).addObserver((exit) => {
    process.stderr.write(`publisher ended: ${JSON.stringify(exit)}\n`)
    process.exit(1)
  })
}

const setups: Record<string, () => Promise<unknown>> = {
  "raw-nats": async () => {
    const { connect } = await import("@nats-io/transport-node")
    const nc = await connect({ servers: config.nats! })
    const encoder = new TextEncoder()
    return pump(() => nc.publish(topic, encoder.encode(JSON.stringify(payload))))
  },
  "moleculer-tcp": () => moleculerTcp(),
  "moleculer-tcp-64": () => moleculerTcp(),
  "moleculer-tcp-1": () => moleculerTcp(),
  "moleculer-nats": () => moleculer(`nats://${config.nats}`),
  "raw-http-64": () => rawHttp(),
  "raw-http-1": () => rawHttp(),
  "effect-micro-http": () => effectMicro("http"),
  "effect-micro-http-64": () => effectMicro("http"),
  "effect-micro-http-1": () => effectMicro("http"),
  "effect-micro-http-ff": () => effectMicro("http-ff"),
  "effect-micro-http-ff-1": () => effectMicro("http-ff"),
  "effect-micro-nats": () => effectMicro("nats")
}

setups[scenario.name]!().catch((error) => {
  process.stderr.write(`publisher failed: ${error?.stack ?? error}\n`)
  process.exit(1)
})
