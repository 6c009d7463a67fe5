/**
 * Tracing end to end in one process: a recording tracer sees client → server → client → server → store and
 * broker publish → deliver in one trace with the right parents; log lines (Telemetry.layerConsole) carry the
 * trace and span ids of the span they were logged in; retries are events of the client span.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Tracer from "effect/Tracer"
import {
  AuthMiddleware,
  Broker,
  Client,
  Codec,
  Errors,
  Registry,
  Selector,
  Server,
  Store,
  Telemetry,
  Tracing,
  Transport
} from "../src/index.js"
import { Testing } from "./support/contract.js"
import { receiver } from "./support/otlpReceiver.js"
import { Back, backHandlers, Front, frontHandlers, topic } from "./support/telemetryContract.js"

/** Effect's own tracer, every ended span recorded. */
const recordingTracer = (ended: Array<Tracer.Span>) =>
  Layer.unwrapEffect(Effect.map(Effect.tracer, (base) =>
    Layer.setTracer(Tracer.make({
      span(name, parent, context, links, startTime, kind, options) {
        const span = base.span(name, parent, context, links, startTime, kind, options)
        const end = span.end
        ;(span as { end: Tracer.Span["end"] }).end = (endTime, exit) => {
          end.call(span, endTime, exit)
          ended.push(span)
        }
        return span
      },
      context: base.context
    }))))

const parentId = (span: Tracer.Span) => Option.getOrUndefined(Option.map(span.parent, (parent) => parent.spanId))

/** logfmt fields of a line (values bare or JSON-quoted). */
const fields = (line: string): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const match of line.matchAll(/([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    out[match[1]!] = match[2]!.startsWith("\"") ? JSON.parse(match[2]!) : match[2]!
  }
  return out
}

const Infra = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Selector.layer)

