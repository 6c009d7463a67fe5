/**
 * The services the commands run on: the chosen registry, the client runtime (TCP, every codec, the
 * default selector) and the HTTP broker's publisher. Built per command and closed when it ends, so the mdns
 * socket says its goodbyes and the process exits.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Broker } from "../Broker.js"
import * as Client from "../Client.js"
import * as Codec from "../Codec.js"
import * as HttpBroker from "../HttpBroker.js"
import * as MdnsRegistry from "../MdnsRegistry.js"
import type { Registry, RegistryError } from "../Registry.js"
import * as Selector from "../Selector.js"
import * as Transport from "../Transport.js"
import { UsageError } from "./exit.js"
import type { RegistryOptions } from "./options.js"

const mdns = (options: RegistryOptions): Layer.Layer<Registry, RegistryError> => {
  const iface = Option.getOrUndefined(options.mdnsInterface)
  return MdnsRegistry.layer({
    // On loopback the socket must bind every address to see the group (MdnsRegistry.loopback).
    ...(iface === MdnsRegistry.loopback.interface
      ? MdnsRegistry.loopback
      : iface === undefined
      ? {}
      : { interface: iface }),
    ...Option.match(options.mdnsPort, { onNone: () => ({}), onSome: (port) => ({ port }) })
  })
}

// Imported only when asked for: etcd3 is an optional peer dependency.
const etcd = (options: RegistryOptions): Layer.Layer<Registry, RegistryError | UsageError> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.tryPromise({
        try: () => import("../plugins/etcd/EtcdRegistry.js"),
        catch: (error) =>
          new UsageError({ detail: `the etcd registry needs the etcd3 package (npm install etcd3): ${String(error)}` })
      }),
      (EtcdRegistry) =>
        EtcdRegistry.layer({
          hosts: Option.getOrElse(options.etcd, () => "127.0.0.1:2379").split(",").map((host) => host.trim()),
          timeout: Duration.seconds(5)
        })
    )
  )

/** The registry `options` name. */
export const registry = (options: RegistryOptions): Layer.Layer<Registry, RegistryError | UsageError> =>
  options.registry === "etcd" ? etcd(options) : mdns(options)

/** Registry, client runtime and broker publisher. */
export const stack = (
  options: RegistryOptions
): Layer.Layer<Registry | Client.Client | Broker, RegistryError | UsageError> =>
  Layer.merge(Client.layer(), HttpBroker.layer()).pipe(
    Layer.provideMerge(
      Layer.mergeAll(registry(options), Transport.layerTcp(), Codec.layer, Selector.layer)
    )
  )
