/**
 * DNS-SD record layout for effect-micro services (RFC 6763 over RFC 6762 multicast DNS).
 *
 * One registered node = one service instance:
 *
 *   _micro._tcp.local                     PTR  <instance>._micro._tcp.local      (browse all)
 *   _<service>._sub._micro._tcp.local     PTR  <instance>._micro._tcp.local      (look up one service)
 *   <instance>._micro._tcp.local          SRV  0 0 <port> <target>
 *   <instance>._micro._tcp.local          TXT  txtvers=1 name=… version=… node=… [meta=…] [nodemeta=…] [endpoints=…]
 *   <target>                              A / AAAA <ip>                          (when the node's host is an IP)
 *
 * `micro` is the `domain` option. `<instance>` is the node id and `<service>` the service name, both made
 * into one DNS label (dots become dashes, at most 63 bytes); the exact values travel in the TXT record.
 * A TXT string holds at most 255 bytes: a longer `key=value` is split into `key.0=…`, `key.1=…`, … whose
 * values are concatenated (as bytes) by the reader.
 */
import type { Answer, Question, SrvAnswer, StringAnswer, TxtAnswer } from "dns-packet"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import type { Endpoint, Service } from "../../Registry.js"

/** DNS-SD service type enumeration name (RFC 6763 §9). */
export const ENUMERATION = "_services._dns-sd._udp.local"

const MAX_LABEL = 63
const MAX_TXT_STRING = 255

// FNV-1a, to keep truncated labels distinct.
const hash = (s: string): string => {
  let h = 0x811c9dc5
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(16).padStart(8, "0")
}

/** Makes one DNS label (no dots, ≤ `max` bytes, never empty) from an arbitrary string. */
export const toLabel = (value: string, max = MAX_LABEL): string => {
  const cleaned = value.replace(/[.\s]/g, "-") || "-"
  if (Buffer.byteLength(cleaned) <= max) return cleaned
  let prefix = cleaned
  while (Buffer.byteLength(prefix) > max - 9) prefix = prefix.slice(0, -1)
  return `${prefix}-${hash(value)}`
}

/** The names used under one `domain`. All comparisons are case-insensitive (lower-cased). */
export interface Names {
  /** `_micro._tcp.local` */
  readonly serviceType: string
  readonly subtype: (service: string) => string
  readonly instance: (nodeId: string) => string
  /** The instance label of a full instance name, or undefined if the name is not one of ours. */
  readonly instanceLabelOf: (name: string) => string | undefined
}

export const names = (domain: string): Names => {
  const serviceType = `_${toLabel(domain, MAX_LABEL - 1)}._tcp.local`
  const suffix = `.${serviceType.toLowerCase()}`
  return {
    serviceType,
    subtype: (service) => `_${toLabel(service, MAX_LABEL - 1)}._sub.${serviceType}`,
    instance: (nodeId) => `${toLabel(nodeId)}.${serviceType}`,
    instanceLabelOf: (name) => {
      const lower = name.toLowerCase()
      if (!lower.endsWith(suffix)) return undefined
      const label = lower.slice(0, -suffix.length)
      return label.length > 0 && !label.includes(".") ? label : undefined
    }
  }
}

export interface HostPort {
  readonly host: string
  readonly port: number
  readonly family: 4 | 6 | "name"
}

const ipv4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/

/** Parses `host:port` / `[v6]:port`. */
export const parseAddress = (address: string): HostPort | undefined => {
  const at = address.lastIndexOf(":")
  if (at <= 0) return undefined
  let host = address.slice(0, at)
  const port = Number(address.slice(at + 1))
  if (!Number.isInteger(port) || port <= 0 || port > 65535) return undefined
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1)
  if (ipv4.test(host)) return { host, port, family: 4 }
  if (host.includes(":")) return { host, port, family: 6 }
  if (/^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9-]{1,63})*\.?$/.test(host)) return { host, port, family: "name" }
  return undefined
}

export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/** The SRV target for a node host: a `.local` name carrying the IP for IP hosts, the host name otherwise. */
export const targetFor = (hostPort: HostPort): string =>
  hostPort.family === "name" ? hostPort.host.replace(/\.$/, "") : `micro-${hostPort.host.replace(/[.:]/g, "-")}.local`

