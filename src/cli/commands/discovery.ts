/** Looking services up for the commands: every service, or every version of one. */
import * as Effect from "effect/Effect"
import type { ServiceNotFound } from "../../Errors.js"
import { type Node, Registry, type RegistryError, type Service } from "../../Registry.js"
import type { RegistryOptions } from "../options.js"

/**
 * A fresh mdns registry knows only what answered its start-up browse, so listing waits for the answers
 * (they come within a few tens of ms on a LAN; mdns responders delay up to 120 ms, RFC 6762 §6).
 */
const browseMillis = 500

/** Every registered service (one entry per name and version). */
export const listServices = (
  options: RegistryOptions
): Effect.Effect<ReadonlyArray<Service>, RegistryError, Registry> =>
  Effect.flatMap(Registry, (registry) =>
    options.registry === "mdns"
      ? Effect.zipRight(Effect.sleep(browseMillis), registry.listServices)
      : registry.listServices)

/** Every version of `name` (lookups of one name query mdns themselves). */
export const getService = (
  name: string
): Effect.Effect<ReadonlyArray<Service>, ServiceNotFound | RegistryError, Registry> =>
  Effect.flatMap(Registry, (registry) => registry.getService(name))

/** Each node once, with the version it runs. */
export const nodesOf = (services: ReadonlyArray<Service>) =>
  services.flatMap((service) =>
    service.nodes.map((node) => ({ service: service.name, version: service.version, node }))
  )

/**
 * The HTTP broker advertises each subscription as a registry entry whose nodes carry `broker` metadata; those
 * nodes serve POSTed messages, not RPC (no `Debug.Health` to ask).
 */
export const isSubscription = (node: Node): boolean => node.metadata.broker !== undefined