describe("Telemetry", () => {
  it.scoped("one trace: client → front → back → store and publish → deliver; logs carry trace and span ids", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const lines: Array<string> = []
      const delivered = yield* Deferred.make<void>()
      const services = Layer.mergeAll(
        Server.layer(Front, { name: "front", address: "memory:front", id: "front-1" }).pipe(
          Layer.provide(frontHandlers("back"))
        ),
        Server.layer(Back, { name: "back", address: "memory:back", id: "back-1" }).pipe(Layer.provide(backHandlers))
      ).pipe(Layer.provide(Server.layerMiddleware(Tracing.server)))
      const env = services.pipe(
        Layer.provideMerge(Client.layer({ middleware: [Tracing.client] })),
        Layer.provideMerge(Tracing.layerBroker.pipe(Layer.provide(Broker.layerMemory))),
        Layer.provideMerge(Tracing.layerStore.pipe(Layer.provide(Store.layerMemory()))),
        Layer.provideMerge(Infra),
        Layer.provideMerge(recordingTracer(spans)),
        Layer.provideMerge(
          Telemetry.layerConsole({ serviceName: "demo", node: "n1", spans: false, write: (line) => lines.push(line) })
        )
      )
      yield* Effect.gen(function*() {
        const store = yield* Store.Store
        yield* Broker.subscribe(topic, (message) =>
          Effect.gen(function*() {
            yield* Effect.log("delivered")
            yield* store.read(new TextDecoder().decode(message.body))
            yield* Deferred.succeed(delivered, undefined)
          }))
        const front = yield* Client.make(Front, { service: "front" })
        expect(yield* front.Relay({ text: "hello" })).toBe("hello")
        yield* Deferred.await(delivered)
      }).pipe(Effect.provide(env))

      const find = (name: string, kind: Tracer.SpanKind) => {
        const found = spans.find((span) => span.name === name && span.kind === kind)
        if (found === undefined) throw new Error(`no ${kind} span ${name}: ${spans.map((s) => s.name).join(", ")}`)
        return found
      }
      const callFront = find("front/Relay", "client")
      const serveFront = find("front/Relay", "server")
      const callBack = find("back/Publish", "client")
      const serveBack = find("back/Publish", "server")
      const write = find("store.write", "client")
      const publish = find(`publish ${topic}`, "producer")
      const deliver = find(`deliver ${topic}`, "consumer")
      const read = find("store.read", "client")
      const trace = callFront.traceId
      for (const span of [serveFront, callBack, serveBack, write, publish, deliver, read]) {
        expect(span.traceId).toBe(trace)
      }
      expect(parentId(callFront)).toBeUndefined()
      expect(parentId(serveFront)).toBe(callFront.spanId)
      expect(parentId(callBack)).toBe(serveFront.spanId)
      expect(parentId(serveBack)).toBe(callBack.spanId)
      expect(parentId(write)).toBe(serveBack.spanId)
      expect(parentId(publish)).toBe(serveBack.spanId)
      expect(parentId(deliver)).toBe(publish.spanId)
      expect(parentId(read)).toBe(deliver.spanId)
      expect(write.attributes.get("db.system.name")).toBe("memory")
      expect(write.attributes.get("effect_micro.store.key")).toBe("hello")
      expect(read.attributes.get("effect_micro.store.records")).toBe(1)
      expect(publish.attributes.get("messaging.destination.name")).toBe(topic)

      const logOf = (message: string) => {
        const line = lines.map(fields).find((f) => f.message === message)
        if (line === undefined) throw new Error(`no log line ${message}: ${lines.join("\n")}`)
        return line
      }
      expect(logOf("front relaying hello")).toMatchObject({
        service: "demo",
        node: "n1",
        trace_id: trace,
        span_id: serveFront.spanId
      })
      expect(logOf("back publishing hello")).toMatchObject({ trace_id: trace, span_id: serveBack.spanId })
      expect(logOf("delivered")).toMatchObject({ trace_id: trace, span_id: deliver.spanId })
    }))

  it.scoped("a message published without tracing starts its own trace at delivery", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const inner = yield* Broker.makeMemory
      const traced = Tracing.wrapBroker(inner)
      const delivered = yield* Deferred.make<void>()
      yield* Effect.gen(function*() {
        yield* Effect.withSpan(
          traced.subscribe("plain", () => Deferred.succeed(delivered, undefined)),
          "subscribing"
        )
        yield* inner.publish("plain", new Uint8Array([1]), { headers: { traceparent: "garbage" } })
        yield* Deferred.await(delivered)
      }).pipe(Effect.provide(recordingTracer(spans)))
      const deliver = spans.find((span) => span.name === "deliver plain")!
      expect(Option.isNone(deliver.parent)).toBe(true)
      expect(deliver.traceId).not.toBe(spans.find((span) => span.name === "subscribing")!.traceId)
    }))

  it.scoped("inside the auth wrapper, the delivery span covers the auth check: a refused message is a failed span", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      let handled = 0
      const broker = AuthMiddleware.wrapBroker(Tracing.wrapBroker(yield* Broker.makeMemory), {
        authorize: () => Effect.fail(Errors.Forbidden.of("not for you", "test"))
      })
      const published = yield* Effect.gen(function*() {
        yield* broker.subscribe("guarded", () => Effect.sync(() => handled++))
        return yield* Effect.either(broker.publish("guarded", new Uint8Array([1])))
      }).pipe(Effect.provide(recordingTracer(spans)))
      expect(handled).toBe(0)
      expect(Either.isLeft(published) && published.left.failures[0]?.reason).toBe("Forbidden")
      const deliver = spans.find((span) => span.name === "deliver guarded")!
      const publish = spans.find((span) => span.name === "publish guarded")!
      expect(parentId(deliver)).toBe(publish.spanId)
      expect(deliver.status._tag === "Ended" && Exit.isFailure(deliver.status.exit)).toBe(true)
    }))

  it.scoped("each retry is an event of the client span, naming the failed attempt", () =>
    Effect.gen(function*() {
      const spans: Array<Tracer.Span> = []
      const ghosts = Layer.effectDiscard(Effect.flatMap(Registry.Registry, (registry) =>
        registry.register({
          name: "lost",
          version: "latest",
          metadata: {},
          endpoints: [],
          nodes: [
            { id: "g1", address: "memory:g1", metadata: {} },
            { id: "g2", address: "memory:g2", metadata: {} }
          ]
        })))
      const exit = yield* Effect.gen(function*() {
        const lost = yield* Client.make(Testing, { service: "lost", retry: Schedule.recurs(1) })
        return yield* Effect.exit(lost.Echo({ text: "x" }))
      }).pipe(
        Effect.provide(
          Layer.mergeAll(Client.layer({ middleware: [Tracing.client], retryBudget: false, ejection: false }), ghosts)
            .pipe(Layer.provideMerge(Infra), Layer.provideMerge(recordingTracer(spans)))
        )
      )
      expect(exit._tag).toBe("Failure")
      const call = spans.find((span) => span.name === "lost/Echo" && span.kind === "client")!
      // Effect's own spans keep their events in `events` (not part of the Span interface).
      const events = (call as unknown as { events: Array<[string, bigint, Record<string, unknown>]> }).events
      expect(events.length).toBe(1)
      const [name, , attributes] = events[0]!
      expect(name).toBe("retry")
      expect(attributes).toMatchObject({ "rpc.retry.attempt": 2, "error.type": "TransportError" })
      expect(["memory:g1", "memory:g2"]).toContain(attributes["rpc.retry.failed_address"])
    }))
})