// ----- TXT -----

const StringRecord = Schema.Record({ key: Schema.String, value: Schema.String })
const decodeMetadata = Schema.decodeUnknownEither(Schema.parseJson(StringRecord))
const decodeEndpoints = Schema.decodeUnknownEither(
  Schema.parseJson(Schema.Array(Schema.Struct({ name: Schema.String, metadata: StringRecord })))
)

/** TXT keys, in the order they are written. Documented in docs/discovery.md. */
export const TXT_KEYS = ["txtvers", "name", "version", "node", "meta", "nodemeta", "endpoints"] as const

/** Encodes key/value pairs into TXT strings of at most 255 bytes, chunking long values. */
export const encodeTxt = (pairs: ReadonlyArray<readonly [string, string]>): Array<Buffer> => {
  const out: Array<Buffer> = []
  for (const [key, value] of pairs) {
    const whole = Buffer.from(`${key}=${value}`)
    if (whole.length <= MAX_TXT_STRING) {
      out.push(whole)
      continue
    }
    const bytes = Buffer.from(value)
    let offset = 0
    for (let i = 0; offset < bytes.length; i++) {
      const head = Buffer.from(`${key}.${i}=`)
      const room = MAX_TXT_STRING - head.length
      out.push(Buffer.concat([head, bytes.subarray(offset, offset + room)]))
      offset += room
    }
  }
  return out
}

/** Decodes TXT strings back into key → value, joining chunks. Fails on a gap in the chunks. */
export const decodeTxt = (data: TxtAnswer["data"]): Either.Either<Map<string, string>, string> => {
  const strings = Array.isArray(data) ? data : [data]
  const plain = new Map<string, string>()
  const chunks = new Map<string, Array<Buffer>>()
  for (const item of strings) {
    const buf = typeof item === "string" ? Buffer.from(item) : item
    const eq = buf.indexOf(0x3d)
    if (eq <= 0) continue // boolean attribute or empty string: not ours, ignore
    const key = buf.subarray(0, eq).toString("latin1").toLowerCase()
    const value = buf.subarray(eq + 1)
    const chunk = /^(.+)\.(\d+)$/.exec(key)
    if (chunk !== null) {
      const parts = chunks.get(chunk[1]!) ?? []
      parts[Number(chunk[2])] = value
      chunks.set(chunk[1]!, parts)
    } else if (!plain.has(key)) { // RFC 6763 §6.4: only the first occurrence counts
      plain.set(key, value.toString("utf8"))
    }
  }
  for (const [key, parts] of chunks) {
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] === undefined) return Either.left(`TXT key "${key}" is missing chunk ${i}`)
    }
    if (!plain.has(key)) plain.set(key, Buffer.concat(parts).toString("utf8"))
  }
  return Either.right(plain)
}

const isEmpty = (record: Readonly<Record<string, string>>) => Object.keys(record).length === 0

/** TXT pairs of one node of a service. */
export const txtPairs = (service: Service): Array<readonly [string, string]> => {
  const node = service.nodes[0]!
  const pairs: Array<readonly [string, string]> = [
    ["txtvers", "1"],
    ["name", service.name],
    ["version", service.version],
    ["node", node.id]
  ]
  if (!isEmpty(service.metadata)) pairs.push(["meta", JSON.stringify(service.metadata)])
  if (!isEmpty(node.metadata)) pairs.push(["nodemeta", JSON.stringify(node.metadata)])
  if (service.endpoints.length > 0) pairs.push(["endpoints", JSON.stringify(service.endpoints)])
  return pairs
}

