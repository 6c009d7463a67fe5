/**
 * Authentication and authorization: accounts, tokens, rules.
 *
 * - `Auth` issues and inspects tokens. `layerJwt` issues EdDSA-signed JWTs (with a `kid` for key rotation);
 *   `layerJwtVerifier` only inspects them, with public keys alone, so services need no auth server on
 *   the call path. `layerMemory` (opaque tokens in a map) and `layerNoop` are for tests.
 * - `authorize` is the server-side check (call metadata → account → rule, the rules being
 *   `AuthRules.Rules`), `CurrentAccount` what handlers read. The client side (credentials → an
 *   always-fresh bearer token) is `ServiceIdentity`.
 *
 * See docs/auth.md for the rule semantics and the token lifecycle.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type { Resource } from "./AuthRules.js"
import { Rules } from "./AuthRules.js"
import type { Forbidden } from "./Errors.js"
import { Unauthorized } from "./Errors.js"
import * as internalAuthorize from "./internal/auth/authorize.js"
import { ERROR_ID, makeIssuer } from "./internal/auth/issuer.js"
import * as internalJwt from "./internal/auth/jwt.js"
import * as internalMemory from "./internal/auth/memory.js"

// ----- models -----

/**
 * @since 0.1.0
 * @category models
 */
export const AccountType = Schema.Literal("user", "service")
/**
 * @since 0.1.0
 * @category models
 */
export type AccountType = typeof AccountType.Type

/**
 * Who a token speaks for. `scopes` are what rules test; `issuer` names the auth layer that issued it.
 * @since 0.1.0
 * @category models
 */
export const Account = Schema.Struct({
  id: Schema.String,
  type: AccountType,
  scopes: Schema.Array(Schema.String),
  metadata: Schema.Record({ key: Schema.String, value: Schema.String }),
  issuer: Schema.String
})
/**
 * @since 0.1.0
 * @category models
 */
export interface Account extends Schema.Schema.Type<typeof Account> {}

/**
 * An account's long-lived login: its id and the secret `generate` returned.
 * @since 0.1.0
 * @category models
 */
export const Credentials = Schema.Struct({ id: Schema.String, secret: Schema.String })
/**
 * @since 0.1.0
 * @category models
 */
export interface Credentials extends Schema.Schema.Type<typeof Credentials> {}

/**
 * @since 0.1.0
 * @category models
 */
export const RefreshRequest = Schema.Struct({ refreshToken: Schema.String })
/**
 * @since 0.1.0
 * @category models
 */
export interface RefreshRequest extends Schema.Schema.Type<typeof RefreshRequest> {}

/**
 * What `token` accepts: credentials (log in) or a refresh token (renew).
 * @since 0.1.0
 * @category models
 */
export const TokenRequest = Schema.Union(Credentials, RefreshRequest)
/**
 * @since 0.1.0
 * @category models
 */
export type TokenRequest = Credentials | RefreshRequest

/**
 * An access token (sent as `authorization: Bearer ...`), the single-use refresh token that renews it,
 * and the access token's expiry in epoch millis (on `Clock`).
 * @since 0.1.0
 * @category models
 */
export const Token = Schema.Struct({ accessToken: Schema.String, refreshToken: Schema.String, expiry: Schema.Number })
/**
 * @since 0.1.0
 * @category models
 */
export interface Token extends Schema.Schema.Type<typeof Token> {}

/**
 * @since 0.1.0
 * @category models
 */
export interface GenerateOptions {
  /** Scopes of the account (`Account.scopes`), what rules grant on. Default: none. */
  readonly scopes?: ReadonlyArray<string> | undefined
  /** Free-form metadata of the account (`Account.metadata`). Default: none. */
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /** Kind of account: `"user"` or `"service"`. Default: "user". */
  readonly type?: AccountType | undefined
  /** The secret to log in with; default: 256 random bits (base64url). */
  readonly secret?: string | undefined
}

/**
 * What `generate` returns: the account and the credentials to pass to `token`.
 * @since 0.1.0
 * @category models
 */
export interface Generated {
  readonly account: Account
  readonly credentials: Credentials
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TokenOptions {
  /**
   * Lifetime of the access token: at most the layer's `accessTokenExpiry` (longer is capped). Default: the
   * layer's `accessTokenExpiry`.
   */
  readonly expiry?: Duration.DurationInput | undefined
}

/**
 * An account an issuing layer knows from start-up (e.g. service accounts from configuration).
 * @since 0.1.0
 * @category models
 */
export const AccountSeed = Schema.Struct({
  id: Schema.String,
  secret: Schema.String,
  type: Schema.optional(AccountType),
  scopes: Schema.optional(Schema.Array(Schema.String)),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String }))
})
/**
 * @since 0.1.0
 * @category models
 */
