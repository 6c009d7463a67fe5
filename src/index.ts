/**
 * effect-micro: a microservice framework on Effect 3.
 * @since 0.1.0
 */
export * as Codec from "./Codec.js"
export * as Errors from "./Errors.js"
export * as Registry from "./Registry.js"
