/**
 * Authentication and authorization: accounts, tokens, rules.
 *
 * - `Auth` issues and inspects tokens. `layerJwt` issues EdDSA-signed JWTs (with a `kid` for key rotation);
 *   `layerJwtVerifier` only inspects them, with public keys alone, so services need no auth server on
 *   the call path. `layerMemory` (opaque tokens in a map) and `layerNoop` are for tests.
 * - `Rules` holds the access rules (changeable at run time); `verify` decides one call.
 * - `authorize` is the server-side check (call metadata → account → rule), `CurrentAccount` what handlers
 *   read; `ServiceIdentity` is the client side (credentials → an always-fresh bearer token).
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
import type * as ParseResult from "effect/ParseResult"
import type * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Forbidden, MicroError } from "./Errors.js"
import { Unauthorized } from "./Errors.js"
import * as internalAuthorize from "./internal/auth/authorize.js"
import * as internalIdentity from "./internal/auth/identity.js"
import { ERROR_ID, makeIssuer } from "./internal/auth/issuer.js"
import * as internalJwt from "./internal/auth/jwt.js"
import * as internalMemory from "./internal/auth/memory.js"
import * as internalRules from "./internal/auth/rules.js"

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
  readonly scopes?: ReadonlyArray<string> | undefined
  readonly metadata?: Readonly<Record<string, string>> | undefined
  /** Default: "user". */
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
  /** Lifetime of the access token: the layer's `accessTokenExpiry` (the default) or shorter (longer is capped). */
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
  /** Further keys tokens may be signed with (previous signing keys during a rotation). */
  readonly publicKeys?: ReadonlyArray<PublicKey> | undefined
  /** `iss` of the tokens (and `Account.issuer`). Default: "effect-micro". */
  readonly issuer?: string | undefined
  /** Default: 15 minutes. JWT expiry is whole seconds, rounded down. */
  readonly accessTokenExpiry?: Duration.DurationInput | undefined
  /** Default: 24 hours. */
  readonly refreshTokenExpiry?: Duration.DurationInput | undefined
  /** Accounts known from start-up. */
  readonly accounts?: ReadonlyArray<AccountSeed> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface JwtVerifierOptions {
  /** Every key a valid token may be signed with, by `kid`. */
  readonly publicKeys: ReadonlyArray<PublicKey>
  /** When set, tokens from another issuer are refused. */
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
  /** Default: 15 minutes. */
  readonly accessTokenExpiry?: Duration.DurationInput | undefined
  /** Default: 24 hours. */
  readonly refreshTokenExpiry?: Duration.DurationInput | undefined
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

// ----- rules -----

/**
 * Scope of a rule that applies to everyone, including callers without a (valid) token.
 * @since 0.1.0
 * @category constants
 */
export const ScopePublic: "" = internalRules.SCOPE_PUBLIC as ""

/**
 * Scope of a rule that applies to every authenticated account.
 * @since 0.1.0
 * @category constants
 */
export const ScopeAccount: "*" = internalRules.SCOPE_ACCOUNT as "*"

/**
 * What a rule protects. Each field is exact, `*` (anything) or `prefix*` (starts with prefix: `Admin.*`,
 * `/admin/*`). Calls to a service are `{ type: "service", name: <service>, endpoint: <endpoint> }`.
 * @since 0.1.0
 * @category models
 */
export const Resource = Schema.Struct({ type: Schema.String, name: Schema.String, endpoint: Schema.String })
/**
 * @since 0.1.0
 * @category models
 */
export interface Resource extends Schema.Schema.Type<typeof Resource> {}

/**
 * @since 0.1.0
 * @category models
 */
export const Access = Schema.Literal("grant", "deny")
/**
 * @since 0.1.0
 * @category models
 */
export type Access = typeof Access.Type

/**
 * An access rule. `scope`: `ScopePublic` (""), `ScopeAccount` ("*") or a scope accounts must hold.
 * Higher `priority` is tried first (default 0 when decoded); at equal priority deny beats grant.
 * @since 0.1.0
 * @category models
 */
export const Rule = Schema.Struct({
  id: Schema.String,
  scope: Schema.String,
  resource: Resource,
  access: Access,
  priority: Schema.optionalWith(Schema.Number, { default: () => 0 })
})
/**
 * @since 0.1.0
 * @category models
 */
export interface Rule extends Schema.Schema.Type<typeof Rule> {}

/**
 * One public grant on everything: no authentication anywhere (development, tests, `layerNoop`).
 * @since 0.1.0
 * @category constants
 */
export const allowAll: ReadonlyArray<Rule> = Object.freeze([{
  id: "allow-all",
  scope: "",
  resource: { type: "*", name: "*", endpoint: "*" },
  access: "grant",
  priority: 0
}])

/**
 * Decides one access: the highest-priority rule that matches the resource and covers the caller decides
 * (deny first at equal priority); none → denied. Denied → `Unauthorized` without an account, `Forbidden` with.
 * @since 0.1.0
 * @category combinators
 */
export const verify = (
  rules: ReadonlyArray<Rule>,
  account: Account | undefined,
  resource: Resource
): Effect.Effect<void, Unauthorized | Forbidden> => internalAuthorize.verify(rules, account, resource)

/**
 * Decodes rules from plain JSON (e.g. a config file); `priority` defaults to 0.
 * @since 0.1.0
 * @category constructors
 */
export const decodeRules: (json: unknown) => Effect.Effect<ReadonlyArray<Rule>, ParseResult.ParseError> = Schema
  .decodeUnknown(Schema.Array(Rule))

/**
 * The current rules, changeable at run time.
 * @since 0.1.0
 * @category tags
 */
export class Rules extends Context.Tag("effect-micro/Rules")<Rules, Rules.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Rules {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly get: Effect.Effect<ReadonlyArray<Rule>>
    /** Replaces every rule. */
    readonly set: (rules: ReadonlyArray<Rule>) => Effect.Effect<void>
    /** Adds a rule, replacing the one with the same id. */
    readonly add: (rule: Rule) => Effect.Effect<void>
    /** Removes the rule with this id (if any). */
    readonly delete: (id: string) => Effect.Effect<void>
    /** The current rules, then every change. */
    readonly changes: Stream.Stream<ReadonlyArray<Rule>>
    /** `verify` against the current rules. */
    readonly verify: (account: Account | undefined, resource: Resource) => Effect.Effect<void, Unauthorized | Forbidden>
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeRules = (initial: ReadonlyArray<Rule> = []): Effect.Effect<Rules.Service> =>
  // Held arrays are frozen copies: safe to hand out, and the evaluator caches their priority order.
  Effect.map(SubscriptionRef.make<ReadonlyArray<Rule>>(Object.freeze([...initial])), (ref) => {
    const get = SubscriptionRef.get(ref)
    return {
      get,
      set: (rules) => SubscriptionRef.set(ref, Object.freeze([...rules])),
      add: (rule) =>
        SubscriptionRef.update(ref, (rules) =>
          Object.freeze(
            rules.some((r) => r.id === rule.id)
              ? rules.map((r) => (r.id === rule.id ? rule : r))
              : [...rules, rule]
          )),
      delete: (id) => SubscriptionRef.update(ref, (rules) => Object.freeze(rules.filter((r) => r.id !== id))),
      changes: ref.changes,
      verify: (account, resource) => Effect.flatMap(get, (rules) => internalAuthorize.verify(rules, account, resource))
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerRules = (initial: ReadonlyArray<Rule> = []): Layer.Layer<Rules> =>
  Layer.effect(Rules, makeRules(initial))

/**
 * Keeps `Rules` in step with a source of plain JSON rule arrays (a config watch): every value that
 * decodes replaces the rules; one that does not is logged and ignored (the last good rules stay).
 * Runs until the scope closes.
 * @since 0.1.0
 * @category combinators
 */
export const followRules = <E, R>(
  source: Stream.Stream<unknown, E, R>
): Effect.Effect<void, never, Rules | R | Scope.Scope> =>
  Effect.flatMap(Rules, (rules) =>
    source.pipe(
      Stream.runForEach((json) =>
        decodeRules(json).pipe(
          Effect.flatMap(rules.set),
          Effect.catchAll((error) => Effect.logWarning("effect-micro auth: ignoring invalid rules", error.message))
        )
      ),
      Effect.catchAllCause((cause) => Effect.logWarning("effect-micro auth: rules source failed", cause)),
      Effect.forkScoped,
      Effect.asVoid
    ))

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
export interface IdentityOptions {
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
export const makeServiceIdentity: (
  options: IdentityOptions
) => Effect.Effect<ServiceIdentity.Service, IdentityError, Scope.Scope> = internalIdentity.makeIdentity

/**
 * A service identity whose tokens come from the `Auth` layer in context.
 * @since 0.1.0
 * @category layers
 */
export const layerServiceIdentity = (
  options: Omit<IdentityOptions, "issue">
): Layer.Layer<ServiceIdentity, IdentityError, Auth> =>
  Layer.scoped(
    ServiceIdentity,
    Effect.flatMap(Auth, (auth) => makeServiceIdentity({ ...options, issue: (request) => auth.token(request) }))
  )

/**
 * A service identity with its own token source (e.g. an RPC client of the auth service).
 * @since 0.1.0
 * @category layers
 */
export const layerServiceIdentityWith = (options: IdentityOptions): Layer.Layer<ServiceIdentity, IdentityError> =>
  Layer.scoped(ServiceIdentity, makeServiceIdentity(options))

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
