/**
 * Server side: from call metadata to an account and a rule decision. Kept free of Tags so the server's
 * middleware can call it with services it already holds.
 */
import * as Effect from "effect/Effect"
import type { Account, Auth, AuthorizeRequest } from "../../Auth.js"
import type { Resource, Rule } from "../../AuthRules.js"
import { Forbidden, Unauthorized } from "../../Errors.js"
import { decide, describe } from "./rules.js"

/** `undefined`: no header; `null`: a header that is not `Bearer <token>`. */
export const bearerToken = (metadata: Readonly<Record<string, string>>): string | undefined | null => {
  const header = metadata["authorization"]
  if (header === undefined) return undefined
  const match = /^bearer +(\S+) *$/i.exec(header)
  return match === null ? null : match[1]!
}

/**
 * The verdict for a caller: granted → void; not granted → Unauthorized for anonymous callers (they may
 * get in by authenticating; `why` says what was wrong with their token, if they sent one), Forbidden for
 * authenticated ones.
 */
export const verify = (
  rules: ReadonlyArray<Rule>,
  account: Account | undefined,
  resource: Resource,
  why?: string
): Effect.Effect<void, Unauthorized | Forbidden> => {
  const decision = decide(rules, account, resource)
  if (decision._tag === "Granted") return Effect.void
  const target = describe(resource)
  if (account === undefined) {
    return Effect.fail(
      Unauthorized.of(why === undefined ? `authentication required for ${target}` : why, resource.name)
    )
  }
  const because = decision.rule === undefined ? "no rule grants access" : `denied by rule ${decision.rule.id}`
  return Effect.fail(Forbidden.of(`account ${account.id} may not call ${target}: ${because}`, resource.name))
}

export const authorize = (
  auth: Auth.Service,
  rules: ReadonlyArray<Rule>,
  request: AuthorizeRequest
): Effect.Effect<Account | undefined, Unauthorized | Forbidden> =>
  authorizeResource(auth, rules, request.metadata, {
    type: "service",
    name: request.service,
    endpoint: request.endpoint
  })

/** The same check for any resource (topics: `{ type: "topic", name: <topic>, endpoint: "publish" }`). */
export const authorizeResource = (
  auth: Auth.Service,
  rules: ReadonlyArray<Rule>,
  metadata: Readonly<Record<string, string>>,
  resource: Resource
): Effect.Effect<Account | undefined, Unauthorized | Forbidden> => {
  const token = bearerToken(metadata)
  // An invalid token counts as no token: a public rule still lets the call in (without an account);
  // otherwise the caller learns why its token was refused.
  const inspected: Effect.Effect<{ account: Account | undefined; why: string | undefined }> = token === undefined
    ? Effect.succeed({ account: undefined, why: undefined })
    : token === null
    ? Effect.succeed({ account: undefined, why: "malformed authorization header (expected Bearer <token>)" })
    : Effect.match(auth.inspect(token), {
      onFailure: (error) => ({ account: undefined, why: error.detail }),
      onSuccess: (account) => ({ account, why: undefined })
    })
  return Effect.flatMap(inspected, ({ account, why }) => Effect.as(verify(rules, account, resource, why), account))
}
