import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import type * as Auth from "../src/Auth.js"
import * as AuthRules from "../src/AuthRules.js"

const account = (...scopes: Array<string>): Auth.Account => ({
  id: "acc",
  type: "user",
  scopes,
  metadata: {},
  issuer: "test"
})

const rule = (
  id: string,
  scope: string,
  access: AuthRules.Access,
  priority = 0,
  resource: Partial<AuthRules.Resource> = {}
): AuthRules.Rule => ({
  id,
  scope,
  access,
  priority,
  resource: { type: "*", name: "*", endpoint: "*", ...resource }
})

const res = (name: string, endpoint: string, type = "service"): AuthRules.Resource => ({ type, name, endpoint })

/** "ok" | "Unauthorized" | "Forbidden" */
const outcome = (rules: ReadonlyArray<AuthRules.Rule>, acc: Auth.Account | undefined, resource: AuthRules.Resource) =>
  Either.match(Effect.runSync(Effect.either(AuthRules.verify(rules, acc, resource))), {
    onLeft: (error) => error._tag,
    onRight: () => "ok" as const
  })

describe("Auth rules", () => {
  it("nothing matches → denied: Unauthorized for anonymous, Forbidden for an account", () => {
    expect(outcome([], undefined, res("greeter", "Hello"))).toBe("Unauthorized")
    expect(outcome([], account("admin"), res("greeter", "Hello"))).toBe("Forbidden")
    const other = [rule("r", "", "grant", 0, { name: "billing" })]
    expect(outcome(other, account(), res("greeter", "Hello"))).toBe("Forbidden")
  })

  it("public scope lets anonymous callers in; '*' needs any account; a named scope needs that scope", () => {
    expect(outcome([rule("p", AuthRules.ScopePublic, "grant")], undefined, res("g", "E"))).toBe("ok")
    expect(outcome([rule("a", AuthRules.ScopeAccount, "grant")], undefined, res("g", "E"))).toBe("Unauthorized")
    expect(outcome([rule("a", AuthRules.ScopeAccount, "grant")], account(), res("g", "E"))).toBe("ok")
    expect(outcome([rule("s", "admin", "grant")], account("user"), res("g", "E"))).toBe("Forbidden")
    expect(outcome([rule("s", "admin", "grant")], account("user", "admin"), res("g", "E"))).toBe("ok")
    expect(outcome([rule("s", "admin", "grant")], undefined, res("g", "E"))).toBe("Unauthorized")
  })

  it("the highest priority applicable rule wins", () => {
    const rules = [
      rule("grant-all", "*", "grant", 0),
      rule("deny-admin", "*", "deny", 10, { endpoint: "Admin.*" }),
      rule("grant-ops", "ops", "grant", 20, { endpoint: "Admin.*" })
    ]
    expect(outcome(rules, account(), res("g", "Hello"))).toBe("ok")
    expect(outcome(rules, account(), res("g", "Admin.Reset"))).toBe("Forbidden")
    expect(outcome(rules, account("ops"), res("g", "Admin.Reset"))).toBe("ok")
    // A rule whose scope does not cover the caller is skipped, not a denial.
    expect(outcome([rule("ops-only", "ops", "deny", 5), rule("all", "*", "grant", 0)], account(), res("g", "X")))
      .toBe("ok")
  })

  it("at equal priority deny beats grant, whatever the order", () => {
    const grant = rule("g", "*", "grant", 3)
    const deny = rule("d", "*", "deny", 3)
    expect(outcome([grant, deny], account(), res("g", "E"))).toBe("Forbidden")
    expect(outcome([deny, grant], account(), res("g", "E"))).toBe("Forbidden")
    // The detail names the deciding rule.
    const error = Effect.runSync(Effect.flip(AuthRules.verify([grant, deny], account(), res("g", "E"))))
    expect(error.detail).toContain("denied by rule d")
    expect(error.code).toBe(403)
  })

  it("wildcards: '*', trailing 'prefix*' on type, name and endpoint", () => {
    const at = (r: Partial<AuthRules.Resource>, target: AuthRules.Resource) =>
      outcome([rule("r", "", "grant", 0, r)], undefined, target)
    expect(at({ endpoint: "Admin.*" }, res("g", "Admin.Reset"))).toBe("ok")
    expect(at({ endpoint: "Admin.*" }, res("g", "AdminReset"))).toBe("Unauthorized")
    expect(at({ endpoint: "Admin.*" }, res("g", "Admin"))).toBe("Unauthorized")
    expect(at({ endpoint: "/admin/*" }, res("g", "/admin/users/1"))).toBe("ok")
    expect(at({ endpoint: "Get*" }, res("g", "GetUser"))).toBe("ok")
    expect(at({ endpoint: "Get" }, res("g", "GetUser"))).toBe("Unauthorized")
    expect(at({ name: "greeter" }, res("greeter", "X"))).toBe("ok")
    expect(at({ name: "greeter" }, res("greeter2", "X"))).toBe("Unauthorized")
    expect(at({ name: "team.*" }, res("team.billing", "X"))).toBe("ok")
    expect(at({ type: "service" }, res("g", "X", "topic"))).toBe("Unauthorized")
    // '*' in the middle is literal.
    expect(at({ endpoint: "a*b" }, res("g", "axb"))).toBe("Unauthorized")
    expect(at({ endpoint: "a*b" }, res("g", "a*b"))).toBe("ok")
  })

  it("decodes rules from JSON, with priority defaulting to 0, and rejects malformed ones", () => {
    const decoded = Effect.runSync(AuthRules.decodeRules([
      { id: "r", scope: "", resource: { type: "service", name: "g", endpoint: "*" }, access: "grant" }
    ]))
    expect(decoded[0]!.priority).toBe(0)
    const bad = Effect.runSync(Effect.either(AuthRules.decodeRules([{ id: "r", scope: "", access: "maybe" }])))
    expect(Either.isLeft(bad)).toBe(true)
    expect(Either.isLeft(Effect.runSync(Effect.either(AuthRules.decodeRules({ not: "an array" }))))).toBe(true)
  })

  // ----- properties -----

  const scopes = ["", "*", "a", "b"] as const
  const arbRule = FastCheck.record({
    id: FastCheck.string({ maxLength: 3 }),
    scope: FastCheck.constantFrom(...scopes),
    access: FastCheck.constantFrom<AuthRules.Access>("grant", "deny"),
    priority: FastCheck.integer({ min: -2, max: 2 }),
    resource: FastCheck.record({
      type: FastCheck.constantFrom("*", "service", "topic"),
      name: FastCheck.constantFrom("*", "svc", "svc*", "other"),
      endpoint: FastCheck.constantFrom("*", "Get", "Get*", "Put", "Admin.*")
    })
  })
  const arbResource = FastCheck.record({
    type: FastCheck.constantFrom("service", "topic"),
    name: FastCheck.constantFrom("svc", "svc2", "other"),
    endpoint: FastCheck.constantFrom("Get", "GetAll", "Put", "Admin.Reset")
  })
  const arbAccount = FastCheck.option(
    FastCheck.subarray(["a", "b", "c"]).map((s) => account(...s)),
    { nil: undefined }
  )

  // The specification, written naively: among the rules that match and apply, take the highest priority;
  // any deny there → denied; otherwise granted; none → denied.
  const matches = (pattern: string, value: string) =>
    pattern === "*" || pattern === value || (pattern.endsWith("*") && value.startsWith(pattern.slice(0, -1)))
  const model = (rules: ReadonlyArray<AuthRules.Rule>, acc: Auth.Account | undefined, r: AuthRules.Resource) => {
    const applicable = rules.filter((x) =>
      matches(x.resource.type, r.type) && matches(x.resource.name, r.name) &&
      matches(x.resource.endpoint, r.endpoint) &&
      (x.scope === "" || (acc !== undefined && (x.scope === "*" || acc.scopes.includes(x.scope))))
    )
    if (applicable.length === 0) return acc === undefined ? "Unauthorized" : "Forbidden"
    const top = Math.max(...applicable.map((x) => x.priority))
    const denied = applicable.some((x) => x.priority === top && x.access === "deny")
    return denied ? (acc === undefined ? "Unauthorized" : "Forbidden") : "ok"
  }

  it("agrees with the reference model on random rule sets", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.array(arbRule, { maxLength: 8 }), arbAccount, arbResource, (rules, acc, r) => {
        expect(outcome(rules, acc, r)).toBe(model(rules, acc, r))
      }),
      { numRuns: 2000 }
    )
  })

  it("the outcome does not depend on the order of the rules", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.array(arbRule, { maxLength: 8 }).chain((rules) =>
          FastCheck.tuple(FastCheck.constant(rules), FastCheck.shuffledSubarray(rules, { minLength: rules.length }))
        ),
        arbAccount,
        arbResource,
        ([rules, shuffled], acc, r) => {
          expect(outcome(shuffled, acc, r)).toBe(outcome(rules, acc, r))
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("a top-priority public deny on everything denies everyone; a top-priority public grant admits everyone", () => {
    FastCheck.assert(
      FastCheck.property(FastCheck.array(arbRule, { maxLength: 8 }), arbAccount, arbResource, (rules, acc, r) => {
        expect(outcome([...rules, rule("deny", "", "deny", 3)], acc, r)).not.toBe("ok")
        expect(outcome([...rules, rule("grant", "", "grant", 3)], acc, r)).toBe("ok")
      }),
      { numRuns: 500 }
    )
  })
})