export interface AccountSeed extends Schema.Schema.Type<typeof AccountSeed> {}

/**
 * @since 0.1.0
 * @category models
 */
export const JwtAlgorithm = Schema.Literal("EdDSA", "ES256")
/**
 * EdDSA = Ed25519 (the default), ES256 = ECDSA P-256.
 * @since 0.1.0
 * @category models
 */
export type JwtAlgorithm = typeof JwtAlgorithm.Type

/**
 * A JSON Web Key (RFC 7517) as a plain object.
 * @since 0.1.0
 * @category models
 */
export const JsonWebKey = Schema.Record({ key: Schema.String, value: Schema.Unknown })

/**
 * The issuer's private key, identified by `kid` (which every token it signs carries).
 * @since 0.1.0
 * @category models
 */
export const SigningKey = Schema.Struct({
  kid: Schema.String,
  alg: Schema.optional(JwtAlgorithm),
  privateKey: JsonWebKey
})
/**
 * @since 0.1.0
 * @category models
 */
export interface SigningKey extends Schema.Schema.Type<typeof SigningKey> {}

/**
 * A public key verifiers accept tokens from, identified by `kid`.
 * @since 0.1.0
 * @category models
 */
export const PublicKey = Schema.Struct({
  kid: Schema.String,
  alg: Schema.optional(JwtAlgorithm),
  publicKey: JsonWebKey
})
/**
 * @since 0.1.0
 * @category models
 */
export interface PublicKey extends Schema.Schema.Type<typeof PublicKey> {}

/**
 * A local failure of an Auth layer (operation not offered, invalid input, unusable key). Token problems
 * are `Unauthorized`, which crosses the wire.
 * @since 0.1.0
 * @category errors
 */
export class AuthError extends Data.TaggedError("AuthError")<{
  readonly reason: "Unsupported" | "AccountExists" | "InvalidInput" | "InvalidKey"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `auth ${this.reason}: ${this.detail}`
  }
}

// ----- Auth -----

/**
 * @since 0.1.0
 * @category tags
 */
