/**
 * Imported for its effect by the Moleculer processes: Moleculer's TCP transporter listens with
 * `server.listen({ port, exclusive })`, i.e. on every interface. This pins any listen given an options
 * object without `host`/`path` to 127.0.0.1, so the benchmark never listens off the machine.
 */
import * as net from "node:net"

const listen = net.Server.prototype.listen
net.Server.prototype.listen = function(this: net.Server, ...args: Array<any>) {
  const first = args[0]
  if (
    first !== null && typeof first === "object" && !Array.isArray(first) && first.host === undefined &&
    first.path === undefined
  ) {
    args[0] = { ...first, host: "127.0.0.1" }
  }
  return (listen as any).apply(this, args)
} as any
