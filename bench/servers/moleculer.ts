/**
 * Moleculer 0.15 reference server: a `ServiceBroker` with the TCP transporter (UDP discovery off; the client
 * broker lists this node in its static `urls` and gossip does the rest), JSON serializer, logger, metrics and
 * tracing off, one service `bench` with an `echo` action returning its params.
 *
 * Moleculer's TCP reader listens on every interface; `loopbackOnly.ts` pins it to 127.0.0.1.
 * Prints `READY 127.0.0.1:port|nodeID` (the client needs the nodeID for its `urls`).
 */
import "../loopbackOnly.js"
import moleculer from "moleculer"

const nodeID = `bench-server-${process.pid}`
const broker = new moleculer.ServiceBroker({
  nodeID,
  namespace: "bench",
  logger: false,
  metrics: { enabled: false },
  tracing: { enabled: false },
  serializer: "JSON",
  transporter: { type: "TCP", options: { udpDiscovery: false, port: 0 } }
})

broker.createService({
  name: "bench",
  actions: {
    echo: (ctx: any) => ctx.params
  }
})

broker.start().then(() => {
  const port = (broker.transit as any).tx.opts.port as number
  process.stdout.write(`READY 127.0.0.1:${port}|${nodeID}\n`)
}, (error: unknown) => {
  process.stderr.write(`moleculer server failed: ${error}\n`)
  process.exit(1)
})

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