export class Auth extends Context.Tag("effect-micro/Auth")<Auth, Auth.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Auth {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** Creates an account and its credentials. Fails with `AccountExists` for a known id. */
    readonly generate: (id: string, options?: GenerateOptions) => Effect.Effect<Generated, AuthError>
    /**
     * Logs in (credentials) or renews (refresh token). A refresh token works once: using it returns a new
     * one, and presenting a used one again revokes every token descending from the same login.
     */
    readonly token: (
      request: TokenRequest,
      options?: TokenOptions
    ) => Effect.Effect<Token, Unauthorized | AuthError>
    /** The account an access token speaks for; `Unauthorized` when invalid or expired. */
    readonly inspect: (accessToken: string) => Effect.Effect<Account, Unauthorized>
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JwtOptions {
  /** The active signing key. Its public half is always part of the verification set. */
  readonly signingKey: SigningKey
  /** Further keys tokens may be signed with (previous signing keys during a rotation). Default: none. */
  readonly publicKeys?: ReadonlyArray<PublicKey> | undefined
  /** `iss` of the tokens (and `Account.issuer`). Default: "effect-micro". */
  readonly issuer?: string | undefined
  /** Lifetime of access tokens (JWT expiry is whole seconds, rounded down). Default: 15 minutes. */
  readonly accessTokenExpiry?: Duration.DurationInput | undefined
  /** Lifetime of refresh tokens. Default: 24 hours. */
  readonly refreshTokenExpiry?: Duration.DurationInput | undefined
  /** Accounts known from start-up. Default: none. */
  readonly accounts?: ReadonlyArray<AccountSeed> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JwtVerifierOptions {
  /** Every key a valid token may be signed with, by `kid`. */
  readonly publicKeys: ReadonlyArray<PublicKey>
  /** When set, tokens from another issuer are refused. Default: any issuer. */
  readonly issuer?: string | undefined
  /** Slack for clock skew between issuer and verifier when checking `exp`. Default: 0. */
  readonly clockTolerance?: Duration.DurationInput | undefined
}

const defaults = {
  issuer: "effect-micro",
  accessTokenExpiry: "15 minutes",
  refreshTokenExpiry: "24 hours"
} as const

const issuerOptions = (options: {
  readonly issuer?: string | undefined
  readonly accessTokenExpiry?: Duration.DurationInput | undefined
  readonly refreshTokenExpiry?: Duration.DurationInput | undefined
}) => ({
  issuer: options.issuer ?? defaults.issuer,
  accessTokenExpiry: Duration.decode(options.accessTokenExpiry ?? defaults.accessTokenExpiry),
  refreshTokenExpiry: Duration.decode(options.refreshTokenExpiry ?? defaults.refreshTokenExpiry)
})

const unsupported = (operation: string) =>
  Effect.fail(
    new AuthError({ reason: "Unsupported", detail: `${operation} is not offered by a verifier-only Auth layer` })
  )

/**
 * A JWT issuer: generates accounts (kept in memory), logs in, refreshes, and inspects tokens.
 * @since 0.1.0
 * @category constructors
 */
export const makeJwt = (options: JwtOptions): Effect.Effect<Auth.Service, AuthError> =>
  Effect.gen(function*() {
    const settings = issuerOptions(options)
    const own = internalJwt.publicKeyOf(options.signingKey)
    const inspect = yield* internalJwt.makeVerifier({
      publicKeys: [own, ...(options.publicKeys ?? []).filter((k) => k.kid !== own.kid)],
      issuer: settings.issuer
    })
    const issuer = yield* makeIssuer({ ...settings, mintAccess: yield* internalJwt.makeSigner(options.signingKey) })
    yield* issuer.seed(options.accounts ?? [])
    return { generate: issuer.generate, token: issuer.token, inspect }
  })

/**
 * A JWT issuer layer (see `makeJwt`).
 * @since 0.1.0
 * @category layers
 */
export const layerJwt = (options: JwtOptions): Layer.Layer<Auth, AuthError> => Layer.effect(Auth, makeJwt(options))

/**
 * `layerJwt` with its options read from `Config` (the key from the environment or a secrets file), e.g.
 * `Auth.layerJwtConfig({ signingKey: Schema.Config("JWT_SIGNING_KEY", Schema.parseJson(Auth.SigningKey)), issuer: Config.string("JWT_ISSUER") })`.
 * @since 0.1.0
 * @category layers
 */
export const layerJwtConfig = (
  config: Config.Config.Wrap<JwtOptions>
): Layer.Layer<Auth, AuthError | ConfigError.ConfigError> =>
  Layer.effect(Auth, Effect.flatMap(Config.unwrap(config), makeJwt))

/**
 * Inspects JWTs with public keys only; `generate` and `token` fail with `AuthError` "Unsupported".
 * @since 0.1.0
 * @category constructors
 */
export const makeJwtVerifier = (options: JwtVerifierOptions): Effect.Effect<Auth.Service, AuthError> =>
  Effect.map(internalJwt.makeVerifier(options), (inspect) => ({
    generate: () => unsupported("generate"),
    token: () => unsupported("token"),
    inspect
  }))

/**
 * A verify-only layer for services: no private key, no call to an auth server.
 * @since 0.1.0
 * @category layers
 */
export const layerJwtVerifier = (options: JwtVerifierOptions): Layer.Layer<Auth, AuthError> =>
  Layer.effect(Auth, makeJwtVerifier(options))

/**
 * A fresh Ed25519 (default) or P-256 key pair as JWKs; `kid` defaults to the RFC 7638 thumbprint.
 * @since 0.1.0
 * @category constructors
 */
export const generateSigningKey: (
  options?: { readonly alg?: JwtAlgorithm | undefined; readonly kid?: string | undefined }
) => Effect.Effect<{ readonly signingKey: SigningKey; readonly publicKey: PublicKey }> = internalJwt.generateSigningKey

/**
 * The public half of a signing key (what verifiers are configured with).
 * @since 0.1.0
 * @category constructors
 */
export const publicKeyOf: (signingKey: SigningKey) => PublicKey = internalJwt.publicKeyOf

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /** `Account.issuer`. Default: "effect-micro". */
  readonly issuer?: string | undefined
  /** Lifetime of access tokens. Default: 15 minutes. */
  readonly accessTokenExpiry?: Duration.DurationInput | undefined
  /** Lifetime of refresh tokens. Default: 24 hours. */
  readonly refreshTokenExpiry?: Duration.DurationInput | undefined
  /** Accounts known from start-up. Default: none. */
  readonly accounts?: ReadonlyArray<AccountSeed> | undefined
}

/**
 * An issuer with opaque random access tokens kept in memory (one process; tests).
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory = (options?: MemoryOptions): Effect.Effect<Auth.Service, AuthError> =>
  Effect.gen(function*() {
    const service = yield* internalMemory.makeMemory(issuerOptions(options ?? {}))
    yield* service.seed(options?.accounts ?? [])
    return { generate: service.generate, token: service.token, inspect: service.inspect }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (options?: MemoryOptions): Layer.Layer<Auth, AuthError> =>
  Layer.effect(Auth, makeMemory(options))

/**
 * @since 0.1.0
 * @category models
 */
export interface NoopOptions {
  /** The account every token inspects to. Default: `{ id: "anonymous", type: "user", scopes: [], metadata: {},
   * issuer: "noop" }`. */
  readonly account?: Partial<Account> | undefined
}

/**
 * Accepts every non-empty token as one fixed account (see `NoopOptions`); `generate` and `token` always
 * succeed without storing anything. Rules still apply: pair it with `allowAll` or give the account scopes.
 * @since 0.1.0
 * @category layers
 */
export const layerNoop = (options?: NoopOptions): Layer.Layer<Auth> =>
  Layer.succeed(Auth, internalMemory.makeNoop(options))

// ----- server side -----

/**
 * One incoming call, as the server's auth middleware sees it. Metadata keys are lowercase.
 * @since 0.1.0
 * @category models
 */
export interface AuthorizeRequest {
  readonly metadata: Readonly<Record<string, string>>
  readonly service: string
  readonly endpoint: string
}

/**
 * The server-side check for one call: reads `authorization: Bearer <token>`, inspects it, and verifies
 * the rules for `{ type: "service", name: service, endpoint }`. Returns the account (`undefined` when a
 * public rule let an anonymous caller in). An invalid token counts as none (its problem becomes the
 * Unauthorized detail).
 * @since 0.1.0
 * @category combinators
 */
export const authorize = (
  request: AuthorizeRequest
): Effect.Effect<Account | undefined, Unauthorized | Forbidden, Auth | Rules> =>
  Effect.flatMap(
    Effect.zip(Auth, Rules),
    ([auth, rules]) => Effect.flatMap(rules.get, (current) => internalAuthorize.authorize(auth, current, request))
  )

/**
 * `authorize` bound to the current `Auth` and `Rules` services once (for middleware built at server start).
 * @since 0.1.0
 * @category constructors
 */
export const authorizer: Effect.Effect<
  (request: AuthorizeRequest) => Effect.Effect<Account | undefined, Unauthorized | Forbidden>,
  never,
  Auth | Rules
> = Effect.map(
  Effect.zip(Auth, Rules),
  ([auth, rules]) => (request) =>
    Effect.flatMap(rules.get, (current) => internalAuthorize.authorize(auth, current, request))
)

/**
 * The resource a message published to `topic` is checked against on the subscriber's side:
 * `{ type: "topic", name: topic, endpoint: "publish" }`.
 * @since 0.1.0
 * @category constructors
 */
export const topicResource = (topic: string): Resource => ({ type: "topic", name: topic, endpoint: "publish" })

/**
 * The check behind `authorize` for any resource (bearer token of `metadata` → account → rules), bound to the
 * current `Auth` and `Rules` once. Messages use it with `topicResource(topic)` and the message headers.
 * @since 0.1.0
 * @category constructors
 */
export const resourceAuthorizer: Effect.Effect<
  (
    metadata: Readonly<Record<string, string>>,
    resource: Resource
  ) => Effect.Effect<Account | undefined, Unauthorized | Forbidden>,
  never,
  Auth | Rules
> = Effect.map(
  Effect.zip(Auth, Rules),
  ([auth, rules]) => (metadata, resource) =>
    Effect.flatMap(rules.get, (current) => internalAuthorize.authorizeResource(auth, current, metadata, resource))
)

/**
 * The account of the call being handled (`undefined` for anonymous callers let in by a public rule, and
 * outside the server's auth middleware). Provided by `AuthMiddleware.layerServer`. A reference, so handlers
 * read it without adding a requirement to their layer; without the middleware it is always `undefined`
 * (fail-closed: `requireAccount` then refuses every call).
 * @since 0.1.0
 * @category references
 */
export class CurrentAccount extends Context.Reference<CurrentAccount>()("effect-micro/CurrentAccount", {
  defaultValue: (): Account | undefined => undefined
}) {}

/**
 * The current account, or `Unauthorized` for an anonymous caller.
 * @since 0.1.0
 * @category accessors
 */
export const requireAccount: Effect.Effect<Account, Unauthorized> = Effect.flatMap(
  CurrentAccount,
  (account) =>
    account === undefined
      ? Effect.fail(Unauthorized.of("this call requires an account", ERROR_ID))
      : Effect.succeed(account)
)

/**
 * The bearer token of call metadata: `undefined` without an `authorization` key, `null` when it is not
 * `Bearer <token>`.
 * @since 0.1.0
 * @category utils
 */
export const bearerToken: (metadata: Readonly<Record<string, string>>) => string | undefined | null =
  internalAuthorize.bearerToken

// ----- client side -----

/**
 * Outgoing metadata carrying a token: `{ authorization: "Bearer <token>" }`.
 * @since 0.1.0
 * @category constructors
 */
export const bearer = (accessToken: string): Record<string, string> => ({ authorization: `Bearer ${accessToken}` })
