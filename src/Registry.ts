/**
 * Service discovery. A registered service is a name and version with metadata, endpoints and the nodes
 * (id + address) that serve it. Servers register on start (with a TTL) and deregister before they stop;
 * clients resolve names to nodes.
 *
 * Layers: `layerMemory` (tests, one process), `layerStatic` (nodes given by address), `MdnsRegistry`
 * (zero-config default), `plugins/etcd` (production).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ServiceNotFound } from "./Errors.js"
import * as internal from "./internal/registry/memory.js"

/**
 * One running instance of a service.
 * @since 0.1.0
 * @category models
 */
export interface Node {
  readonly id: string
  /** `host:port` the node's transport listens on. */
  readonly address: string
  readonly metadata: Readonly<Record<string, string>>
}

/**
 * An endpoint a service exposes (informational: for browsing, filtering and gateways).
 * @since 0.1.0
 * @category models
 */
export interface Endpoint {
  readonly name: string
  readonly metadata: Readonly<Record<string, string>>
}

/**
 * A service as the registry knows it: one entry per (name, version).
 * @since 0.1.0
 * @category models
 */
export interface Service {
  readonly name: string
  readonly version: string
  readonly metadata: Readonly<Record<string, string>>
  readonly endpoints: ReadonlyArray<Endpoint>
  readonly nodes: ReadonlyArray<Node>
}

// The namespace below has its own `Service` (the Tag's interface); this alias names the model there.
type ServiceEntry = Service

/**
 * A change seen by `watch`.
 * @since 0.1.0
 * @category models
 */
export interface Event {
  readonly type: "create" | "update" | "delete"
  readonly service: Service
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RegisterOptions {
  /** How long the registration lives unless renewed. Default: no expiry for memory/static, 90 s for mdns/etcd. */
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WatchOptions {
  /** Only events for this service name. Default: every service. */
  readonly service?: string | undefined
}

/**
 * A registry backend failed (network, engine down, malformed record).
 * @since 0.1.0
 * @category errors
 */
export class RegistryError extends Data.TaggedError("RegistryError")<{
  readonly reason: "Unavailable" | "Malformed" | "Unknown"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `registry ${this.reason}: ${this.detail}`
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Registry extends Context.Tag("effect-micro/Registry")<Registry, Registry.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Registry {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Adds (or renews) the given nodes of a service. */
    readonly register: (service: ServiceEntry, options?: RegisterOptions) => Effect.Effect<void, RegistryError>
    /** Removes the given nodes; the service disappears with its last node. */
    readonly deregister: (service: ServiceEntry) => Effect.Effect<void, RegistryError>
    /** Every version of a service that has at least one live node. */
    readonly getService: (name: string) => Effect.Effect<ReadonlyArray<ServiceEntry>, ServiceNotFound | RegistryError>
    /** Every known service (one entry per name and version). */
    readonly listServices: Effect.Effect<ReadonlyArray<ServiceEntry>, RegistryError>
    /** Changes from now on, as a Stream. */
    readonly watch: (options?: WatchOptions) => Stream.Stream<Event, RegistryError>
  }
}

/**
 * An in-process registry: registrations expire on `Clock` (so `TestClock` drives them) and `watch`
 * sees every change, including expiries.
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: Effect.Effect<Registry.Service, never, Scope.Scope> = internal.makeMemory

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Registry> = Layer.scoped(Registry, internal.makeMemory)

/**
 * A fixed registry: service name → node addresses. `register`/`deregister` are accepted and ignored.
 * For running across processes without discovery (and for pointing a client at known hosts).
 * @since 0.1.0
 * @category layers
 */
export const layerStatic: (services: Readonly<Record<string, ReadonlyArray<string>>>) => Layer.Layer<Registry> =
  internal.layerStatic

/**
 * Copies a service keeping only the given nodes.
 * @since 0.1.0
 * @category combinators
 */
export const withNodes = (service: Service, nodes: ReadonlyArray<Node>): Service => ({ ...service, nodes })
