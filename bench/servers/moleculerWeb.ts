/**
 * moleculer-web 0.11 (Moleculer's API gateway) in front of the Moleculer bench server (a child process, see
 * backend.ts): a `ServiceBroker` with the TCP transporter listing that node in its static `urls`, the
 * `ApiGateway` mixin on 127.0.0.1 with one route aliasing `POST /bench/Echo` to `bench.echo` (JSON body
 * parser), logger/metrics/tracing off. Prints `READY 127.0.0.1:port`.
 */
import "../loopbackOnly.js"
import moleculer from "moleculer"
import ApiGateway from "moleculer-web"
import { startBackend } from "./backend.js"

const backend = await startBackend("moleculer")
const [hostPort, serverNode] = backend.split("|") as [string, string]

const broker = new moleculer.ServiceBroker({
  nodeID: `bench-gateway-${process.pid}`,
  namespace: "bench",
  logger: false,
  metrics: { enabled: false },
  tracing: { enabled: false },
  serializer: "JSON",
  transporter: { type: "TCP", options: { udpDiscovery: false, urls: `${hostPort}/${serverNode}` } }
})

const api = broker.createService({
  name: "api",
  mixins: [ApiGateway],
  settings: {
    port: 0,
    ip: "127.0.0.1",
    logRequest: null,
    logResponse: null,
    routes: [{
      path: "/",
      aliases: { "POST bench/Echo": "bench.echo" },
      bodyParsers: { json: true },
      mappingPolicy: "restrict"
    }]
  }
})

await broker.start()
await broker.waitForServices(["bench"], 20_000)
const port = ((api as any).server.address() as { port: number }).port
process.stdout.write(`READY 127.0.0.1:${port}\n`)

const stop = () => process.exit(0)
process.on("SIGTERM", stop)
process.on("SIGINT", stop)
