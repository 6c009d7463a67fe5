/**
 * effect-micro: a microservice framework on Effect 3.
 * @since 0.1.0
 */
export * as Auth from "./Auth.js"
export * as AuthMiddleware from "./AuthMiddleware.js"
export * as CachedRegistry from "./CachedRegistry.js"
export * as Certificates from "./Certificates.js"
export * as Client from "./Client.js"
export * as Codec from "./Codec.js"
export * as Contract from "./Contract.js"
export * as Defaults from "./Defaults.js"
export * as DynamicConfig from "./DynamicConfig.js"
export * as Errors from "./Errors.js"
export * as MdnsRegistry from "./MdnsRegistry.js"
export * as Metadata from "./Metadata.js"
export * as Protobuf from "./Protobuf.js"
export * as Registry from "./Registry.js"
export * as Selector from "./Selector.js"
export * as Server from "./Server.js"
export * as Store from "./Store.js"
export * as TlsTransport from "./TlsTransport.js"
export * as Transport from "./Transport.js"
