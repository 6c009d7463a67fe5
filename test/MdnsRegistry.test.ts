import { describe, expect, it } from "@effect/vitest"
import type { Answer, Packet, SrvAnswer } from "dns-packet"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import makeMdns from "multicast-dns"
import * as Records from "../src/internal/registry/mdnsRecords.js"
import * as MdnsRegistry from "../src/MdnsRegistry.js"
import { eventually } from "./support/eventually.js"
import { liveWatch, makeService, registryContract, uniqueName } from "./support/registryContract.js"

// A private port per test file on loopback: nothing leaves the host, nothing meets a real responder.
const port = 20000 + Math.floor(Math.random() * 20000)
const options: MdnsRegistry.MdnsRegistryOptions = {
  ...MdnsRegistry.loopback,
  port,
  queryTimeout: "200 millis",
  queryRetries: 2
}

registryContract("mdns (two sockets)", {
  make: Effect.all({ writer: MdnsRegistry.make(options), reader: MdnsRegistry.make(options) }),
  clock: "live",
  ttl: "2 seconds",
  settle: "3 seconds"
})

/** A raw multicast-dns socket on the same group, to see the wire as another DNS-SD client would. */
const rawSocket = Effect.acquireRelease(
  Effect.async<ReturnType<typeof makeMdns>>((resume) => {
    const mdns = makeMdns({ ...MdnsRegistry.loopback, port })
    mdns.once("ready", () => resume(Effect.succeed(mdns)))
  }),
  (mdns) => Effect.sync(() => mdns.destroy())
)

const firstResponse = (mdns: ReturnType<typeof makeMdns>, predicate: (answers: Array<Answer>) => boolean) =>
  Effect.async<Array<Answer>>((resume) => {
    const onResponse = (packet: Packet) => {
      const all = [...(packet.answers ?? []), ...(packet.additionals ?? [])]
      if (predicate(all)) {
        mdns.removeListener("response", onResponse)
        resume(Effect.succeed(all))
      }
    }
    mdns.on("response", onResponse)
    return Effect.sync(() => mdns.removeListener("response", onResponse))
  })

