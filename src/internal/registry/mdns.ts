/**
 * The mdns registry: a DNS-SD responder for our own registrations and a passive listener that keeps a
 * local view of every effect-micro instance announced on the group. Lookups read the view; when the view
 * has nothing for a name it queries (with retries, bounded) before failing with ServiceNotFound.
 *
 * Timeline of one registration (TTL = the registration's TTL, renewed by each `register`):
 * - register: records sent at once (announcement), again after min(1 s, period), then every period,
 *   period = min(announceInterval, TTL / 3), with the TTL left until the local registration lapses;
 * - deregister, local expiry, or the scope closing: a goodbye (same records, TTL 0);
 * - others: keep the node until its TTL passes without a new announcement; at 80 % of the TTL they
 *   query the instance once (RFC 6762 §5.2 cache refresh), so one lost packet does not drop a node.
 */
import type { Answer, Packet, Question, StringAnswer } from "dns-packet"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import makeMdns from "multicast-dns"
import type { RemoteInfo } from "node:dgram"
import { ServiceNotFound } from "../../Errors.js"
import type { MdnsRegistryOptions } from "../../MdnsRegistry.js"
import type { Event, RegisterOptions, Service } from "../../Registry.js"
import { Registry, RegistryError } from "../../Registry.js"
import { didYouMean } from "../common/text.js"
import * as Records from "./mdnsRecords.js"
import { matchesWatch, RegistryView } from "./view.js"

/** Options of the mdns registry (documented in MdnsRegistry.ts); defaults in `defaults` below. */
export type { MdnsRegistryOptions }

export const defaults = {
  domain: "micro",
  port: 5353,
  ip: "224.0.0.251",
  ttl: Duration.seconds(90),
  announceInterval: Duration.seconds(30),
  queryTimeout: Duration.millis(250),
  queryRetries: 3
} as const

/** How often the view is swept for expiries, announcements and refresh queries. */
const TICK = Duration.millis(250)
/** Our own records echo back through multicast loopback; after a goodbye they are ignored this long. */
const TOMBSTONE_MILLIS = 3_000
/** After the first answer to a lookup, wait this long for the other nodes' answers. */
const GATHER_MILLIS = 30
/**
 * Packet sizes (RFC 6762 §17), as DNS message bytes (IPv4: 20 bytes of IP header and 8 of UDP come on top):
 * - records of several instances are packed into packets of at most `PACKET_TARGET`, what one Ethernet
 *   frame carries (1500 − 28), so a packet on a LAN is never IP-fragmented (losing one fragment loses it);
 * - one instance whose records need more is sent alone, fragmented, up to `MAX_PACKET` (the RFC's 9000 bytes
 *   including headers); a registration needing more fails with `RegistryError("Malformed")`.
 */
const PACKET_TARGET = 1500 - 28
const MAX_PACKET = 9000 - 28
/**
 * A burst of packets larger than a receiver's socket buffer is dropped by the receiver's kernel, silently
 * (Linux: 208 KB by default, ≈ 90 full-size packets on loopback). Measured before pacing: one registration of
 * 1,000 nodes (50 packets of 9000 bytes back to back) reached another registry on the same host as 240 nodes.
 * So multi-packet sends pause `BURST_PAUSE` after every `BURST_PACKETS` packets (≈ 4 packets/ms, ≈ 12 nodes/ms).
 */
const BURST_PACKETS = 8
const BURST_PAUSE = Duration.millis(2)

type MulticastDNS = ReturnType<typeof makeMdns>

type Incoming =
  | { readonly _tag: "Packet"; readonly packet: Packet; readonly rinfo: RemoteInfo }
  | { readonly _tag: "Warning"; readonly error: Error }

interface Local {
  readonly service: Service // one node
  readonly instance: string // lower-cased label
  readonly hostPort: Records.HostPort
  expiresAt: number
  ttlMillis: number
  nextAnnounceAt: number
}

interface Remote {
  readonly service: Service // one node
  seenAt: number
  expiresAt: number
  refreshQueried: boolean
}

