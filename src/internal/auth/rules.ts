/**
 * Rule evaluation: pure functions, no Effect. The order rules are tried in is computed once per frozen
 * rule array (the `Rules` service freezes what it holds) and cached by identity, so `authorize` does no
 * sorting per call. Arrays that are not frozen may be mutated by their owner, so they are sorted each time.
 */
import type { Account } from "../../Auth.js"
import type { Resource, Rule } from "../../AuthRules.js"

/** Scope of a rule that applies to every caller, authenticated or not. */
export const SCOPE_PUBLIC = ""
/** Scope of a rule that applies to every authenticated caller, whatever its scopes. */
export const SCOPE_ACCOUNT = "*"

/**
 * `*` matches anything; a pattern ending in `*` matches every value starting with what comes before the
 * `*` (`Admin.*`, `/admin/*`, `Get*`); anything else matches itself only. A `*` elsewhere is literal.
 */
export const matchPattern = (pattern: string, value: string): boolean => {
  if (pattern === value || pattern === "*") return true
  const last = pattern.length - 1
  return last >= 0 && pattern.charCodeAt(last) === 42 /* '*' */ && value.startsWith(pattern.slice(0, last))
}

export const matchResource = (pattern: Resource, resource: Resource): boolean =>
  matchPattern(pattern.type, resource.type) &&
  matchPattern(pattern.name, resource.name) &&
  matchPattern(pattern.endpoint, resource.endpoint)

/** Whether a rule's scope covers the caller (`undefined` = anonymous). */
export const appliesTo = (scope: string, account: Account | undefined): boolean => {
  if (scope === SCOPE_PUBLIC) return true
  if (account === undefined) return false
  return scope === SCOPE_ACCOUNT || account.scopes.includes(scope)
}

/** Highest priority first; at equal priority `deny` before `grant`; otherwise the given order (stable). */
const compareRules = (a: Rule, b: Rule): number =>
  b.priority - a.priority || (a.access === b.access ? 0 : a.access === "deny" ? -1 : 1)

const sortedCache = new WeakMap<ReadonlyArray<Rule>, ReadonlyArray<Rule>>()

export const sortRules = (rules: ReadonlyArray<Rule>): ReadonlyArray<Rule> => {
  if (!Object.isFrozen(rules)) return [...rules].sort(compareRules)
  let sorted = sortedCache.get(rules)
  if (sorted === undefined) {
    sorted = [...rules].sort(compareRules)
    sortedCache.set(rules, sorted)
  }
  return sorted
}

/** The outcome of evaluating the rules, with the deciding rule (none when nothing applied). */
export type Decision =
  | { readonly _tag: "Granted"; readonly rule: Rule }
  | { readonly _tag: "Denied"; readonly rule: Rule | undefined }

/**
 * The first rule, in priority order, whose resource pattern matches and whose scope covers the caller
 * decides. Nothing applicable → denied.
 */
export const decide = (rules: ReadonlyArray<Rule>, account: Account | undefined, resource: Resource): Decision => {
  for (const rule of sortRules(rules)) {
    if (!matchResource(rule.resource, resource) || !appliesTo(rule.scope, account)) continue
    return rule.access === "grant" ? { _tag: "Granted", rule } : { _tag: "Denied", rule }
  }
  return { _tag: "Denied", rule: undefined }
}

export const describe = (resource: Resource): string =>
  `${resource.type} ${resource.name} endpoint ${resource.endpoint}`