describe("MdnsRegistry", () => {
  it.scopedLive("answers DNS-SD queries with PTR, SRV, TXT and A records", () =>
    Effect.gen(function*() {
      const registry = yield* MdnsRegistry.make(options)
      const name = uniqueName("dnssd")
      yield* registry.register(makeService(name, [{ id: `${name}-1`, port: 4321 }]), { ttl: "30 seconds" })
      const raw = yield* rawSocket
      const waiting = yield* Effect.fork(
        firstResponse(raw, (all) => all.some((a) => a.type === "PTR" && a.name.startsWith(`_${name}`)))
      )
      raw.query({ questions: [{ name: `_${name}._sub._micro._tcp.local`, type: "PTR" }] })
      const answers = yield* Fiber.join(waiting).pipe(
        Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("no answer") })
      )
      const instance = `${name}-1._micro._tcp.local`
      const srv = answers.find((a): a is SrvAnswer => a.type === "SRV" && a.name === instance)
      expect(srv?.data).toMatchObject({ port: 4321, target: "micro-127-0-0-1.local" })
      expect(srv?.ttl).toBeGreaterThan(25)
      const a = answers.find((r) => r.type === "A")
      expect(a).toMatchObject({ name: "micro-127-0-0-1.local", data: "127.0.0.1" })
      const txt = answers.find((r) => r.type === "TXT" && r.name === instance)
      const values = Either.getOrThrow(Records.decodeTxt(txt!.type === "TXT" ? txt!.data : []))
      expect(Object.fromEntries(values)).toEqual({
        txtvers: "1",
        name,
        version: "1.0.0",
        node: `${name}-1`,
        meta: JSON.stringify({ team: "core" }),
        nodemeta: JSON.stringify({ zone: "a" }),
        endpoints: JSON.stringify([{ name: "Greeter.Hello", metadata: { stream: "false" } }])
      })

      // service type enumeration (what `avahi-browse -a` relies on)
      const enumerated = yield* Effect.fork(
        firstResponse(raw, (all) => all.some((r) => r.name === Records.ENUMERATION))
      )
      raw.query({ questions: [{ name: Records.ENUMERATION, type: "PTR" }] })
      const services = yield* Fiber.join(enumerated).pipe(
        Effect.timeoutFail({ duration: "3 seconds", onTimeout: () => new Error("no answer") })
      )
      expect(services.find((r) => r.name === Records.ENUMERATION)).toMatchObject({
        type: "PTR",
        data: "_micro._tcp.local"
      })
    }))

  it.scopedLive("large metadata and endpoint lists are chunked across TXT strings and round-trip", () =>
    Effect.gen(function*() {
      const writer = yield* MdnsRegistry.make(options)
      const reader = yield* MdnsRegistry.make(options)
      const name = uniqueName("big")
      const endpoints = Array.from(
        { length: 40 },
        (_, i) => ({ name: `Service.Endpoint${i}`, metadata: { stream: String(i % 2 === 0), "ü": "ß".repeat(10) } })
      )
      const service = {
        ...makeService(name, [{ id: `${name}-1`, port: 4000 }]),
        endpoints,
        metadata: { description: "x".repeat(600) }
      }
      yield* writer.register(service, { ttl: "30 seconds" })
      const [found] = yield* reader.getService(name)
      expect(found!.endpoints).toEqual(endpoints)
      expect(found!.metadata).toEqual(service.metadata)
    }))

  it.scopedLive("many nodes at once are announced over several packets", () =>
    Effect.gen(function*() {
      const writer = yield* MdnsRegistry.make(options)
      const reader = yield* MdnsRegistry.make(options)
      const name = uniqueName("many")
      const nodes = Array.from(
        { length: 40 },
        (_, i) => ({ id: `${name}-${i}`, port: 5000 + i, metadata: { note: "n".repeat(300) } })
      )
      yield* writer.register(makeService(name, nodes), { ttl: "30 seconds" })
      // Wait for the real signal (all 40 nodes seen), bounded, instead of a fixed sleep.
      const found = yield* reader.getService(name).pipe(
        Effect.map(([service]) => service),
        Effect.filterOrFail((service) => service?.nodes.length === 40, () => new Error("not all nodes yet")),
        Effect.retry(Schedule.spaced("20 millis").pipe(Schedule.upTo("5 seconds")))
      )
      expect(found!.nodes).toHaveLength(40)
    }))

  it.scopedLive(
    "a registration of 1,000 nodes reaches another registry in full (packets paced, MTU-sized)",
    () =>
      Effect.gen(function*() {
        // Sent back to back, 50 packets of 9000 bytes overflowed the receivers' socket buffers and the
        // kernel dropped most of them, silently: the reader saw ≈ 240 of 1,000 nodes after two announcements.
        const reader = yield* MdnsRegistry.make(options)
        const writer = yield* MdnsRegistry.make(options)
        const raw = yield* rawSocket
        let largest = 0
        raw.on("response", (_packet: Packet, rinfo: { size: number }) => {
          largest = Math.max(largest, rinfo.size)
        })
        const name = uniqueName("thousand")
        const nodes = Array.from({ length: 1000 }, (_, i) => ({ id: `${name}-${i}`, port: 5000 + i }))
        yield* writer.register(makeService(name, nodes), { ttl: "30 seconds" })
        const found = yield* reader.getService(name).pipe(
          Effect.map(([service]) => service),
          Effect.filterOrFail((service) => service?.nodes.length === 1000, () => new Error("not all nodes yet")),
          Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("4 seconds"))),
          Effect.orElse(() =>
            Effect.flatMap(
              reader.getService(name),
              ([service]) => Effect.fail(new Error(`reader saw ${service?.nodes.length} of 1000 nodes`))
            )
          )
        )
        expect(found!.nodes).toHaveLength(1000)
        // several instances per packet only up to one Ethernet MTU (1500 − 28 bytes of IP and UDP headers)
        expect(largest).toBeGreaterThan(0)
        expect(largest).toBeLessThanOrEqual(1472)
      }),
    20_000
  )

  it.scopedLive("queries for many unknown instances are split over packets instead of one oversized datagram", () =>
    Effect.gen(function*() {
      // 700 PTRs in one response (62 KB), without SRV/TXT: the registry asks for the 700 instances. As one
      // query that was ≈ 90 KB, more than a UDP datagram holds: never sent (a warning), never resolved.
      yield* MdnsRegistry.make(options)
      const raw = yield* rawSocket
      const prefix = uniqueName("unknown").toLowerCase().replace(/[^a-z0-9-]/g, "-")
      const labels = Array.from({ length: 700 }, (_, i) => `${prefix}-${"x".repeat(30)}-${i}`.slice(-40))
      const asked = new Set<string>()
      let largest = 0
      raw.on("query", (packet: Packet, rinfo: { size: number }) => {
        for (const q of packet.questions ?? []) if (q.type === "SRV") asked.add(q.name.split(".")[0]!)
        largest = Math.max(largest, rinfo.size)
      })
      yield* Effect.async<void>((resume) => {
        raw.respond(
          {
            answers: labels.map((label) => ({
              name: "_micro._tcp.local",
              type: "PTR",
              ttl: 60,
              data: `${label}._micro._tcp.local`
            }))
          },
          (error: Error | null) => resume(error ? Effect.die(error) : Effect.void)
        )
      })
      yield* eventually(Effect.sync(() => labels.every((label) => asked.has(label))), (all) => all, "3 seconds").pipe(
        Effect.mapError(() => new Error(`queried ${labels.filter((l) => asked.has(l)).length} of 700 instances`))
      )
      expect(largest).toBeLessThanOrEqual(1472)
    }))

  it.scopedLive("a closing scope sends goodbyes: others drop the node at once", () =>
    Effect.gen(function*() {
      const reader = yield* MdnsRegistry.make(options)
      const scope = yield* Scope.make()
      const writer = yield* MdnsRegistry.make(options).pipe(Scope.extend(scope))
      const name = uniqueName("bye")
      yield* writer.register(makeService(name, [{ id: `${name}-1`, port: 4000 }]), { ttl: "60 seconds" })
      yield* reader.getService(name)
      const events = yield* liveWatch(reader, writer, name)
      const closedAt = Date.now()
      yield* Scope.close(scope, Exit.void)
      yield* eventually(Ref.get(events), Chunk.some((e) => e.type === "delete"), "1 second").pipe(
        Effect.mapError(() => new Error("no goodbye seen"))
      )
      expect(Date.now() - closedAt).toBeLessThan(1000)
      expect((yield* Effect.flip(reader.getService(name)))._tag).toBe("ServiceNotFound")
    }))

  it.scopedLive("ServiceNotFound after a bounded wait, saying what was tried", () =>
    Effect.gen(function*() {
      const registry = yield* MdnsRegistry.make(options)
      const started = Date.now()
      const error = yield* Effect.flip(registry.getService("nobody-here"))
      const waited = Date.now() - started
      expect(error._tag).toBe("ServiceNotFound")
      expect(waited).toBeGreaterThanOrEqual(500)
      expect(waited).toBeLessThan(2000)
      if (error._tag === "ServiceNotFound") {
        expect(error.detail).toContain("sent 3 queries")
        expect(error.detail).toContain("_nobody-here._sub._micro._tcp.local")
        expect(error.detail).toContain("interface 127.0.0.1")
        expect(error.detail).toMatch(/waited \d+ ms/)
      }
    }))

  it.scopedLive("bad input: unparsable address and too small TTL are RegistryError Malformed", () =>
    Effect.gen(function*() {
      const registry = yield* MdnsRegistry.make(options)
      const bad = {
        ...makeService("bad", [{ id: "bad-1", port: 1 }]),
        nodes: [{ id: "bad-1", address: "no-port", metadata: {} }]
      }
      const e1 = yield* Effect.flip(registry.register(bad))
      expect(e1).toMatchObject({ _tag: "RegistryError", reason: "Malformed" })
      const e2 = yield* Effect.flip(
        registry.register(makeService("bad", [{ id: "bad-1", port: 1 }]), { ttl: "10 millis" })
      )
      expect(e2).toMatchObject({ _tag: "RegistryError", reason: "Malformed" })
      const huge = { ...makeService("huge", [{ id: "huge-1", port: 1 }]), metadata: { blob: "x".repeat(20_000) } }
      const e3 = yield* Effect.flip(registry.register(huge))
      expect(e3).toMatchObject({ _tag: "RegistryError", reason: "Malformed" })
      expect((yield* Effect.flip(registry.getService("bad")))._tag).toBe("ServiceNotFound")
    }))

  it.scopedLive("an interface that does not exist is a RegistryError, not a silent deaf socket", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(MdnsRegistry.make({ ...options, interface: "10.254.254.254" }))
      expect(error).toMatchObject({ _tag: "RegistryError", reason: "Unavailable" })
    }))

  it.scopedLive("malformed packets on the group are ignored", () =>
    Effect.gen(function*() {
      const registry = yield* MdnsRegistry.make(options)
      const raw = yield* rawSocket
      const name = uniqueName("junk")
      // An instance of ours with a TXT lacking the node id, and one with broken JSON metadata.
      const instance = `${name}._micro._tcp.local`
      raw.respond({
        answers: [
          { name: "_micro._tcp.local", type: "PTR", ttl: 60, data: instance },
          { name: instance, type: "SRV", ttl: 60, data: { port: 1, target: "x.local" } },
          { name: instance, type: "TXT", ttl: 60, data: [`name=${name}`, "meta={broken"] }
        ]
      })
      // Then a valid instance from the same socket: once the registry knows it, it has read the junk before it.
      const marker = uniqueName("after-junk")
      const records = Records.instanceRecords(
        Records.names("micro"),
        makeService(marker, [{ id: `${marker}-1`, port: 4000 }]),
        Records.parseAddress("127.0.0.1:4000")!,
        60
      )
      raw.respond({ answers: Records.allRecords(records) })
      yield* eventually(Effect.either(registry.getService(marker)), Either.isRight, "5 seconds")
      const error = yield* Effect.flip(registry.getService(name))
      expect(error._tag).toBe("ServiceNotFound")
    }))
})