const toMillis = (d: Duration.DurationInput) => Duration.toMillis(Duration.decode(d))

const unavailable = (detail: string, cause?: unknown) => new RegistryError({ reason: "Unavailable", detail, cause })

/** Opens the multicast socket; fails when binding or joining the group fails. */
const openSocket = (options: makeMdns.Options, description: string) =>
  Effect.async<MulticastDNS, RegistryError>((resume) => {
    let mdns: MulticastDNS
    try {
      mdns = makeMdns(options)
    } catch (cause) {
      resume(Effect.fail(unavailable(`cannot create mdns socket (${description})`, cause)))
      return
    }
    // Failing to join the group on an explicitly chosen interface is reported only as a warning by
    // multicast-dns; without the membership nothing is ever received, so it is an error here.
    const warnings: Array<Error> = []
    const onWarning = (error: Error) => warnings.push(error)
    const done = () => {
      mdns.removeListener("ready", onReady)
      mdns.removeListener("error", onError)
      mdns.removeListener("warning", onWarning)
    }
    const onReady = () => {
      done()
      if (options.interface !== undefined && warnings.length > 0) {
        mdns.destroy()
        resume(
          Effect.fail(unavailable(`cannot join multicast group (${description}): ${warnings[0]!.message}`, warnings[0]))
        )
      } else {
        resume(Effect.succeed(mdns))
      }
    }
    const onError = (error: Error) => {
      done()
      mdns.destroy()
      resume(Effect.fail(unavailable(`cannot bind mdns socket (${description}): ${error.message}`, error)))
    }
    mdns.on("warning", onWarning)
    mdns.once("ready", onReady)
    mdns.once("error", onError)
    return Effect.sync(() => {
      done()
      mdns.destroy()
    })
  }).pipe(
    Effect.timeoutFail({
      duration: "5 seconds",
      onTimeout: () => unavailable(`mdns socket did not become ready within 5 s (${description})`)
    })
  )

