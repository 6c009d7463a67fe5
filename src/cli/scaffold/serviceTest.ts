/** Template: `test/service.test.ts`, the service tested in memory. */
import type { Names } from "./names.js"

export const serviceTest = ({ contract, service }: Names): string =>
  `/**
 * ${service} tested in one process: \`Defaults.layerTest\` is the default stack in memory (registry, transport,
 * broker, store), so the server and the test's client find each other and talk without network or disk.
 * Each test builds its own system.
 */
import { describe, expect, it } from "@effect/vitest"
import { Client, Defaults, Server } from "effect-micro"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { ${contract}, Greeting, NameRejected } from "../src/contract.js"
import { HandlersLive } from "../src/handlers.js"

const TestSystem = Server.layer(${contract}, { name: "${service}" }).pipe(
  Layer.provide(HandlersLive),
  Layer.provideMerge(Defaults.layerTest)
)

const connect = Client.make(${contract}, { service: "${service}" })

describe("${service}", () => {
  it.scoped("Hello greets by name", () =>
    Effect.gen(function*() {
      const client = yield* connect
      expect(yield* client.Hello({ name: "Ada" })).toEqual(new Greeting({ message: "Hello, Ada!" }))
    }).pipe(Effect.provide(TestSystem)))

  it.scoped("Hello fails with NameRejected on a blank name", () =>
    Effect.gen(function*() {
      const client = yield* connect
      const error = yield* Effect.flip(client.Hello({ name: " " }))
      expect(error).toBeInstanceOf(NameRejected)
      expect(error).toMatchObject({ name: " ", reason: "the name is blank" })
    }).pipe(Effect.provide(TestSystem)))

  it.scoped("Countdown streams from \`from\` down to 0", () =>
    Effect.gen(function*() {
      const client = yield* connect
      const ticks = yield* Stream.runCollect(client.Countdown({ from: 3 }))
      expect(Chunk.toReadonlyArray(ticks).map((tick) => tick.remaining)).toEqual([3, 2, 1, 0])
    }).pipe(Effect.provide(TestSystem)))

  it.scoped("a payload outside its Schema fails with CodecError, before it is sent", () =>
    Effect.gen(function*() {
      const client = yield* connect
      const error = yield* Effect.flip(Stream.runCollect(client.Countdown({ from: 1000 })))
      expect(error._tag).toBe("CodecError")
    }).pipe(Effect.provide(TestSystem)))
})
`
