/**
 * Auth on the Broker: publishes carry the publisher's token, subscribers check the rules for
 * `{ type: "topic", name, endpoint: "publish" }` before the handler. Runs against the memory broker (TestClock)
 * and the HTTP broker in one process (live clock, loopback HTTP).
 */
import { describe, expect, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Auth from "../src/Auth.js"
import * as AuthMiddleware from "../src/AuthMiddleware.js"
import * as AuthRules from "../src/AuthRules.js"
import * as Broker from "../src/Broker.js"
import * as Defaults from "../src/Defaults.js"
import { Forbidden } from "../src/Errors.js"
import * as HttpBroker from "../src/HttpBroker.js"
import * as Registry from "../src/Registry.js"
import * as ServiceIdentity from "../src/ServiceIdentity.js"
import * as Subscriber from "../src/Subscriber.js"
import * as Topic from "../src/Topic.js"
import { eventually } from "./support/eventually.js"

const orders = { id: "orders", secret: "orders-secret" }
const alice = { id: "alice", secret: "alice-secret" }
const intruder = { id: "intruder", secret: "intruder-secret" }

const topicRule = (
  id: string,
  scope: string,
  name: string,
  access: "grant" | "deny" = "grant",
  priority = 0
): AuthRules.Rule => ({ id, scope, resource: { type: "topic", name, endpoint: "publish" }, access, priority })

const rules: ReadonlyArray<AuthRules.Rule> = [
  topicRule("orders-publish", "orders", "orders.*"),
  topicRule("public-news", "", "news.*"),
  topicRule("no-secrets", "*", "orders.secret", "deny", 5)
]

const AuthLive = Layer.mergeAll(
  Auth.layerMemory({
    accounts: [
      { ...orders, type: "service", scopes: ["orders"] },
      { ...alice, type: "user", scopes: ["orders"] },
      { ...intruder, type: "service", scopes: [] }
    ]
  }),
  AuthRules.layer(rules)
).pipe(Layer.orDie)

/** The publishing service's identity (`orders`) on top of the Auth layers. */
const Identity = ServiceIdentity.layer({ credentials: orders }).pipe(Layer.orDie, Layer.provideMerge(AuthLive))

const tokenOf = (credentials: Auth.Credentials) =>
  Effect.flatMap(Auth.Auth, (auth) => Effect.map(Effect.orDie(auth.token(credentials)), (t) => t.accessToken))

const text = (value: string): Uint8Array => new TextEncoder().encode(value)
const decode = (bytes: Uint8Array): string => new TextDecoder().decode(bytes)

let counter = 0
const uniqueTopic = (prefix: string): string => `${prefix}.t${Date.now().toString(36)}${(counter++).toString(36)}`

interface Seen {
  readonly body: string
  readonly account: string | undefined
  readonly authorization: string | undefined
}

/**
 * `inner`: the broker without auth (publishes carry no token); `authed`: the same broker wrapped both ways
 * (publishes carry `orders`' token, subscriptions check the rules).
 */
const brokers = Effect.gen(function*() {
  const inner = yield* Broker.Broker
  const identity = yield* ServiceIdentity.ServiceIdentity
  const authorize = yield* Auth.resourceAuthorizer
  return { inner, authed: AuthMiddleware.wrapBroker(inner, { identity, authorize }) }
})

/** Subscribes a recording handler through `broker` (which reads `CurrentAccount`). */
const record = (broker: Broker.Broker.Service, topic: string, options?: Broker.SubscribeOptions) =>
  Effect.gen(function*() {
    const seen: Array<Seen> = []
    yield* broker.subscribe(topic, (message) =>
      Effect.flatMap(Auth.CurrentAccount, (account) =>
        Effect.sync(() => {
          seen.push({
            body: decode(message.body),
            account: account?.id,
            authorization: message.headers["authorization"]
          })
        })), options)
    return seen
  })

const failuresOf = (result: Either.Either<void, Broker.BrokerError>) => {
  expect(Either.isLeft(result)).toBe(true)
  return Either.isLeft(result) ? result.left.failures : []
}

interface Harness {
  readonly name: string
  readonly layer: Layer.Layer<
    Broker.Broker | ServiceIdentity.ServiceIdentity | Auth.Auth | AuthRules.Rules | Registry.Registry
  >
  /** Waits until publishers can see `count` subscriptions of the topic. */
  readonly awaitSubscribers: (topic: string, count: number) => Effect.Effect<void, unknown, Registry.Registry>
  readonly live: boolean
}

const suite = (harness: Harness) =>
  describe(`AuthMiddleware broker: ${harness.name}`, () => {
    const test = (
      name: string,
      body: () => Effect.Effect<
        void,
        unknown,
        Broker.Broker | ServiceIdentity.ServiceIdentity | Auth.Auth | AuthRules.Rules | Registry.Registry | Scope.Scope
      >
    ) => (harness.live ? it.scopedLive : it.scoped)(name, () => Effect.provide(body(), harness.layer), 20_000)

    test("no token and no public rule: rejected before the handler, the publisher sees Unauthorized", () =>
      Effect.gen(function*() {
        const { authed, inner } = yield* brokers
        const topic = uniqueTopic("orders")
        const seen = yield* record(authed, topic)
        yield* harness.awaitSubscribers(topic, 1)
        const failures = failuresOf(yield* Effect.either(inner.publish(topic, text("anonymous"))))
        expect(failures).toHaveLength(1)
        expect(failures[0]).toMatchObject({ reason: "Unauthorized" })
        expect(failures[0]!.detail).toContain(`topic ${topic}`)
        // A malformed header is no token either, and says so.
        const malformed = failuresOf(
          yield* Effect.either(inner.publish(topic, text("basic"), { headers: { authorization: "Basic abc" } }))
        )
        expect(malformed[0]).toMatchObject({ reason: "Unauthorized" })
        expect(malformed[0]!.detail).toContain("malformed authorization header")
        expect(seen).toEqual([])
      }))

    test("no token on a topic with a public rule: delivered, anonymously", () =>
      Effect.gen(function*() {
        const { authed, inner } = yield* brokers
        const topic = uniqueTopic("news")
        const seen = yield* record(authed, topic)
        yield* harness.awaitSubscribers(topic, 1)
        yield* inner.publish(topic, text("hello"))
        expect(seen).toEqual([{ body: "hello", account: undefined, authorization: undefined }])
      }))

    test("the publisher's token, granted: delivered and the handler sees the publisher's account", () =>
      Effect.gen(function*() {
        const { authed } = yield* brokers
        const topic = uniqueTopic("orders")
        const seen = yield* record(authed, topic)
        yield* harness.awaitSubscribers(topic, 1)
        yield* authed.publish(topic, text("o-1"), { headers: { "trace-id": "t1" } })
        const token = yield* Effect.flatMap(ServiceIdentity.ServiceIdentity, (identity) => identity.currentToken)
        expect(seen).toEqual([{ body: "o-1", account: "orders", authorization: `Bearer ${token}` }])
      }))

    test("a valid token that the rules deny: Forbidden, the handler does not run", () =>
      Effect.gen(function*() {
        const { authed } = yield* brokers
        const topic = uniqueTopic("orders")
        const seen = yield* record(authed, topic)
        const secret = yield* record(authed, "orders.secret")
        yield* harness.awaitSubscribers(topic, 1)
        yield* harness.awaitSubscribers("orders.secret", 1)
        // No rule grants `intruder` (no scopes) anything.
        const foreign = yield* tokenOf(intruder)
        const denied = failuresOf(
          yield* Effect.either(authed.publish(topic, text("x"), { headers: Auth.bearer(foreign) }))
        )
        expect(denied[0]).toMatchObject({ reason: "Forbidden" })
        expect(denied[0]!.detail).toContain("no rule grants access")
        // An explicit deny beats the `orders` grant, even for the service's own token.
        const explicit = failuresOf(yield* Effect.either(authed.publish("orders.secret", text("y"))))
        expect(explicit[0]).toMatchObject({ reason: "Forbidden" })
        expect(explicit[0]!.detail).toContain("denied by rule no-secrets")
        expect(seen).toEqual([])
        expect(secret).toEqual([])
      }))

    test("per-publish override: the caller's authorization header wins and is sent untouched", () =>
      Effect.gen(function*() {
        const { authed } = yield* brokers
        const topic = uniqueTopic("orders")
        const seen = yield* record(authed, topic)
        yield* harness.awaitSubscribers(topic, 1)
        const user = yield* tokenOf(alice)
        // Header keys are case-insensitive: `Authorization` counts as an override too.
        yield* authed.publish(topic, text("as alice"), { headers: { Authorization: `Bearer ${user}` } })
        expect(seen).toEqual([{ body: "as alice", account: "alice", authorization: `Bearer ${user}` }])
        // A bad override is not replaced by the service token.
        const forged = failuresOf(
          yield* Effect.either(authed.publish(topic, text("forged"), { headers: Auth.bearer("not-a-token") }))
        )
        expect(forged[0]).toMatchObject({ reason: "Unauthorized" })
        expect(seen).toHaveLength(1)
      }))

    test("queue groups still deliver each message exactly once with auth on; refused ones reach no member", () =>
      Effect.gen(function*() {
        const { authed, inner } = yield* brokers
        const topic = uniqueTopic("orders")
        const members = yield* Effect.all([1, 2, 3].map(() => record(authed, topic, { queue: "workers" })))
        const broadcast = yield* record(authed, topic)
        yield* harness.awaitSubscribers(topic, 4)
        const bodies = Array.from({ length: 9 }, (_, i) => `m${i}`)
        for (const body of bodies) yield* authed.publish(topic, text(body))
        const refused = failuresOf(yield* Effect.either(inner.publish(topic, text("anonymous"))))
        // One failure for the group, one for the broadcast subscriber.
        expect(refused.map((f) => f.reason)).toEqual(["Unauthorized", "Unauthorized"])
        expect(refused.filter((f) => f.queue === "workers")).toHaveLength(1)
        const handled = members.flatMap((seen) => seen.map((s) => s.body)).sort()
        expect(handled).toEqual([...bodies].sort())
        expect(members.flat().every((s) => s.account === "orders")).toBe(true)
        expect(broadcast.map((s) => s.body)).toEqual(bodies)
      }))

    test("a handler failing with Forbidden itself is reported as Forbidden", () =>
      Effect.gen(function*() {
        const { authed } = yield* brokers
        const topic = uniqueTopic("orders")
        yield* authed.subscribe(topic, () => Effect.fail(Forbidden.of("not for you")))
        yield* harness.awaitSubscribers(topic, 1)
        const failures = failuresOf(yield* Effect.either(authed.publish(topic, text("x"))))
        expect(failures[0]).toMatchObject({ reason: "Forbidden", detail: "not for you" })
      }))
  })

const memoryLayer = Layer.mergeAll(Broker.layerMemory, Registry.layerMemory).pipe(Layer.provideMerge(Identity))

suite({
  name: "memory",
  layer: memoryLayer,
  awaitSubscribers: () => Effect.void,
  live: false
})

const nodesOf = (topic: string) =>
  Effect.flatMap(Registry.Registry, (registry) =>
    registry.getService(`micro.broker.${topic}`).pipe(
      Effect.map((services) => services.flatMap((s) => s.nodes)),
      Effect.orElseSucceed(() => [])
    ))

suite({
  name: "http (one process)",
  layer: HttpBroker.layer().pipe(Layer.provideMerge(Registry.layerMemory), Layer.provideMerge(Identity)),
  awaitSubscribers: (topic, count) => Effect.asVoid(eventually(nodesOf(topic), (nodes) => nodes.length === count)),
  live: true
})

const Order = Topic.make("orders.placed", Schema.Struct({ id: Schema.String }))

describe("AuthMiddleware broker layers (memory, TestClock)", () => {
  it.scoped("expired tokens are rejected; the service identity refreshes its own before expiry", () =>
    Effect.gen(function*() {
      const { authed } = yield* brokers
      const topic = uniqueTopic("orders")
      const seen = yield* record(authed, topic)
      const user = yield* tokenOf(alice)
      yield* TestClock.adjust("16 minutes") // past the 15 minute access-token lifetime
      const expired = failuresOf(
        yield* Effect.either(authed.publish(topic, text("late"), { headers: Auth.bearer(user) }))
      )
      expect(expired[0]).toMatchObject({ reason: "Unauthorized", detail: "token expired" })
      // The service's own token was refreshed in the background: its publishes still go through.
      yield* authed.publish(topic, text("fresh"))
      expect(seen.map((s) => [s.body, s.account])).toEqual([["fresh", "orders"]])
    }).pipe(Effect.provide(Broker.layerMemory.pipe(Layer.provideMerge(Identity)))))

  it.scoped("layerBroker with typed topics and Subscriber.layer: the handler reads Auth.CurrentAccount", () =>
    Effect.gen(function*() {
      const seen: Array<[string, string | undefined]> = []
      const subscriber = Subscriber.layer(
        Order,
        (order) =>
          Effect.flatMap(Auth.CurrentAccount, (account) =>
            Effect.sync(() => {
              seen.push([order.id, account?.id])
            }))
      )
      yield* Layer.build(subscriber)
      yield* Topic.publish(Order, { id: "o-1" })
      expect(seen).toEqual([["o-1", "orders"]])
      // Another account's token, per publish, through the typed API.
      const foreign = yield* tokenOf(intruder)
      const denied = yield* Effect.either(Topic.publish(Order, { id: "o-2" }, { headers: Auth.bearer(foreign) }))
      expect(Either.isLeft(denied) && denied.left._tag === "BrokerError" && denied.left.failures[0]!.reason).toBe(
        "Forbidden"
      )
      expect(seen).toHaveLength(1)
    }).pipe(
      Effect.provide(AuthMiddleware.layerBroker.pipe(Layer.provide(Broker.layerMemory), Layer.provideMerge(Identity)))
    ))

  it.scoped("layerBrokerPublisher adds the token without checking; layerBrokerSubscriber checks without a token", () =>
    Effect.gen(function*() {
      const inner = yield* Broker.makeMemory
      const publisher = yield* Layer.build(AuthMiddleware.layerBrokerPublisher).pipe(
        Effect.provide(Layer.succeed(Broker.Broker, inner))
      )
      const subscriber = yield* Layer.build(AuthMiddleware.layerBrokerSubscriber).pipe(
        Effect.provide(Layer.succeed(Broker.Broker, inner)),
        // Without a ServiceIdentity in context its publishes are sent as given.
        Effect.mapInputContext((
          context: Context.Context<Auth.Auth | AuthRules.Rules | ServiceIdentity.ServiceIdentity | Scope.Scope>
        ) =>
          Context.omit(ServiceIdentity.ServiceIdentity)(context) as Context.Context<
            Auth.Auth | AuthRules.Rules | Scope.Scope
          >
        )
      )
      const seen: Array<string | undefined> = []
      yield* Broker.subscribe(
        "orders.created",
        () =>
          Effect.flatMap(Auth.CurrentAccount, (account) =>
            Effect.sync(() => {
              seen.push(account?.id)
            }))
      ).pipe(
        Effect.provide(subscriber)
      )
      yield* Broker.publish("orders.created", text("1")).pipe(Effect.provide(publisher))
      expect(seen).toEqual(["orders"])
      const anonymous = yield* Effect.either(
        Broker.publish("orders.created", text("2")).pipe(Effect.provide(subscriber))
      )
      expect(failuresOf(anonymous)[0]).toMatchObject({ reason: "Unauthorized" })
      // The publisher-only wrapper does not check its own subscribers.
      const unchecked: Array<string> = []
      yield* Broker.subscribe("orders.unchecked", (m) =>
        Effect.sync(() => {
          unchecked.push(decode(m.body))
        })).pipe(
          Effect.provide(publisher)
        )
      yield* inner.publish("orders.unchecked", text("3"))
      expect(unchecked).toEqual(["3"])
    }).pipe(Effect.provide(Identity)))
})

describe("Auth on the HTTP broker's endpoint (raw POSTs, as anyone on the network could send)", () => {
  // The one line of docs/broker.md "Exposure" and Defaults.layer's JSDoc that makes a Defaults stack's broker
  // endpoint require a token (issue 22, item 5); `Identity` is the docs' `AuthLive` (Auth, Rules and the
  // publishing ServiceIdentity). Bound to loopback here (the docs bind "0.0.0.0").
  const stack = Defaults.layerWith({
    registry: Registry.layerMemory,
    broker: AuthMiddleware.layerBroker.pipe(
      Layer.provide(HttpBroker.layer({ host: "127.0.0.1" })),
      Layer.provide(Identity)
    )
  })

  it.scopedLive("no token → 401 Unauthorized, a token without a grant → 403 Forbidden, a granted token → 204; publishes carry the identity's token", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      const subscription = yield* Broker.subscribe("orders.created", (m) =>
        Effect.sync(() => {
          seen.push(decode(m.body))
        }))
      const post = (headers: Record<string, string>, body: string) =>
        Effect.promise(async () => {
          const response = await fetch(subscription.endpoint!, { method: "POST", headers, body })
          return { status: response.status, text: await response.text() }
        })
      const anonymous = yield* post({}, "anonymous")
      expect(anonymous.status).toBe(401)
      expect(JSON.parse(anonymous.text)).toMatchObject({ reason: "Unauthorized" })
      const foreign = yield* post({ "micro-header-authorization": `Bearer ${yield* tokenOf(intruder)}` }, "foreign")
      expect(foreign.status).toBe(403)
      expect(JSON.parse(foreign.text)).toMatchObject({ reason: "Forbidden" })
      const granted = yield* post({ "micro-header-authorization": `Bearer ${yield* tokenOf(orders)}` }, "granted")
      expect(granted.status).toBe(204)
      // The stack's own publishes carry the `orders` identity's token and are delivered.
      yield* Broker.publish("orders.created", text("published"))
      expect(seen).toEqual(["granted", "published"])
    }).pipe(Effect.provide(Layer.merge(stack, AuthLive))))
})
