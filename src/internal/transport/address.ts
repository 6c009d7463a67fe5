/**
 * The address other hosts should dial for a listener: the bound one, unless it is a wildcard (then the first
 * LAN IPv4, or loopback when there is none). Shared by RPC servers and the HTTP broker's subscriber endpoint.
 */
import * as os from "node:os"

/** `host:port` as dialled (IPv6 hosts in brackets). */
export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/**
 * `bound`: what the listener reports (`host:port`, or any other form a transport uses, e.g. `memory:name`,
 * which is returned as it is).
 */
export const advertisedAddress = (bound: string, advertise: string | undefined): string => {
  if (advertise !== undefined) return advertise
  const colon = bound.lastIndexOf(":")
  const host = bound.slice(0, colon).replace(/^\[(.*)\]$/, "$1")
  if (colon === -1 || (host !== "0.0.0.0" && host !== "::")) return bound
  const port = bound.slice(colon + 1)
  for (const addresses of Object.values(os.networkInterfaces())) {
    for (const address of addresses ?? []) {
      if (address.family === "IPv4" && !address.internal) return `${address.address}:${port}`
    }
  }
  return `127.0.0.1:${port}`
}
