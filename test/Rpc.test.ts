import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { Certificates, Client, Codec, Registry, Selector, Server, Transport } from "../src/index.js"
import * as TlsTransport from "../src/TlsTransport.js"
import { handlers, Testing, UnknownName } from "./support/contract.js"

// One certificate for both ends of the mutual-TLS runs (issued once: openssl takes a while).
const issued = Effect.runPromise(
  Effect.flatMap(Certificates.makeCa(), (ca) => Certificates.issue(ca, { identity: "rpc-test" }))
)
const tls = Layer.unwrapEffect(
  Effect.map(
    Effect.promise(() => issued),
    (certificate) => TlsTransport.layer(TlsTransport.optionsFromIssued(certificate))
  )
)

// Every case runs over each transport: memory with writes delivered whole; memory with the byte stream re-cut at
// random boundaries (frames split across chunks and chunks holding several frames); TCP and mutual TLS on loopback.
for (
  const [transportName, transport, address] of [
    ["memory transport", Transport.layerMemory, "memory:0"],
    [
      "memory transport, split and coalesced chunks",
      Transport.layerMemoryWith({ fragment: { seed: 7, maxChunkBytes: 48 } }),
      "memory:0"
    ],
    ["TCP transport", Transport.layerTcp(), "127.0.0.1:0"],
    ["mutual-TLS transport", tls, "127.0.0.1:0"]
  ] as const
) {
  const Infra = Layer.mergeAll(transport, Registry.layerMemory, Codec.layer, Selector.layer)

  const serve = (node: string, events: Array<string> = []) =>
    Server.layer(Testing, { name: "testing", address, id: node }).pipe(Layer.provide(handlers(node, events)))

  const env = (events: Array<string> = []) =>
    Layer.mergeAll(serve("n1", events), Client.layer()).pipe(Layer.provideMerge(Infra))

  const client = Client.make(Testing, { service: "testing" })

  /** Polls a condition on real time (bounded): for waiting on another fiber's side effect under TestClock. */
  const waitUntil = (condition: () => boolean, timeoutMillis = 5000) =>
    Effect.promise(async () => {
      const deadline = Date.now() + timeoutMillis
      while (!condition()) {
        if (Date.now() > deadline) throw new Error("condition not met in time")
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })

  describe(`RPC over the ${transportName}`, () => {
    it.scoped("unary call", () =>
      Effect.gen(function*() {
        const testing = yield* client
        expect(yield* testing.Hello({ name: "Ada" })).toBe("Hello, Ada!")
      }).pipe(Effect.provide(env())))

    it.scoped("typed endpoint error is decoded into its own class", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const error = yield* Effect.flip(testing.Hello({ name: "nobody" }))
        expect(error).toBeInstanceOf(UnknownName)
        expect(error).toMatchObject({ _tag: "UnknownName", name: "nobody" })
      }).pipe(Effect.provide(env())))

    it.scoped("handler defect becomes InternalServerError", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const error = yield* Effect.flip(testing.Boom({ message: "kaput" }))
        expect(error._tag).toBe("InternalServerError")
        expect(error).toMatchObject({ code: 500, id: "testing" })
        expect((error as any).detail).toContain("kaput")
        // the server keeps serving
        expect(yield* testing.Hello({ name: "Bo" })).toBe("Hello, Bo!")
      }).pipe(Effect.provide(env())))

    it.scoped("server streaming", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const items = yield* Stream.runCollect(testing.Countdown({ from: 5 }))
        expect(Chunk.toReadonlyArray(items)).toEqual([5, 4, 3, 2, 1, 0])
      }).pipe(Effect.provide(env())))

    it.scoped("server streaming with backpressure: more items than the window", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const items = yield* Stream.runCollect(testing.Countdown({ from: 999 }))
        expect(items.length).toBe(1000)
        expect(Chunk.unsafeLast(items)).toBe(0)
      }).pipe(Effect.provide(env())))

    it.scoped("closing a server stream early cancels it", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const items = yield* Stream.runCollect(testing.Countdown({ from: 1_000_000 }).pipe(Stream.take(3)))
        expect(Chunk.toReadonlyArray(items)).toEqual([1_000_000, 999_999, 999_998])
        expect(yield* testing.Hello({ name: "after" })).toBe("Hello, after!")
      }).pipe(Effect.provide(env())))

    it.scoped("client streaming", () =>
      Effect.gen(function*() {
        const testing = yield* client
        expect(yield* testing.Sum(Stream.range(1, 100))).toBe(5050)
      }).pipe(Effect.provide(env())))

    it.scoped("bidirectional streaming with half-close", () =>
      Effect.gen(function*() {
        const testing = yield* client
        // the client ends its side ("bye" is not needed): the server still answers and says goodbye
        const replies = yield* Stream.runCollect(testing.Chat(Stream.make("a", "b", "c")))
        expect(Chunk.toReadonlyArray(replies)).toEqual(["echo: a", "echo: b", "echo: c", "goodbye"])
      }).pipe(Effect.provide(env())))

    it.scoped("bidi: the server ends first", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const replies = yield* Stream.runCollect(testing.Chat(Stream.make("a", "bye", "never seen")))
        expect(Chunk.toReadonlyArray(replies)).toEqual(["echo: a", "goodbye"])
      }).pipe(Effect.provide(env())))

    it.scoped("bidi: a typed error ends the stream as that error", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const exit = yield* Effect.exit(Stream.runCollect(testing.Chat(Stream.make("a", "nobody", "c"))))
        expect(Exit.isFailure(exit)).toBe(true)
        const error = yield* Effect.flip(Stream.runCollect(testing.Chat(Stream.make("nobody"))))
        expect(error).toBeInstanceOf(UnknownName)
      }).pipe(Effect.provide(env())))

    it.scoped("bidi with a long input stream respects flow control", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const replies = yield* Stream.runCollect(testing.Chat(Stream.range(1, 500).pipe(Stream.map(String))))
        expect(replies.length).toBe(501)
      }).pipe(Effect.provide(env())))

    it.scoped("metadata travels to the handler", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const seen = yield* testing.WhoAmI(undefined, { metadata: { "X-Tenant": "acme" } })
        expect(seen).toMatchObject({ "x-tenant": "acme", endpoint: "WhoAmI" })
      }).pipe(Effect.provide(env())))

    it.scoped("raw bytes codec", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const reply = yield* testing.Bytes(new Uint8Array([0, 1, 254]), { contentType: "application/octet-stream" })
        expect([...reply]).toEqual([255, 254, 1])
      }).pipe(Effect.provide(env())))

    it.scoped("msgpack content-type", () =>
      Effect.gen(function*() {
        const testing = yield* client
        expect(yield* testing.Hello({ name: "Mo" }, { contentType: "application/msgpack" })).toBe("Hello, Mo!")
        const error = yield* Effect.flip(testing.Hello({ name: "nobody" }, { contentType: "application/msgpack" }))
        expect(error).toBeInstanceOf(UnknownName)
      }).pipe(Effect.provide(env())))

    it.scoped("unknown content-type is a typed BadRequest on the client", () =>
      Effect.gen(function*() {
        const testing = yield* client
        const error = yield* Effect.flip(testing.Hello({ name: "x" }, { contentType: "text/x-nope" }))
        expect(error._tag).toBe("BadRequest")
      }).pipe(Effect.provide(env())))

    it.scoped("deadline: the server stops the handler and the caller gets Timeout", () =>
      Effect.gen(function*() {
        const events: Array<string> = []
        const result = yield* Effect.gen(function*() {
          const testing = yield* client
          const fiber = yield* Effect.fork(testing.Sleep({ millis: 60_000 }, { timeout: "1 second", retry: false }))
          yield* TestClock.adjust("2 seconds")
          return yield* Fiber.join(fiber).pipe(Effect.flip)
        }).pipe(Effect.provide(env(events)))
        expect(result._tag).toBe("Timeout")
        // give the server side its turn to run the interruption finalizer
        yield* Effect.yieldNow()
        expect(events).toContain("sleep-interrupted:60000")
      }))

    it.scoped("interrupting the caller cancels the handler on the server", () =>
      Effect.gen(function*() {
        const events: Array<string> = []
        yield* Effect.gen(function*() {
          const testing = yield* client
          const fiber = yield* Effect.fork(testing.Sleep({ millis: 50_000 }, { timeout: "1 minute" }))
          yield* waitUntil(() => events.includes("sleep-started:50000"))
          yield* Fiber.interrupt(fiber)
          yield* waitUntil(() => events.includes("sleep-interrupted:50000"))
        }).pipe(Effect.provide(env(events)))
        expect(events).toEqual(["sleep-started:50000", "sleep-interrupted:50000"])
      }))

    it.scoped("a call abandoned by Effect.timeout is cancelled on the server", () =>
      Effect.gen(function*() {
        const events: Array<string> = []
        yield* Effect.gen(function*() {
          const testing = yield* client
          const fiber = yield* Effect.fork(
            Effect.timeout(testing.Sleep({ millis: 40_000 }, { timeout: "1 minute" }), "1 second")
          )
          yield* waitUntil(() => events.includes("sleep-started:40000"))
          yield* TestClock.adjust("2 seconds")
          const result = yield* Fiber.join(fiber).pipe(Effect.flip)
          expect(result._tag).toBe("TimeoutException")
          yield* waitUntil(() => events.includes("sleep-interrupted:40000"))
        }).pipe(Effect.provide(env(events)))
      }))

    it.scoped("a fiber interrupted mid-call that calls again from a finalizer cancels the first call", () =>
      Effect.gen(function*() {
        const events: Array<string> = []
        yield* Effect.gen(function*() {
          const testing = yield* client
          // The finalizer runs on the interrupted fiber itself (which has not exited yet) and makes a second
          // call on it: the first (abandoned) call must be cancelled before the fiber exits.
          let cancelledBeforeExit = false
          const fiber = yield* Effect.fork(
            testing.Sleep({ millis: 30_000 }, { timeout: "1 minute" }).pipe(
              Effect.onInterrupt(() =>
                Effect.orDie(testing.Hello({ name: "after" })).pipe(
                  Effect.zipRight(waitUntil(() => events.includes("sleep-interrupted:30000"), 2000)),
                  Effect.tap(() => {
                    cancelledBeforeExit = true
                  })
                )
              )
            )
          )
          yield* waitUntil(() => events.includes("sleep-started:30000"))
          yield* Fiber.interrupt(fiber)
          expect(cancelledBeforeExit).toBe(true)
        }).pipe(Effect.provide(env(events)))
      }))

    it.scoped("ServiceNotFound when nothing is registered", () =>
      Effect.gen(function*() {
        const other = yield* Client.make(Testing, { service: "missing" })
        const error = yield* Effect.flip(other.Hello({ name: "x" }))
        expect(error._tag).toBe("ServiceNotFound")
      }).pipe(Effect.provide(env())))
  })
}
