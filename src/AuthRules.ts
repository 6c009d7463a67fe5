/**
 * Access rules: what a caller may call or publish to. A rule grants or denies a scope (everyone, every
 * account, or accounts holding a scope) a resource (exact, `*` or `prefix*` per field); the highest-priority
 * matching rule decides, deny first. `Rules` holds the current rules, changeable at run time (`follow` keeps
 * them in step with a config watch); `verify` decides one access. The server enforces them through
 * `AuthMiddleware.layerServer`; see docs/auth.md for the semantics.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { Account } from "./Auth.js"
import type { Forbidden, Unauthorized } from "./Errors.js"
import * as internalAuthorize from "./internal/auth/authorize.js"
import * as internalRules from "./internal/auth/rules.js"

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
export const make = (initial: ReadonlyArray<Rule> = []): Effect.Effect<Rules.Service> =>
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
export const layer = (initial: ReadonlyArray<Rule> = []): Layer.Layer<Rules> => Layer.effect(Rules, make(initial))

/**
 * Keeps `Rules` in step with a source of plain JSON rule arrays (a config watch): every value that
 * decodes replaces the rules; one that does not is logged and ignored (the last good rules stay).
 * Runs until the scope closes.
 * @since 0.1.0
 * @category combinators
 */
export const follow = <E, R>(
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
