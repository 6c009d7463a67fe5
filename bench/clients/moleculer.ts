/**
 * Moleculer client: a second `ServiceBroker` in the load-generator process, TCP transporter with the server
 * as its only static `urls` entry (UDP discovery off), JSON, logger/metrics/tracing off. Waits for the
 * `bench` service, then each call is `broker.call("bench.echo", payload)` (default request timeout: none,
 * retries: none — Moleculer's defaults).
 */
import "../loopbackOnly.js"
import moleculer from "moleculer"
import { payload } from "../payload.js"
import type { LoadClient } from "./types.js"

export const make = async (address: string): Promise<LoadClient> => {
  const [hostPort, serverNode] = address.split("|") as [string, string]
  const broker = new moleculer.ServiceBroker({
    nodeID: `bench-client-${process.pid}`,
    namespace: "bench",
    logger: false,
    metrics: { enabled: false },
    tracing: { enabled: false },
    serializer: "JSON",
    transporter: { type: "TCP", options: { udpDiscovery: false, urls: `${hostPort}/${serverNode}` } }
  })
  await broker.start()
  await broker.waitForServices(["bench"], 20_000)
  await broker.call("bench.echo", payload)
  return {
    call: (done) => {
      broker.call("bench.echo", payload).then(() => done(undefined), done)
    },
    close: () => broker.stop()
  }
}
