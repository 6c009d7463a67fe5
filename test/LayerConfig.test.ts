/**
 * `layerConfig` of the layers that take network or engine options: options come from the `ConfigProvider`,
 * a missing or malformed value is a typed `ConfigError` when the layer is built (never a defect, and before
 * any socket or engine connection).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import { Auth, Broker, Codec, HttpBroker, MdnsRegistry, Registry, Server, Transport } from "../src/index.js"
import * as EtcdRegistry from "../src/plugins/etcd/EtcdRegistry.js"
import * as NatsBroker from "../src/plugins/nats/NatsBroker.js"
import { handlers, Testing } from "./support/contract.js"

const fromMap = (entries: Record<string, string>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(entries))))

/** Builds `layer` and returns the failure's tag, or "ok". */
const buildOutcome = <A, E>(layer: Layer.Layer<A, E>) =>
  Effect.scoped(Layer.build(layer)).pipe(
    Effect.exit,
    Effect.map((exit) =>
      Exit.isSuccess(exit)
        ? "ok"
        : Exit.isFailure(exit) && exit.cause._tag === "Fail"
        ? (exit.cause.error as { _op?: string; _tag?: string })._op ?? (exit.cause.error as { _tag?: string })._tag
        : `defect: ${String(exit)}`
    )
  )

describe("layerConfig", () => {
  it.scoped("Server: name and address from config; the node registers under the configured name", () =>
    Effect.gen(function*() {
      const env = yield* Layer.build(
        Server.layerConfig(Testing, { name: Config.string("SERVICE_NAME"), address: Config.string("SERVICE_ADDRESS") })
          .pipe(
            Layer.provide(handlers("n1")),
            Layer.provideMerge(Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer)),
            Layer.provide(fromMap({ SERVICE_NAME: "from-config", SERVICE_ADDRESS: "memory:0" }))
          )
      )
      const services = yield* Effect.flatMap(Registry.Registry, (r) => r.getService("from-config")).pipe(
        Effect.provide(Layer.succeedContext(env))
      )
      expect(services[0]!.nodes.length).toBe(1)
    }))

  it.effect("Server: a missing option is a ConfigError when the layer is built", () =>
    Effect.gen(function*() {
      const outcome = yield* buildOutcome(
        Server.layerConfig(Testing, { name: Config.string("SERVICE_NAME") }).pipe(
          Layer.provide(handlers("n1")),
          Layer.provide(Layer.mergeAll(Transport.layerMemory, Registry.layerMemory, Codec.layer)),
          Layer.provide(fromMap({}))
        )
      )
      expect(outcome).toBe("MissingData")
    }))

  it.scoped("HttpBroker: host and port from config; a publish reaches the subscriber", () =>
    Effect.gen(function*() {
      const got: Array<number> = []
      const broker = HttpBroker.layerConfig({ host: Config.string("BROKER_HOST"), port: Config.integer("BROKER_PORT") })
        .pipe(
          Layer.provideMerge(Registry.layerMemory),
          Layer.provide(fromMap({ BROKER_HOST: "127.0.0.1", BROKER_PORT: "0" }))
        )
      yield* Effect.gen(function*() {
        yield* Broker.subscribe("configured", (message) => Effect.sync(() => got.push(message.body[0]!)))
        yield* Broker.publish("configured", new Uint8Array([42]))
      }).pipe(Effect.provide(broker))
      expect(got).toEqual([42])
    }))

  it.effect("HttpBroker: a malformed port is a ConfigError, not a defect", () =>
    Effect.gen(function*() {
      const outcome = yield* buildOutcome(
        HttpBroker.layerConfig({ port: Config.integer("BROKER_PORT") }).pipe(
          Layer.provide(Registry.layerMemory),
          Layer.provide(fromMap({ BROKER_PORT: "eighty" }))
        )
      )
      expect(outcome).toBe("InvalidData")
    }))

  it.effect("Auth.layerJwtConfig: the signing key from a JSON config value; tokens issue and verify", () =>
    Effect.gen(function*() {
      const { signingKey } = yield* Auth.generateSigningKey()
      const layer = Auth.layerJwtConfig({
        signingKey: Schema.Config("JWT_SIGNING_KEY", Schema.parseJson(Auth.SigningKey)),
        issuer: Config.string("JWT_ISSUER")
      }).pipe(Layer.provide(fromMap({ JWT_SIGNING_KEY: JSON.stringify(signingKey), JWT_ISSUER: "configured" })))
      const account = yield* Effect.gen(function*() {
        const auth = yield* Auth.Auth
        const { credentials } = yield* auth.generate("svc", { type: "service" })
        const token = yield* auth.token(credentials)
        return yield* auth.inspect(token.accessToken)
      }).pipe(Effect.provide(layer))
      expect(account.issuer).toBe("configured")
    }))

  it.effect("engine plugins and mdns: missing options fail with ConfigError before touching the network", () =>
    Effect.gen(function*() {
      const empty = fromMap({})
      expect(
        yield* buildOutcome(
          EtcdRegistry.layerConfig({ hosts: Config.array(Config.string(), "ETCD_HOSTS") }).pipe(Layer.provide(empty))
        )
      ).toBe("MissingData")
      expect(
        yield* buildOutcome(
          NatsBroker.layerConfig({ servers: Config.string("NATS_URL") }).pipe(Layer.provide(empty))
        )
      ).toBe("MissingData")
      expect(
        yield* buildOutcome(
          MdnsRegistry.layerConfig({ domain: Config.string("MDNS_DOMAIN") }).pipe(Layer.provide(empty))
        )
      ).toBe("MissingData")
    }))
})