export const make = (options: MdnsRegistryOptions = {}): Effect.Effect<Registry.Service, RegistryError, Scope.Scope> =>
  Effect.gen(function*() {
    const domain = options.domain ?? defaults.domain
    const port = options.port ?? defaults.port
    const group = options.ip ?? defaults.ip
    const defaultTtlMillis = toMillis(options.ttl ?? defaults.ttl)
    const announceMillis = toMillis(options.announceInterval ?? defaults.announceInterval)
    const queryTimeoutMillis = toMillis(options.queryTimeout ?? defaults.queryTimeout)
    const queryRetries = Math.max(0, Math.floor(options.queryRetries ?? defaults.queryRetries))
    const names = Records.names(domain)
    const serviceTypeLower = names.serviceType.toLowerCase()
    const description = `interface ${options.interface ?? "all"}, bind ${
      options.bind ?? options.interface ?? "0.0.0.0"
    }, group ${group}:${port}`

    const socketOptions: makeMdns.Options = { port, ip: group }
    if (options.interface !== undefined) socketOptions.interface = options.interface
    if (options.bind !== undefined) socketOptions.bind = options.bind

    const view = new RegistryView()
    const locals = new Map<string, Local>()
    const remotes = new Map<string, Remote>()
    const tombstones = new Map<string, number>()
    const hosts = new Map<string, { address: string; expiresAt: number }>()
    const events = yield* Effect.acquireRelease(PubSub.unbounded<Event>(), PubSub.shutdown)
    const publishAll = (list: ReadonlyArray<Event | undefined>) =>
      PubSub.publishAll(events, list.filter((e): e is Event => e !== undefined))

    // Packets are pushed by the socket; a bounded, dropping mailbox keeps a flood from growing memory
    // (UDP is lossy anyway; announcements are repeated).
    const incoming = yield* Mailbox.make<Incoming>({ capacity: 4096, strategy: "dropping" })
    const mdns = yield* Effect.acquireRelease(
      openSocket(socketOptions, description),
      (mdns) => Effect.async<void>((resume) => mdns.destroy(() => resume(Effect.void)))
    )
    mdns.on("packet", (packet: Packet, rinfo: RemoteInfo) => incoming.unsafeOffer({ _tag: "Packet", packet, rinfo }))
    mdns.on("warning", (error: Error) => incoming.unsafeOffer({ _tag: "Warning", error }))

    const send = (packet: Packet, rinfo?: { port: number; address: string }) =>
      Effect.async<void, RegistryError>((resume) => {
        const callback = (error: Error | null) =>
          resume(
            error ? Effect.fail(unavailable(`mdns send failed (${description}): ${error.message}`, error)) : Effect.void
          )
        try {
          if (packet.type === "query") mdns.query(packet as makeMdns.QueryOutgoingPacket, rinfo, callback)
          else mdns.respond(packet as makeMdns.ResponseOutgoingPacket, rinfo, callback)
        } catch (error) {
          resume(Effect.fail(unavailable(`mdns packet could not be encoded: ${String(error)}`, error)))
        }
      })
    const sendLogged = (packet: Packet) =>
      send(packet).pipe(Effect.catchAll((error) => Effect.logWarning("mdns registry: send failed", error.detail)))

    const dedupe = (answers: ReadonlyArray<Answer>): Array<Answer> => {
      const seen = new Set<string>()
      return answers.filter((a) => {
        const k = Records.recordKey(a)
        if (seen.has(k)) return false
        seen.add(k)
        return true
      })
    }

    const ttlSecondsOf = (local: Local, now: number) => Math.max(1, Math.ceil((local.expiresAt - now) / 1000))
    const recordsOf = (local: Local, ttl: number) => Records.instanceRecords(names, local.service, local.hostPort, ttl)
    /** One packet per group of instances that fits MAX_PACKET (each instance's records stay together). */
    const pack = (groups: ReadonlyArray<{ answers: Array<Answer>; additionals: Array<Answer> }>): Array<Packet> => {
      const packets: Array<Packet> = []
      let answers: Array<Answer> = []
      let additionals: Array<Answer> = []
      const flush = () => {
        if (answers.length === 0) return
        const deduped = dedupe(answers)
        const keys = new Set(deduped.map(Records.recordKey))
        packets.push({
          type: "response",
          answers: deduped,
          additionals: dedupe(additionals).filter((a) => !keys.has(Records.recordKey(a)))
        })
        answers = []
        additionals = []
      }
      for (const group of groups) {
        if (
          answers.length > 0 &&
          Records.packetSize({
              answers: [...answers, ...group.answers],
              additionals: [...additionals, ...group.additionals]
            }) > PACKET_TARGET
        ) flush()
        for (const answer of group.answers) answers.push(answer)
        for (const additional of group.additionals) additionals.push(additional)
      }
      flush()
      return packets
    }
    const announcement = (list: ReadonlyArray<Local>, now: number, goodbye = false): Array<Packet> =>
      pack(
        list.map((l) => ({
          answers: Records.allRecords(recordsOf(l, goodbye ? 0 : ttlSecondsOf(l, now))),
          additionals: []
        }))
      )
    /** Sends packets in order, pausing between bursts (see `BURST_PACKETS`). */
    const paced = <E>(packets: ReadonlyArray<Packet>, sendOne: (packet: Packet) => Effect.Effect<void, E>) =>
      Effect.forEach(
        packets,
        (packet, i) =>
          i > 0 && i % BURST_PACKETS === 0
            ? Effect.zipRight(Effect.sleep(BURST_PAUSE), sendOne(packet))
            : sendOne(packet),
        { discard: true }
      )
    const sendAll = (packets: ReadonlyArray<Packet>) => paced(packets, (p) => send(p))
    const sendAllLogged = (packets: ReadonlyArray<Packet>) => paced(packets, sendLogged)
    const periodOf = (local: Local) => Math.min(announceMillis, Math.max(500, local.ttlMillis / 3))

    // Keeps structurally equal metadata/endpoints as the same objects, so that refreshes of an unchanged
    // node are not seen as updates by RegistryView (which compares by reference).
    const stabilize = (service: Service, now: number): Service => {
      const previous = view.get(service.name, now).find((s) => s.version === service.version)
      if (previous === undefined) return service
      const metadata = JSON.stringify(previous.metadata) === JSON.stringify(service.metadata)
        ? previous.metadata
        : service.metadata
      const endpoints = JSON.stringify(previous.endpoints) === JSON.stringify(service.endpoints)
        ? previous.endpoints
        : service.endpoints
      return { ...service, metadata, endpoints }
    }

    // ----- answering queries (responder) -----

    const answerQuery = (packet: Packet, rinfo: RemoteInfo, now: number) => {
      const questions = packet.questions ?? []
      if (questions.length === 0 || locals.size === 0) return Effect.void
      // Known-answer suppression (RFC 6762 §7.1): skip PTRs the querier already holds with ≥ half our TTL.
      const known = new Set<string>()
      for (const a of packet.answers ?? []) {
        if (a.type === "PTR" && (a.ttl ?? 0) > 0) known.add(`${a.name.toLowerCase()}|${String(a.data).toLowerCase()}`)
      }
      // one group per instance, so a big answer can be split over several packets
      const groups: Array<{ answers: Array<Answer>; additionals: Array<Answer> }> = []
      const answers: Array<Answer> = []
      const addInstance = (local: Local, q: Question, viaPtr: boolean) => {
        const records = recordsOf(local, ttlSecondsOf(local, now))
        if (viaPtr) {
          const ptr = records.ptr.filter((p) => p.name.toLowerCase() === q.name.toLowerCase())
          const fresh = ptr.filter((p) => !known.has(`${p.name.toLowerCase()}|${p.data.toLowerCase()}`))
          if (fresh.length > 0) {
            groups.push({ answers: fresh, additionals: [records.srv, records.txt, ...records.host] })
          }
        } else {
          const asked: Array<Answer> = []
          if (Records.questionMatches(q, "SRV")) asked.push(records.srv)
          if (Records.questionMatches(q, "TXT")) asked.push(records.txt)
          groups.push({ answers: asked, additionals: Records.questionMatches(q, "SRV") ? [...records.host] : [] })
        }
      }
      for (const q of questions) {
        const qname = q.name.toLowerCase()
        if (qname === Records.ENUMERATION && Records.questionMatches(q, "PTR")) {
          answers.push({
            name: Records.ENUMERATION,
            type: "PTR",
            ttl: Math.ceil(defaultTtlMillis / 1000),
            data: names.serviceType
          })
        } else if (qname === serviceTypeLower && Records.questionMatches(q, "PTR")) {
          for (const local of locals.values()) addInstance(local, q, true)
        } else if (qname.endsWith(`._sub.${serviceTypeLower}`) && Records.questionMatches(q, "PTR")) {
          for (const local of locals.values()) {
            if (names.subtype(local.service.name).toLowerCase() === qname) addInstance(local, q, true)
          }
        } else {
          const label = names.instanceLabelOf(qname)
          const local = label === undefined ? undefined : locals.get(label)
          if (local !== undefined) addInstance(local, q, false)
          else {
            for (const l of locals.values()) {
              for (const h of recordsOf(l, ttlSecondsOf(l, now)).host) {
                if (h.name.toLowerCase() === qname && Records.questionMatches(q, h.type)) answers.push(h)
              }
            }
          }
        }
      }
      if (answers.length > 0) groups.unshift({ answers, additionals: [] })
      const packets = pack(groups.filter((g) => g.answers.length > 0))
      if (rinfo.port !== port) {
        // Legacy unicast query (RFC 6762 §6.7): answer the sender directly, echoing id and questions.
        return paced(packets, (p) =>
          send(
            {
              type: "response",
              id: packet.id ?? 0,
              questions,
              answers: Records.withTtl(p.answers ?? [], 10),
              additionals: Records.withTtl(p.additionals ?? [], 10)
            },
            { port: rinfo.port, address: rinfo.address }
          ).pipe(Effect.ignore))
      }
      return sendAllLogged(packets)
    }

    // ----- reading answers (passive listener) -----

    const forget = (label: string) => {
      const remote = remotes.get(label)
      if (remote === undefined) return undefined
      remotes.delete(label)
      return view.remove(remote.service)
    }

    const readResponse = (packet: Packet, now: number) => {
      const records = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
      const instances = new Map<string, { srv?: Answer; txt?: Answer }>()
      const pointed = new Map<string, number>()
      for (const a of records) {
        if (a.type === "A" || a.type === "AAAA") {
          const name = a.name.toLowerCase()
          if ((a.ttl ?? 0) === 0) hosts.delete(name)
          else hosts.set(name, { address: String(a.data), expiresAt: now + (a.ttl ?? 0) * 1000 })
        } else if (a.type === "SRV" || a.type === "TXT") {
          const label = names.instanceLabelOf(a.name)
          if (label === undefined) continue // filter by name: not one of ours
          const entry = instances.get(label) ?? {}
          if (a.type === "SRV") entry.srv = a
          else entry.txt = a
          instances.set(label, entry)
        } else if (a.type === "PTR") {
          const name = a.name.toLowerCase()
          if (name !== serviceTypeLower && !name.endsWith(`._sub.${serviceTypeLower}`)) continue
          const label = names.instanceLabelOf(String(a.data))
          if (label !== undefined) pointed.set(label, Math.min(pointed.get(label) ?? Infinity, a.ttl ?? 0))
        }
      }
      const out: Array<Event | undefined> = []
      const unknown: Array<string> = []
      for (const [label, ttl] of pointed) {
        if (locals.has(label) || tombstones.has(label)) continue
        if (ttl === 0) out.push(forget(label))
        else if (!instances.has(label) && !remotes.has(label)) unknown.push(label)
      }
      for (const [label, { srv, txt }] of instances) {
        if (locals.has(label) || tombstones.has(label)) continue
        if (srv === undefined || txt === undefined || srv.type !== "SRV" || txt.type !== "TXT") {
          if (!remotes.has(label)) unknown.push(label)
          continue
        }
        const ttl = Math.min(srv.ttl ?? 0, txt.ttl ?? 0)
        if (ttl === 0) {
          out.push(forget(label))
          continue
        }
        const target = srv.data.target.toLowerCase()
        const resolved = records.find((r): r is StringAnswer =>
          (r.type === "A" || r.type === "AAAA") && r.name.toLowerCase() === target
        )
        const host = resolved !== undefined ? resolved.data : hosts.get(target)?.address ?? srv.data.target
        const decoded = Either.flatMap(
          Records.decodeTxt(txt.data),
          (values) => Records.serviceFromTxt(values, Records.formatAddress(host, srv.data.port))
        )
        if (Either.isLeft(decoded)) continue
        const service = decoded.right
        const before = remotes.get(label)
        if (
          before !== undefined &&
          (before.service.name !== service.name || before.service.version !== service.version ||
            before.service.nodes[0]!.id !== service.nodes[0]!.id)
        ) out.push(forget(label))
        const expiresAt = now + ttl * 1000
        remotes.set(label, { service, seenAt: now, expiresAt, refreshQueried: false })
        out.push(view.upsert(stabilize(service, now), expiresAt))
      }
      return { events: out, unknown }
    }

    /**
     * SRV+TXT queries for instances, as many packets as `PACKET_TARGET` needs (≈ 20 instances each): a refresh
     * of every node a big registration announced at once used to be one query of ≈ 70 bytes per instance,
     * which from ≈ 900 instances on exceeds what one UDP datagram can carry and was never sent.
     */
    const queryInstances = (labels: ReadonlyArray<string>) => {
      if (labels.length === 0) return Effect.void
      const packets: Array<Packet> = []
      let questions: Array<Question> = []
      let size = 12
      for (const label of labels) {
        const name = `${label}.${names.serviceType}`
        const bytes = 2 * (Records.nameSize(name) + 4)
        if (questions.length > 0 && size + bytes > PACKET_TARGET) {
          packets.push({ type: "query", questions })
          questions = []
          size = 12
        }
        questions.push({ name, type: "SRV" }, { name, type: "TXT" })
        size += bytes
      }
      packets.push({ type: "query", questions })
      return sendAllLogged(packets)
    }

    const handle = (item: Incoming) =>
      Effect.flatMap(Clock.currentTimeMillis, (now): Effect.Effect<void> => {
        if (item._tag === "Warning") return Effect.logDebug("mdns registry: socket warning", item.error.message)
        const { packet, rinfo } = item
        if (packet.type === "query") return answerQuery(packet, rinfo, now)
        const { events: list, unknown } = readResponse(packet, now)
        return Effect.zipRight(publishAll(list), queryInstances(unknown))
      })

    yield* Mailbox.toStream(incoming).pipe(
      Stream.runForEach((item) =>
        Effect.catchAllCause(handle(item), (cause) => Effect.logWarning("mdns registry: packet handling failed", cause))
      ),
      Effect.forkScoped
    )

    // ----- timers: expiry, announcements, refresh queries -----

    const tick = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const expiredLocals: Array<Local> = []
      for (const [label, local] of locals) {
        if (local.expiresAt <= now) {
          locals.delete(label)
          tombstones.set(label, now + TOMBSTONE_MILLIS)
          expiredLocals.push(local)
        }
      }
      for (const [label, remote] of remotes) if (remote.expiresAt <= now) remotes.delete(label)
      for (const [label, until] of tombstones) if (until <= now) tombstones.delete(label)
      for (const [name, host] of hosts) if (host.expiresAt <= now) hosts.delete(name)
      const expired = view.expire(now)
      const due: Array<Local> = []
      for (const local of locals.values()) {
        if (local.nextAnnounceAt <= now) {
          local.nextAnnounceAt = now + periodOf(local)
          due.push(local)
        }
      }
      const refresh: Array<string> = []
      for (const [label, remote] of remotes) {
        if (!remote.refreshQueried && now >= remote.seenAt + 0.8 * (remote.expiresAt - remote.seenAt)) {
          remote.refreshQueried = true
          refresh.push(label)
        }
      }
      return Effect.all([
        PubSub.publishAll(events, expired),
        sendAllLogged(announcement(expiredLocals, now, true)),
        sendAllLogged(announcement(due, now)),
        queryInstances(refresh)
      ], { discard: true })
    })
    yield* tick.pipe(Effect.repeat(Schedule.spaced(TICK)), Effect.forkScoped)

    // Graceful stop: goodbyes for everything still registered (runs before the socket is closed).
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const list = [...locals.values()]
        locals.clear()
        return list.length === 0
          ? Effect.void
          : sendAll(announcement(list, now, true)).pipe(Effect.timeout("1 second"), Effect.ignore)
      })
    )

    // Start-up browse: everyone answers with their instances, so the view fills without waiting for
    // the next round of announcements.
    yield* sendLogged({ type: "query", questions: [{ name: names.serviceType, type: "PTR" }] })

    // ----- the Registry service -----

    const register = (service: Service, options?: RegisterOptions) =>
      Effect.gen(function*() {
        if (service.name === "") {
          return yield* Effect.fail(new RegistryError({ reason: "Malformed", detail: "service name is empty" }))
        }
        const ttlMillis = options?.ttl === undefined ? defaultTtlMillis : toMillis(options.ttl)
        if (!(ttlMillis >= 1000)) {
          return yield* Effect.fail(
            new RegistryError({
              reason: "Malformed",
              detail: `mdns TTL must be at least 1 second, got ${ttlMillis} ms`
            })
          )
        }
        const now = yield* Clock.currentTimeMillis
        const fresh: Array<Local> = []
        for (const node of service.nodes) {
          const hostPort = Records.parseAddress(node.address)
          if (hostPort === undefined) {
            return yield* Effect.fail(
              new RegistryError({
                reason: "Malformed",
                detail: `node "${node.id}" has an invalid address "${node.address}" (want host:port)`
              })
            )
          }
          const single: Service = { ...service, nodes: [node] }
          const label = Records.toLabel(node.id).toLowerCase()
          const local: Local = {
            service: single,
            instance: label,
            hostPort,
            expiresAt: now + ttlMillis,
            ttlMillis,
            nextAnnounceAt: 0
          }
          local.nextAnnounceAt = now + Math.min(1000, periodOf(local))
          fresh.push(local)
        }
        for (const local of fresh) {
          const size = Records.packetSize({ answers: Records.allRecords(recordsOf(local, 1)) })
          if (size > MAX_PACKET) {
            return yield* Effect.fail(
              new RegistryError({
                reason: "Malformed",
                detail:
                  `service "${service.name}" needs ${size} bytes of mdns records per node; the limit is ${MAX_PACKET} (fewer endpoints or less metadata)`
              })
            )
          }
        }
        const out: Array<Event | undefined> = []
        for (const local of fresh) {
          const before = locals.get(local.instance)
          if (
            before !== undefined &&
            (before.service.name !== local.service.name || before.service.version !== local.service.version)
          ) {
            out.push(view.remove(before.service))
          }
          locals.set(local.instance, local)
          tombstones.delete(local.instance)
          remotes.delete(local.instance)
          out.push(view.upsert(stabilize(local.service, now), local.expiresAt))
        }
        yield* publishAll(out)
        yield* sendAll(announcement(fresh, now))
      }).pipe(
        Effect.catchAllDefect((defect) =>
          Effect.fail(new RegistryError({ reason: "Unknown", detail: String(defect), cause: defect }))
        )
      )

    const deregister = (service: Service) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const gone: Array<Local> = []
        for (const node of service.nodes) {
          const label = Records.toLabel(node.id).toLowerCase()
          const local = locals.get(label)
          if (local === undefined || local.service.name !== service.name) continue
          locals.delete(label)
          tombstones.set(label, now + TOMBSTONE_MILLIS)
          gone.push(local)
        }
        yield* publishAll(gone.map((local) => view.remove(local.service)))
        yield* sendAll(announcement(gone, now, true))
      })

    const lookup = (name: string) =>
      Effect.scoped(Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(events)
        const questions: Array<Question> = [{ name: names.subtype(name), type: "PTR" }]
        const started = yield* Clock.currentTimeMillis
        let sent = 0
        const found = () => Effect.map(Clock.currentTimeMillis, (now) => view.get(name, now))
        for (let attempt = 0; attempt <= queryRetries; attempt++) {
          // The last attempt also browses the whole type, in case a responder lacks the subtype.
          const q = attempt === queryRetries && attempt > 0
            ? [...questions, { name: names.serviceType, type: "PTR" as const }]
            : questions
          yield* sendLogged({ type: "query", questions: q })
          sent++
          const deadline = (yield* Clock.currentTimeMillis) + queryTimeoutMillis
          while (true) {
            const now = yield* Clock.currentTimeMillis
            if (view.get(name, now).length > 0) {
              yield* Effect.sleep(Duration.millis(GATHER_MILLIS))
              return yield* found()
            }
            if (now >= deadline) break
            const next = yield* Queue.take(subscription).pipe(Effect.timeoutOption(Duration.millis(deadline - now)))
            if (Option.isNone(next)) break
          }
        }
        const now = yield* Clock.currentTimeMillis
        const known = view.list(now).map((s) => s.name)
        return yield* Effect.fail(ServiceNotFound.of(
          `service "${name}" not found by mdns: sent ${sent} ${sent === 1 ? "query" : "queries"} for ${
            names.subtype(name)
          } ` +
            `(${description}) and waited ${now - started} ms without an answer; ` +
            `the local view knows ${known.length} service(s)${
              known.length > 0 ? `: ${[...new Set(known)].slice(0, 10).join(", ")}` : ""
            }${didYouMean(name, known)}`
        ))
      }))

    return Registry.of({
      register,
      deregister,
      getService: (name) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) => {
          const found = view.get(name, now)
          return found.length > 0 ? Effect.succeed(found) : lookup(name)
        }),
      listServices: Effect.map(Clock.currentTimeMillis, (now) => view.list(now)),
      watch: (options) => Stream.fromPubSub(events).pipe(Stream.filter(matchesWatch(options)))
    })
  })