describe("mdns records", () => {
  it("TXT chunking round-trips long UTF-8 values", () => {
    const long = "€".repeat(400)
    const strings = Records.encodeTxt([["name", "svc"], ["meta", long]])
    expect(strings.every((s) => s.length <= 255)).toBe(true)
    expect(strings.length).toBeGreaterThan(4)
    const decoded = Either.getOrThrow(Records.decodeTxt(strings))
    expect(decoded.get("meta")).toBe(long)
    const gap = Records.decodeTxt(strings.filter((_, i) => i !== 2))
    expect(Either.isLeft(gap)).toBe(true)
  })

  it("labels are single DNS labels of at most 63 bytes and stay distinct", () => {
    const a = Records.toLabel("a.b.c" + "x".repeat(100))
    const b = Records.toLabel("a.b.c" + "x".repeat(99) + "y")
    expect(Buffer.byteLength(a)).toBeLessThanOrEqual(63)
    expect(a).not.toContain(".")
    expect(a).not.toBe(b)
  })

  it("addresses parse and format (IPv4, IPv6, host names)", () => {
    expect(Records.parseAddress("127.0.0.1:80")).toEqual({ host: "127.0.0.1", port: 80, family: 4 })
    expect(Records.parseAddress("[::1]:80")).toEqual({ host: "::1", port: 80, family: 6 })
    expect(Records.parseAddress("svc.local:80")).toEqual({ host: "svc.local", port: 80, family: "name" })
    expect(Records.parseAddress("nope")).toBeUndefined()
    expect(Records.parseAddress("h:99999")).toBeUndefined()
    expect(Records.formatAddress("::1", 80)).toBe("[::1]:80")
    expect(Duration.toMillis(Duration.decode("1 second"))).toBe(1000)
  })
})
