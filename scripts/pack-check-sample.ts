/**
 * Typechecked by scripts/pack-check.sh against the packed tarball (not part of the build): the README's
 * quick start as a user writes it, with the public entry points and a plugin.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Effect, Layer, Schema, Stream } from "effect"
import type { Errors } from "effect-micro"
import { Client, Contract, Defaults, Registry, Server, Store, Transport } from "effect-micro"
import * as Codec from "effect-micro/Codec"
import * as EtcdRegistry from "effect-micro/plugins/etcd/EtcdRegistry"

class NameRejected extends Schema.TaggedError<NameRejected>()("NameRejected", { name: Schema.String }) {}

const Greeter = RpcGroup.make(
  Rpc.make("Hello", { payload: { name: Schema.String }, success: Schema.String, error: NameRejected })
    .annotate(Contract.Idempotent, true),
  Rpc.make("Countdown", { payload: { from: Schema.Int }, success: Schema.Int, stream: true }),
  Contract.bidi("Chat", { payload: Schema.String, success: Schema.String })
)

const GreeterLive = Greeter.toLayer({
  Hello: ({ name }) => name === "" ? Effect.fail(new NameRejected({ name })) : Effect.succeed(`Hello, ${name}!`),
  Countdown: ({ from }) => Stream.iterate(from, (n) => n - 1).pipe(Stream.take(from + 1)),
  Chat: (lines) => Stream.map(lines, (line) => `echo: ${line}`)
})

export const service: Layer.Layer<never, unknown> = Server.layer(Greeter, { name: "greeter" }).pipe(
  Layer.provide(GreeterLive),
  Layer.provide(Defaults.layer)
)

export const caller: Effect.Effect<string, NameRejected | Errors.CallError> = Effect.gen(function*() {
  const greeter = yield* Client.make(Greeter, { service: "greeter" })
  return yield* greeter.Hello({ name: "Ada" })
}).pipe(Effect.provide(Defaults.layer), Effect.orDie)

export const inMemory = Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer, Store.layerMemory())

export const etcd = EtcdRegistry.layer
