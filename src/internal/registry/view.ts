/**
 * The local view of a registry: registrations with expiry, and the watch events their changes make.
 * Shared by every registry that keeps one (memory, mdns, etcd), so they agree on what is an update.
 */
import * as Duration from "effect/Duration"
import type { Endpoint, Event, Node, RegisterOptions, Service, WatchOptions } from "../../Registry.js"

interface LiveNode {
  readonly node: Node
  /** epoch millis, or Infinity without TTL */
  readonly expiresAt: number
}

interface Entry {
  service: Service
  readonly nodes: Map<string, LiveNode>
}

const key = (name: string, version: string) => `${name}\u0000${version}`

/** Applies registrations and expiries, and computes the watch events they make. */
export class RegistryView {
  private readonly entries = new Map<string, Entry>()

  /** Adds or renews nodes; returns the event to publish, if anything changed visibly. */
  upsert(service: Service, expiresAt: number): Event | undefined {
    const k = key(service.name, service.version)
    const existing = this.entries.get(k)
    if (existing === undefined) {
      const nodes = new Map<string, LiveNode>()
      for (const node of service.nodes) nodes.set(node.id, { node, expiresAt })
      const entry: Entry = { service, nodes }
      this.entries.set(k, entry)
      entry.service = this.snapshot(entry)
      return { type: "create", service: entry.service }
    }
    let changed = !sameMetadata(existing.service.metadata, service.metadata) ||
      !sameEndpoints(existing.service.endpoints, service.endpoints)
    for (const node of service.nodes) {
      const before = existing.nodes.get(node.id)
      if (
        before === undefined || before.node.address !== node.address ||
        !sameMetadata(before.node.metadata, node.metadata)
      ) changed = true
      existing.nodes.set(node.id, { node, expiresAt })
    }
    existing.service = this.snapshot({ service, nodes: existing.nodes })
    return changed ? { type: "update", service: existing.service } : undefined
  }

  /** Removes nodes; returns an update, or a delete when the last node went. */
  remove(service: Service): Event | undefined {
    const k = key(service.name, service.version)
    const existing = this.entries.get(k)
    if (existing === undefined) return undefined
    let changed = false
    for (const node of service.nodes) changed = existing.nodes.delete(node.id) || changed
    if (!changed) return undefined
    return this.afterRemoval(k, existing)
  }

  /** Drops nodes whose TTL passed; returns the events for them. */
  expire(now: number): Array<Event> {
    const events: Array<Event> = []
    for (const [k, entry] of this.entries) {
      let changed = false
      for (const [id, live] of entry.nodes) {
        if (live.expiresAt <= now) {
          entry.nodes.delete(id)
          changed = true
        }
      }
      if (changed) events.push(this.afterRemoval(k, entry))
    }
    return events
  }

  get(name: string, now: number): Array<Service> {
    const out: Array<Service> = []
    for (const entry of this.entries.values()) {
      if (entry.service.name !== name) continue
      const live = this.live(entry, now)
      if (live.nodes.length > 0) out.push(live)
    }
    return out
  }

  list(now: number): Array<Service> {
    const out: Array<Service> = []
    for (const entry of this.entries.values()) {
      const live = this.live(entry, now)
      if (live.nodes.length > 0) out.push(live)
    }
    return out
  }

  private afterRemoval(k: string, entry: Entry): Event {
    const before = entry.service
    if (entry.nodes.size === 0) {
      this.entries.delete(k)
      return { type: "delete", service: { ...before, nodes: [] } }
    }
    entry.service = this.snapshot(entry)
    return { type: "update", service: entry.service }
  }

  private snapshot(entry: Entry): Service {
    return { ...entry.service, nodes: Array.from(entry.nodes.values(), (live) => live.node) }
  }

  // Reads never return expired nodes, even between two reaper runs.
  private live(entry: Entry, now: number): Service {
    for (const live of entry.nodes.values()) {
      if (live.expiresAt <= now) {
        return {
          ...entry.service,
          nodes: [...entry.nodes.values()].filter((n) => n.expiresAt > now).map((n) => n.node)
        }
      }
    }
    return entry.service
  }
}

/**
 * Metadata and endpoints are compared by content: registries decode fresh objects on every renewal (mdns
 * packets, etcd values) and callers may build them anew, so identity says nothing; and a node whose metadata
 * changed (a zone, a weight, a draining flag) is an update that caches must hear of.
 */
const sameMetadata = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean => {
  if (a === b) return true
  let count = 0
  for (const key in a) {
    if (a[key] !== b[key]) return false
    count++
  }
  for (const _ in b) count--
  return count === 0
}

const sameEndpoints = (a: ReadonlyArray<Endpoint>, b: ReadonlyArray<Endpoint>): boolean =>
  a === b || (a.length === b.length && JSON.stringify(a) === JSON.stringify(b))

export const matchesWatch = (options: WatchOptions | undefined) => (event: Event): boolean =>
  options?.service === undefined || event.service.name === options.service

export const expiryOf = (now: number, options: RegisterOptions | undefined): number =>
  options?.ttl === undefined ? Number.POSITIVE_INFINITY : now + Duration.toMillis(Duration.decode(options.ttl))