describe("Telemetry.layerOtlp", () => {
  it.scopedLive("from Config: spans and logs reach an OTLP/HTTP receiver, flushed when the layer closes", () =>
    Effect.gen(function*() {
      const otlp = yield* receiver
      const otlpLayer = Telemetry.layerOtlpConfig({
        url: Config.string("OTLP_URL"),
        serviceName: Config.string("SERVICE"),
        node: Config.string("NODE"),
        // Longer than the test: only the flush on close can deliver.
        exportInterval: Config.succeed("1 hour"),
        metrics: Config.succeed(false)
      }).pipe(
        Layer.provide(Layer.setConfigProvider(
          ConfigProvider.fromMap(new Map([["OTLP_URL", otlp.url], ["SERVICE", "in-process"], ["NODE", "n7"]]))
        ))
      )
      const span = yield* Effect.scoped(
        Effect.gen(function*() {
          yield* Layer.buildWithScope(otlpLayer, yield* Effect.scope)
          return yield* Effect.log("inside").pipe(
            Effect.zipRight(Effect.currentSpan),
            Effect.withSpan("unit of work", { kind: "server" })
          )
        }).pipe(Effect.provide(otlpLayer))
      )
      expect(otlp.spans).toMatchObject([{
        service: "in-process",
        node: "n7",
        name: "unit of work",
        traceId: span.traceId,
        spanId: span.spanId
      }])
      expect(otlp.logs.find((log) => log.body === "inside")).toMatchObject({
        service: "in-process",
        node: "n7",
        traceId: span.traceId,
        spanId: span.spanId
      })
    }))
})

describe("Telemetry.layerConsole", () => {
  it.effect("prints each ended span with its ids, parent, duration, status and attributes", () =>
    Effect.gen(function*() {
      const lines: Array<string> = []
      const [outer, inner] = yield* Effect.gen(function*() {
        const outer = yield* Effect.currentSpan
        const inner = yield* Effect.currentSpan.pipe(
          Effect.withSpan("inner", { kind: "client", attributes: { "db.operation.name": "read me" } })
        )
        yield* Effect.fail("boom").pipe(Effect.withSpan("failing"), Effect.ignore)
        return [outer, inner] as const
      }).pipe(
        Effect.withSpan("outer"),
        Effect.provide(Telemetry.layerConsole({ serviceName: "svc", node: "n1", write: (line) => lines.push(line) }))
      )
      const parsed = lines.map(fields)
      expect(parsed.map((f) => f.span)).toEqual(["inner", "failing", "outer"])
      expect(parsed[0]).toMatchObject({
        kind: "client",
        service: "svc",
        node: "n1",
        trace_id: outer.traceId,
        span_id: inner.spanId,
        parent_id: outer.spanId,
        status: "ok",
        "db.operation.name": "read me"
      })
      expect(Number(parsed[0]!.duration_ms)).toBeGreaterThanOrEqual(0)
      expect(parsed[1]).toMatchObject({ status: "error", parent_id: outer.spanId })
      expect(parsed[2]!.parent_id).toBeUndefined()
    }))
})
