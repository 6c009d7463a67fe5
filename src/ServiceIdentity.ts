/**
 * A service's own identity on the client side: it logs in with its credentials at start-up and keeps a
 * fresh access token in the background (refreshing before expiry, retrying with backoff), so outgoing calls
 * never wait for a token. `outgoingMetadata` adds the bearer token to a call's metadata;
 * `AuthMiddleware.layerClient` does it for every call.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { AuthError, Credentials, Token, TokenRequest } from "./Auth.js"
import { Auth, bearer } from "./Auth.js"
import type { MicroError } from "./Errors.js"
import * as internalIdentity from "./internal/auth/identity.js"

/**
 * What a token source may fail with: a call to a remote auth service fails with framework errors.
 * @since 0.1.0
 * @category models
 */
export type IdentityError = MicroError | AuthError

/**
 * @since 0.1.0
 * @category models
 */
export interface ServiceIdentityOptions {
  /** The service account's credentials (id and secret), passed to `issue` to log in. */
  readonly credentials: Credentials
  /** Where tokens come from: `Auth.token` locally, or a client of a remote auth service. */
  readonly issue: (request: TokenRequest) => Effect.Effect<Token, IdentityError>
  /** Refresh this long before expiry (at most half the token's lifetime). Default: 30 seconds. */
  readonly refreshBefore?: Duration.DurationInput | undefined
  /** Between failed refresh attempts. Default: exponential from 200 ms, capped at 30 s, forever. */
  readonly retrySchedule?: Schedule.Schedule<unknown, IdentityError> | undefined
}

/**
 * A service's own identity: logs in at start-up and keeps a fresh access token.
 * @since 0.1.0
 * @category tags
 */
export class ServiceIdentity extends Context.Tag("effect-micro/ServiceIdentity")<
  ServiceIdentity,
  ServiceIdentity.Service
>() {}

/**
 * @since 0.1.0
 */
export declare namespace ServiceIdentity {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The account id. */
    readonly id: string
    /** The current access token (never waits: refreshing happens in the background). */
    readonly currentToken: Effect.Effect<string>
    readonly current: Effect.Effect<Token>
    /** Refreshes now (e.g. after a server said "token expired" because of clock skew). */
    readonly refresh: Effect.Effect<void, IdentityError>
  }
}

/**
 * Logs in (failing if that fails) and forks the refresher into the scope.
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options: ServiceIdentityOptions
) => Effect.Effect<ServiceIdentity.Service, IdentityError, Scope.Scope> = internalIdentity.makeIdentity

/**
 * A service identity whose tokens come from the `Auth` layer in context.
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Omit<ServiceIdentityOptions, "issue">
): Layer.Layer<ServiceIdentity, IdentityError, Auth> =>
  Layer.scoped(
    ServiceIdentity,
    Effect.flatMap(Auth, (auth) => make({ ...options, issue: (request) => auth.token(request) }))
  )

/**
 * A service identity with its own token source (e.g. an RPC client of the auth service).
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: ServiceIdentityOptions): Layer.Layer<ServiceIdentity, IdentityError> =>
  Layer.scoped(ServiceIdentity, make(options))

/**
 * Metadata for an outgoing call: `metadata` plus the identity's bearer token, unless `metadata` already has
 * an `authorization` entry (a per-call override wins).
 * @since 0.1.0
 * @category combinators
 */
export const outgoingMetadata = (
  metadata?: Readonly<Record<string, string>> | undefined
): Effect.Effect<Readonly<Record<string, string>>, never, ServiceIdentity> => {
  if (metadata !== undefined && Object.keys(metadata).some((key) => key.toLowerCase() === "authorization")) {
    return Effect.succeed(metadata)
  }
  return Effect.flatMap(
    ServiceIdentity,
    (identity) => Effect.map(identity.currentToken, (token) => ({ ...metadata, ...bearer(token) }))
  )
}
