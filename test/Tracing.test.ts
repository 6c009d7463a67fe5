import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Tracer from "effect/Tracer"
import { Client, Codec, Registry, Selector, Server, Tracing, Transport } from "../src/index.js"
import { handlers, Testing } from "./support/contract.js"

describe("Tracing", () => {
  it("traceparent round trip; malformed values are ignored", () => {
    const parsed = Tracing.parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    expect(Option.getOrThrow(parsed)).toMatchObject({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      spanId: "00f067aa0ba902b7",
      sampled: true
    })
    expect(Tracing.formatTraceparent(Option.getOrThrow(parsed))).toBe(
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    )
    for (
      const bad of [
        undefined,
        "",
        "garbage",
        "00-0000-11-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
      ]
    ) {
      expect(Option.isNone(Tracing.parseTraceparent(bad))).toBe(true)
    }
  })

  it.scoped("the client span's context reaches the server, whose span continues the trace", () =>
    Effect.gen(function*() {
      const seen: { client?: Tracer.Span; server?: Tracer.Span } = {}
      const captureClient: Client.ClientMiddleware = (call, next) =>
        Effect.flatMap(Effect.currentSpan.pipe(Effect.option), (span) => {
          if (Option.isSome(span)) seen.client = span.value
          return next(call)
        })
      const captureServer: Server.Middleware = (_call, next) =>
        Effect.flatMap(Effect.currentSpan.pipe(Effect.option), (span) => {
          if (Option.isSome(span)) seen.server = span.value
          return next
        })
      const Infra = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Selector.layer)
      const headers = yield* Effect.gen(function*() {
        const testing = yield* Client.make(Testing, { service: "testing" })
        return yield* testing.WhoAmI(undefined)
      }).pipe(
        Effect.provide(
          Layer.mergeAll(
            Client.layer({ middleware: [Tracing.client, captureClient] }),
            Server.layer(Testing, { name: "testing", address: "memory:0" }).pipe(
              Layer.provide(handlers("n1")),
              Layer.provide(Server.layerMiddleware(Tracing.server, captureServer))
            )
          ).pipe(Layer.provideMerge(Infra))
        )
      )
      const client = seen.client!
      const server = seen.server!
      expect(client.name).toBe("testing/WhoAmI")
      expect(client.kind).toBe("client")
      expect(headers.traceparent).toBe(Tracing.formatTraceparent(client))
      expect(server.name).toBe("testing/WhoAmI")
      expect(server.kind).toBe("server")
      expect(server.traceId).toBe(client.traceId)
      expect(Option.getOrThrow(server.parent).spanId).toBe(client.spanId)
    }))
})
