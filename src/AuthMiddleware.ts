/**
 * Auth for the RPC runtime and the broker: the server enforces the rules on every call, the client attaches
 * its service token to every call; publishes carry the token and subscribers enforce the rules per message.
 *
 * ```ts
 * // server: every call is checked against the rules; handlers read `Auth.CurrentAccount`
 * Server.layer(Greeter, { name: "greeter" }).pipe(
 *   Layer.provide(GreeterLive),
 *   Layer.provide(AuthMiddleware.layerServer()),
 *   Layer.provide(Layer.mergeAll(Auth.layerJwtVerifier({ publicKeys }), AuthRules.layer(rules)))
 * )
 * // client: the service's own token on every call, refreshed once on "token expired"
 * AuthMiddleware.layerClient().pipe(Layer.provide(ServiceIdentity.layer({ credentials })))
 * // messaging: publishes carry the token, subscribers check the rules for { type: "topic", name, endpoint: "publish" }
 * AuthMiddleware.layerBroker.pipe(Layer.provide(HttpBroker.layer()))
 * ```
 *
 * See docs/auth.md ("Wiring it into servers and clients", "Messaging").
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Auth } from "./Auth.js"
import { authorizer, resourceAuthorizer } from "./Auth.js"
import type { Rules } from "./AuthRules.js"
import { Broker } from "./Broker.js"
import * as Client from "./Client.js"
import type { Codecs } from "./Codec.js"
import * as internalBroker from "./internal/auth/broker.js"
import * as internal from "./internal/auth/middleware.js"
import type { Registry } from "./Registry.js"
import type { Selector } from "./Selector.js"
import type { Middleware } from "./Server.js"
import { ServerMiddleware } from "./Server.js"
import { ServiceIdentity } from "./ServiceIdentity.js"
import type { Transport } from "./Transport.js"

/**
 * Whether a token must arrive over an mTLS connection authenticated as the token's own account:
 * `"never"` (default), `"service"` (service accounts only; user tokens forwarded by a service pass) or
 * `"always"`. A mismatch, or no peer certificate, is `Forbidden`.
 * @since 0.1.0
 * @category models
 */
export type PeerIdentityMatch = internal.PeerIdentityMatch

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Bind tokens to mTLS identities (see `PeerIdentityMatch`). Default "never". */
  readonly matchPeerIdentity?: PeerIdentityMatch | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerLayerOptions extends ServerOptions {
  /** Middleware outside auth (outermost first): it also sees the calls auth rejects (logging, metrics). Default: none. */
  readonly before?: ReadonlyArray<Middleware> | undefined
  /** Middleware inside auth (outermost first): runs for authorized calls only and sees `CurrentAccount`. Default: none. */
  readonly then?: ReadonlyArray<Middleware> | undefined
}

/**
 * The server middleware: reads `authorization: Bearer <token>`, inspects it, verifies the rules for
 * `{ type: "service", name: call.service, endpoint: call.endpoint }` (failing with `Unauthorized` or
 * `Forbidden`, which reach the caller typed) and provides `Auth.CurrentAccount` to the handler.
 * `Auth` and `Rules` are bound once; rule changes apply to the next call.
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (options?: ServerOptions): Effect.Effect<Middleware, never, Auth | Rules> =>
  Effect.map(authorizer, (authorize) => internal.makeServerMiddleware(authorize, options))

/**
 * Sets the servers' middleware to `[...before, auth, ...then]`. It replaces `Server.layerMiddleware` (the
 * middleware reference holds one list), so pass other middleware here.
 * @since 0.1.0
 * @category layers
 */
export const layerServer = (options?: ServerLayerOptions): Layer.Layer<ServerMiddleware, never, Auth | Rules> =>
  Layer.effect(
    ServerMiddleware,
    Effect.map(makeServer(options), (auth) => [...(options?.before ?? []), auth, ...(options?.then ?? [])])
  )

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /**
   * On an `Unauthorized` "token expired" reply to a call carrying the service token: refresh the token once
   * and retry the call once. Default true. (Streaming calls get the token but are not retried: their
   * errors arrive in the stream, after the call was opened.)
   */
  readonly refreshOnExpiry?: boolean | undefined
}

