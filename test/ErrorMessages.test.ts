/**
 * Errors name their target: a failed call says which service, endpoint and node, after how many attempts;
 * a listen failure says why and what to do; a handler defect keeps the error's tag; an unknown service
 * suggests close names.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as net from "node:net"
import type { Errors } from "../src/index.js"
import { Client, Codec, Registry, Selector, Server, Transport } from "../src/index.js"
import { closeNames } from "../src/internal/common/text.js"

class UnknownSku extends Schema.TaggedError<UnknownSku>()("UnknownSku", { sku: Schema.String }) {}

const Inventory = RpcGroup.make(
  Rpc.make("Get", { payload: { sku: Schema.String }, success: Schema.Number }),
  Rpc.make("Slow", { payload: { millis: Schema.Number }, success: Schema.Number })
)

const handlers = Inventory.toLayer({
  // A typed error turned into a defect (orDie): the caller should still learn what it was.
  Get: ({ sku }) => sku === "nope" ? Effect.die(new UnknownSku({ sku })) : Effect.succeed(1),
  Slow: ({ millis }) => Effect.as(Effect.sleep(millis), 1)
})

/** A TCP port that refuses connections (listened on, then closed). */
const closedPort = Effect.promise(() =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
)

const Tcp = Layer.mergeAll(Transport.layerTcp(), Registry.layerMemory, Codec.layer, Selector.layer)

const serve = (address = "127.0.0.1:0") =>
  Server.layer(Inventory, { name: "inventory", address }).pipe(Layer.provide(handlers))

describe("error messages name their target", () => {
  it.scoped("a dead node: service, endpoint, node address, attempts and nodes", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      const registry = yield* Registry.Registry
      yield* registry.register({
        name: "inventory",
        version: "latest",
        metadata: {},
        endpoints: [],
        nodes: [{ id: "dead", address: `127.0.0.1:${port}`, metadata: {} }]
      })
      const inventory = yield* Client.make(Inventory, {
        service: "inventory",
        retry: Schedule.recurs(2)
      })
      const error = yield* Effect.flip(inventory.Get({ sku: "a" }))
      expect(error._tag).toBe("TransportError")
      if (error._tag !== "TransportError") return
      expect(error).toMatchObject({
        reason: "refused",
        service: "inventory",
        endpoint: "Get",
        node: `127.0.0.1:${port}`,
        attempts: 3,
        nodes: 1
      })
      expect(error.message).toBe(
        `inventory.Get: connection refused by 127.0.0.1:${port} after 3 attempts on 1 node`
      )
      expect(String(error)).toContain("TransportError: inventory.Get: connection refused")
    }).pipe(Effect.provide(Client.layer().pipe(Layer.provideMerge(Tcp)))))

  it.scopedLive("a timeout names the call and the node", () =>
    Effect.gen(function*() {
      const inventory = yield* Client.make(Inventory, { service: "inventory", timeout: "50 millis", retry: false })
      const error = yield* Effect.flip(inventory.Slow({ millis: 2000 }))
      expect(error._tag).toBe("Timeout")
      expect(error).toMatchObject({ service: "inventory", endpoint: "Slow", attempts: 1, nodes: 1 })
      expect(error.message).toMatch(/^inventory\.Slow: .* after 1 attempt on 1 node$/)
      expect(error.message).toContain((error as Errors.Timeout).node!)
    }).pipe(Effect.provide(Layer.mergeAll(Client.layer(), serve()).pipe(Layer.provideMerge(Tcp)))))

  it.scoped("an unknown service suggests close names", () =>
    Effect.gen(function*() {
      const client = yield* Client.make(Inventory, { service: "inventroy", retry: false })
      const error = yield* Effect.flip(client.Get({ sku: "a" }))
      expect(error._tag).toBe("ServiceNotFound")
      expect(error.message).toContain(`did you mean "inventory"?`)
      expect(error.message.startsWith("inventroy.Get: ")).toBe(true)
      expect(error).toMatchObject({ service: "inventroy", endpoint: "Get", attempts: 0, nodes: 0 })
    }).pipe(Effect.provide(Layer.mergeAll(Client.layer(), serve()).pipe(Layer.provideMerge(Tcp)))))

  it.scoped("a handler defect keeps the error's tag and message, not its stack", () =>
    Effect.gen(function*() {
      const inventory = yield* Client.make(Inventory, { service: "inventory" })
      const error = yield* Effect.flip(inventory.Get({ sku: "nope" }))
      expect(error._tag).toBe("InternalServerError")
      expect(error.detail).toBe(`handler died: UnknownSku: { "sku": "nope" }`)
      expect(error.detail).not.toContain("    at ")
      expect(error.message).toBe(`inventory.Get: handler died: UnknownSku: { "sku": "nope" } after 1 attempt on 1 node`)
    }).pipe(Effect.provide(Layer.mergeAll(Client.layer(), serve()).pipe(Layer.provideMerge(Tcp)))))

  it.scoped("two servers on one fixed port: a listen failure that says what to do", () =>
    Effect.gen(function*() {
      const port = yield* closedPort
      yield* Layer.build(serve(`127.0.0.1:${port}`))
      const error = yield* Effect.flip(Layer.build(serve(`127.0.0.1:${port}`)))
      expect(error._tag).toBe("TransportError")
      expect(error).toMatchObject({ reason: "listen", notDelivered: false })
      expect(error.message).toBe(
        `listen on 127.0.0.1:${port} failed: the address is in use (another server listens there): ` +
          `stop it, pick another port, or use port 0 to let the OS choose one`
      )
    }).pipe(Effect.provide(Tcp)))

  it("closeNames: case, separators and small typos; nothing for unrelated names", () => {
    const known = ["inventory", "orders", "notifier", "order-history"]
    expect(closeNames("inventroy", known)).toEqual(["inventory"])
    expect(closeNames("Orders", known)).toEqual(["orders"])
    expect(closeNames("order_history", known)).toEqual(["order-history"])
    expect(closeNames("billing", known)).toEqual([])
    expect(closeNames("inventory", known)).toEqual([])
  })
})