/** Rebuilds a single-node service from TXT values and the resolved address. */
export const serviceFromTxt = (txt: Map<string, string>, address: string): Either.Either<Service, string> => {
  const name = txt.get("name")
  const id = txt.get("node")
  if (name === undefined || name === "" || id === undefined || id === "") {
    return Either.left("TXT record lacks name or node")
  }
  const parseRecord = (key: string) => {
    const raw = txt.get(key)
    return raw === undefined
      ? Either.right({})
      : Either.mapLeft(decodeMetadata(raw), () => `TXT "${key}" is not a JSON object of strings`)
  }
  const meta = parseRecord("meta")
  if (Either.isLeft(meta)) return Either.left(meta.left)
  const nodeMeta = parseRecord("nodemeta")
  if (Either.isLeft(nodeMeta)) return Either.left(nodeMeta.left)
  const rawEndpoints = txt.get("endpoints")
  let endpoints: ReadonlyArray<Endpoint> = []
  if (rawEndpoints !== undefined) {
    const decoded = decodeEndpoints(rawEndpoints)
    if (Either.isLeft(decoded)) return Either.left(`TXT "endpoints" is malformed`)
    endpoints = decoded.right
  }
  return Either.right({
    name,
    version: txt.get("version") ?? "",
    metadata: meta.right,
    endpoints,
    nodes: [{ id, address, metadata: nodeMeta.right }]
  })
}

/** The records describing one node (a single-node service), with the given TTL in seconds. */
export interface InstanceRecords {
  readonly instance: string
  readonly ptr: ReadonlyArray<StringAnswer>
  readonly srv: SrvAnswer
  readonly txt: TxtAnswer
  readonly host: ReadonlyArray<Answer>
}

export const instanceRecords = (
  n: Names,
  service: Service,
  hostPort: HostPort,
  ttl: number
): InstanceRecords => {
  const node = service.nodes[0]!
  const instance = n.instance(node.id)
  const target = targetFor(hostPort)
  const host: Array<Answer> = hostPort.family === 4
    ? [{ name: target, type: "A", ttl, flush: true, data: hostPort.host }]
    : hostPort.family === 6
    ? [{ name: target, type: "AAAA", ttl, flush: true, data: hostPort.host }]
    : []
  return {
    instance,
    ptr: [
      { name: n.serviceType, type: "PTR", ttl, data: instance },
      { name: n.subtype(service.name), type: "PTR", ttl, data: instance }
    ],
    srv: {
      name: instance,
      type: "SRV",
      ttl,
      flush: true,
      data: { port: hostPort.port, target, priority: 0, weight: 0 }
    },
    txt: { name: instance, type: "TXT", ttl, flush: true, data: encodeTxt(txtPairs(service)) },
    host
  }
}

export const allRecords = (r: InstanceRecords): Array<Answer> => [...r.ptr, r.srv, r.txt, ...r.host]

export const withTtl = (answers: ReadonlyArray<Answer>, ttl: number): Array<Answer> =>
  answers.map((a) => ({ ...a, ttl }) as Answer)

/** Identity of a record for de-duplication in one packet. */
export const recordKey = (a: Answer): string =>
  `${a.type}|${a.name.toLowerCase()}|${
    a.type === "PTR" || a.type === "A" || a.type === "AAAA" ? String(a.data).toLowerCase() : ""
  }`

export const questionMatches = (q: Question, type: Answer["type"]): boolean =>
  q.type === type || (q.type as string) === "ANY"

/** Encoded size of a domain name (uncompressed). */
export const nameSize = (name: string) => Buffer.byteLength(name.replace(/^\.|\.$/g, "")) + 2

/** Encoded size of a response packet without name compression (an upper bound of what goes on the wire). */
export const packetSize = (
  packet: {
    readonly answers?: ReadonlyArray<Answer> | undefined
    readonly additionals?: ReadonlyArray<Answer> | undefined
  }
): number => {
  let size = 12
  for (const a of [...(packet.answers ?? []), ...(packet.additionals ?? [])]) {
    size += nameSize(a.name) + 10
    switch (a.type) {
      case "PTR":
        size += nameSize(String(a.data))
        break
      case "SRV":
        size += 6 + nameSize(a.data.target)
        break
      case "TXT": {
        const data = Array.isArray(a.data) ? a.data : [a.data]
        for (const d of data) size += 1 + (typeof d === "string" ? Buffer.byteLength(d) : d.length)
        break
      }
      case "A":
        size += 4
        break
      case "AAAA":
        size += 16
        break
      default:
        size += 64
    }
  }
  return size
}
