/**
 * Subscriber process of the `pubsub` group: subscribes with the scenario's library and counts delivered
 * events. Usage (run by run.ts):
 *
 *   node bench/.build/bench/pubsub/subscriber.js <scenario> <json {nats?}>
 *
 * stdout: `READY <json>` (what the publisher needs: endpoint node, port, ...; plus `credit`, the UDP port of
 * the flow-control channel), then on every SIGUSR2 `MARK <delivered> <ms>` (count and `performance.now()`
 * read together, so the rate uses the subscriber's own clock). Flow control for fire-and-forget publishers:
 * a publisher sends any datagram to the `credit` port and from then on receives the delivered count every
 * 5 ms, so it can stay at most `maxLag` events ahead (the same rule for every library, see publisher.ts).
 * SIGTERM/SIGINT: `process.exit(0)` (so `--cpu-prof` writes its file).
 */
import * as dgram from "node:dgram"
import { performance } from "node:perf_hooks"
import { pubsubScenarios, topic } from "./scenarios.js"

const [name, configArg] = process.argv.slice(2)
const scenario = pubsubScenarios.find((s) => s.name === name)
if (scenario === undefined) {
  process.stderr.write(`usage: subscriber.ts <scenario> <json>\n`)
  process.exit(2)
}
const config = JSON.parse(configArg ?? "{}") as { readonly nats?: string }

let delivered = 0
let malformed = 0
const onEvent = (event: { readonly id?: unknown }): void => {
  if (typeof event.id === "number") delivered++
  else malformed++
}

const exit = () => process.exit(0)
process.on("SIGTERM", exit)
process.on("SIGINT", exit)
process.on("SIGUSR2", () => {
  process.stdout.write(`MARK ${delivered} ${performance.now()} ${malformed}\n`)
})

// Flow-control channel: the delivered count, every 5 ms, to whoever said hello last.
const credit = dgram.createSocket("udp4")
let peer: { port: number; address: string } | undefined
credit.on("message", (_msg, rinfo) => {
  peer = { port: rinfo.port, address: rinfo.address }
})
setInterval(() => {
  if (peer !== undefined) credit.send(String(delivered), peer.port, peer.address)
}, 5).unref()
await new Promise<void>((resolve) => credit.bind(0, "127.0.0.1", resolve))
const creditPort = credit.address().port

const ready = (info: Record<string, unknown>) =>
  process.stdout.write(`READY ${JSON.stringify({ ...info, credit: creditPort })}\n`)

const setups: Record<string, () => Promise<void>> = {
  "raw-nats": async () => {
    const { connect } = await import("@nats-io/transport-node")
    const nc = await connect({ servers: config.nats! })
    nc.subscribe(topic, {
      callback: (error, msg) => {
        if (error === null) onEvent(JSON.parse(msg.string()))
      }
    })
    await nc.flush()
    ready({})
  },
  "moleculer-tcp": () => moleculer({ type: "TCP", options: { udpDiscovery: false, port: 0 } }),
  "moleculer-tcp-64": () => moleculer({ type: "TCP", options: { udpDiscovery: false, port: 0 } }),
  "moleculer-tcp-1": () => moleculer({ type: "TCP", options: { udpDiscovery: false, port: 0 } }),
  "moleculer-nats": () => moleculer(`nats://${config.nats}`),
  "raw-http-64": () => rawHttp(),
  "raw-http-1": () => rawHttp(),
  "effect-micro-http": () => effectMicro("http"),
  "effect-micro-http-64": () => effectMicro("http"),
  "effect-micro-http-1": () => effectMicro("http"),
  "effect-micro-http-ff": () => effectMicro("http"),
  "effect-micro-http-ff-1": () => effectMicro("http"),
  "effect-micro-nats": () => effectMicro("nats")
}

const moleculer = async (transporter: unknown) => {
  await import("../loopbackOnly.js")
  const { default: moleculer } = await import("moleculer")
  const nodeID = `bench-sub-${process.pid}`
  const broker = new moleculer.ServiceBroker({
    nodeID,
    namespace: "bench-pubsub",
    logger: false,
    metrics: { enabled: false },
    tracing: { enabled: false },
    serializer: "JSON",
    transporter: transporter as any
  })
  broker.createService({
    name: "bench",
    events: {
      "bench.event": (ctx: any) => onEvent(ctx.params)
    }
  })
  await broker.start()
  const port = typeof transporter === "object" ? (broker.transit as any).tx.opts.port as number : undefined
  ready({ nodeID, port })
}

/** A bare `node:http` endpoint: the body is read, parsed and counted, then `204` (delivered). */
const rawHttp = async () => {
  const http = await import("node:http")
  const server = http.createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      onEvent(JSON.parse(Buffer.concat(chunks).toString("utf8")))
      response.writeHead(204)
      response.end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  ready({ endpoint: `http://127.0.0.1:${port}/events` })
}

const effectMicro = async (kind: "http" | "nats") => {
  const Effect = await import("effect/Effect")
  const Layer = await import("effect/Layer")
  const Topic = await import("../../src/Topic.js")
  const { Item } = await import("../contract.js")
  const ItemTopic = Topic.make(topic, Item)
  const broker = kind === "http"
    ? await (async () => {
      const HttpBroker = await import("../../src/HttpBroker.js")
      const Registry = await import("../../src/Registry.js")
      // The subscriber registers into its own memory registry; the publisher gets the node from READY.
      return HttpBroker.layer().pipe(Layer.provide(Registry.layerMemory))
    })()
    : await (async () => {
      const NatsBroker = await import("../../src/plugins/nats/NatsBroker.js")
      return NatsBroker.layer({ servers: config.nats! })
    })()
  const program = Effect.gen(function*() {
    const subscription = yield* Topic.subscribe(ItemTopic, (item) => Effect.sync(() => onEvent(item)))
    ready({ endpoint: subscription.endpoint, id: subscription.id })
    return yield* Effect.never
  })
  Effect.runFork(program.pipe(Effect.scoped, Effect.provide(broker))).addObserver((exit) => {
    process.stderr.write(`subscriber ended: ${JSON.stringify(exit)}\n`)
    process.exit(1)
  })
}

await setups[scenario.name]!()