/**
 * The client middleware: adds `authorization: Bearer <service token>` to every call that carries no
 * `authorization` entry yet (a per-call user token wins and is passed on untouched).
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (options?: ClientOptions): Effect.Effect<Client.ClientMiddleware, never, ServiceIdentity> =>
  Effect.flatMap(ServiceIdentity, (identity) => internal.makeClientMiddleware(identity, options))

/**
 * `Client.layer` with the auth middleware added innermost (after `middleware`, so it sees their metadata
 * changes and retries only the call itself).
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (
  options?:
    & Client.ClientOptions
    & ClientOptions
    & { readonly middleware?: ReadonlyArray<Client.ClientMiddleware> | undefined }
): Layer.Layer<Client.Client, never, ServiceIdentity | Registry | Selector | Transport | Codecs> =>
  Layer.unwrapEffect(
    Effect.map(makeClient(options), (auth) => {
      const { middleware, refreshOnExpiry: _, ...clientOptions } = options ?? {}
      return Client.layer({ ...clientOptions, middleware: [...(middleware ?? []), auth] })
    })
  )

/**
 * True for the `Unauthorized` reply to an expired access token (what `refreshOnExpiry` reacts to).
 * @since 0.1.0
 * @category guards
 */
export const isTokenExpired: (error: unknown) => boolean = internal.isTokenExpired

// ----- broker -----

/**
 * A `Broker` wrapped with auth. `identity`: publishes without an `authorization` header get
 * `authorization: Bearer <identity token>`. `authorize`: every received message is checked against the
 * rules for `Auth.topicResource(topic)` before the handler, which then reads `Auth.CurrentAccount`; a refused
 * message fails its delivery with reason `Unauthorized` or `Forbidden`. Either may be left out.
 * @since 0.1.0
 * @category constructors
 */
export const wrapBroker: (
  broker: Broker.Service,
  options: {
    readonly identity?: ServiceIdentity.Service | undefined
    readonly authorize?: internalBroker.MessageAuthorizer | undefined
  }
) => Broker.Service = internalBroker.wrapBroker

/**
 * Wraps the `Broker` in context both ways: publishes carry the service's token (per-publish
 * `authorization` header wins), subscribers enforce the rules. Provide the inner broker to it:
 * `AuthMiddleware.layerBroker.pipe(Layer.provide(HttpBroker.layer()))`.
 * @since 0.1.0
 * @category layers
 */
export const layerBroker: Layer.Layer<Broker, never, Broker | ServiceIdentity | Auth | Rules> = Layer.effect(
  Broker,
  Effect.all([Broker, ServiceIdentity, resourceAuthorizer]).pipe(
    Effect.map(([broker, identity, authorize]) => internalBroker.wrapBroker(broker, { identity, authorize }))
  )
)

/**
 * Publishing side only: publishes carry the service's token; subscribers are not checked (a process that
 * only publishes needs no `Auth`/`Rules`).
 * @since 0.1.0
 * @category layers
 */
export const layerBrokerPublisher: Layer.Layer<Broker, never, Broker | ServiceIdentity> = Layer.effect(
  Broker,
  Effect.map(
    Effect.zip(Broker, ServiceIdentity),
    ([broker, identity]) => internalBroker.wrapBroker(broker, { identity })
  )
)

/**
 * Subscribing side only: every received message is checked against the rules before its handler; publishes
 * are sent as given, plus the `ServiceIdentity`'s token if one is in context.
 * @since 0.1.0
 * @category layers
 */
export const layerBrokerSubscriber: Layer.Layer<Broker, never, Broker | Auth | Rules> = Layer.effect(
  Broker,
  Effect.all([Broker, Effect.serviceOption(ServiceIdentity), resourceAuthorizer]).pipe(
    Effect.map(([broker, identity, authorize]) =>
      internalBroker.wrapBroker(broker, { identity: Option.getOrUndefined(identity), authorize })
    )
  )
)
