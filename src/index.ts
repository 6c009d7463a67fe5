/**
 * effect-micro: a microservice framework on Effect 3.
 * @since 0.1.0
 */
/**
 * Authentication and authorization
 * @since 0.1.0
 */
export * as Auth from "./Auth.js"
/**
 * Auth for the RPC runtime and the broker
 * @since 0.1.0
 */
export * as AuthMiddleware from "./AuthMiddleware.js"
/**
 * Access rules
 * @since 0.1.0
 */
export * as AuthRules from "./AuthRules.js"
/**
 * Asynchronous messaging
 * @since 0.1.0
 */
export * as Broker from "./Broker.js"
/**
 * A caching wrapper for any `Registry`
 * @since 0.1.0
 */
export * as CachedRegistry from "./CachedRegistry.js"
/**
 * A project certificate authority for mutual TLS between services.
 * @since 0.1.0
 */
export * as Certificates from "./Certificates.js"
/**
 * Call services by name.
 * @since 0.1.0
 */
export * as Client from "./Client.js"
/**
 * Message encoding by content-type.
 * @since 0.1.0
 */
export * as Codec from "./Codec.js"
/**
 * Contracts are `@effect/rpc` `RpcGroup`s of `Rpc`s.
 * @since 0.1.0
 */
export * as Contract from "./Contract.js"
/**
 * What a running service says about itself
 * @since 0.1.0
 */
export * as Debug from "./Debug.js"
/**
 * A web dashboard of the system (an HttpRouter)
 * @since 0.1.0
 */
export * as Dashboard from "./Dashboard.js"
/**
 * The zero-configuration stack
 * @since 0.1.0
 */
export * as Defaults from "./Defaults.js"
/**
 * Dynamic configuration
 * @since 0.1.0
 */
export * as DynamicConfig from "./DynamicConfig.js"
/**
 * Framework errors.
 * @since 0.1.0
 */
export * as Errors from "./Errors.js"
/**
 * The HTTP API gateway: JSON, SSE, WebSocket and OpenAPI in front of any service
 * @since 0.1.0
 */
export * as Gateway from "./Gateway.js"
/**
 * The default broker
 * @since 0.1.0
 */
export * as HttpBroker from "./HttpBroker.js"
/**
 * The zero-config Registry
 * @since 0.1.0
 */
export * as MdnsRegistry from "./MdnsRegistry.js"
/**
 * Per-call metadata
 * @since 0.1.0
 */
export * as Metadata from "./Metadata.js"
/**
 * `application/protobuf`
 * @since 0.1.0
 */
export * as Protobuf from "./Protobuf.js"
/**
 * Service discovery.
 * @since 0.1.0
 */
export * as Registry from "./Registry.js"
/**
 * Client-side load balancing
 * @since 0.1.0
 */
export * as Selector from "./Selector.js"
/**
 * Serve a contract
 * @since 0.1.0
 */
export * as Server from "./Server.js"
/**
 * A service's own identity on the client side
 * @since 0.1.0
 */
export * as ServiceIdentity from "./ServiceIdentity.js"
/**
 * Key/value records that outlive a prototype
 * @since 0.1.0
 */
export * as Store from "./Store.js"
/**
 * Server-side subscribers (go-micro's `micro.RegisterSubscriber`)
 * @since 0.1.0
 */
export * as Subscriber from "./Subscriber.js"
/**
 * Where spans and logs go: OTLP/HTTP export or the console
 * @since 0.1.0
 */
export * as Telemetry from "./Telemetry.js"
/**
 * Mutual TLS transport
 * @since 0.1.0
 */
export * as TlsTransport from "./TlsTransport.js"
/**
 * Typed topics
 * @since 0.1.0
 */
export * as Topic from "./Topic.js"
/**
 * Opt-in distributed tracing.
 * @since 0.1.0
 */
export * as Tracing from "./Tracing.js"
/**
 * Byte transports
 * @since 0.1.0
 */
export * as Transport from "./Transport.js"
