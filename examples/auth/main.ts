/**
 * Auth end to end, in one process over real mutual-TLS sockets on 127.0.0.1:
 * a project CA, an auth service issuing JWTs, a billing service enforcing rules with the public key only,
 * and a "reports" service calling it with its own identity.
 *   npx tsx examples/auth/main.ts
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import {
  Auth,
  AuthMiddleware,
  AuthRules,
  Certificates,
  Client,
  Codec,
  Metadata,
  Registry,
  Selector,
  Server,
  ServiceIdentity,
  TlsTransport
} from "effect-micro"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Billing, Issuer } from "./contract.js"

// Service accounts and users the auth service knows (normally from configuration).
const reports = { id: "reports", secret: "reports-secret" }
const alice = { id: "alice", secret: "alice-password" }
const accounts: ReadonlyArray<Auth.AccountSeed> = [
  { ...reports, type: "service", scopes: ["billing.read"] },
  { ...alice, type: "user", scopes: ["billing.admin"] }
]

// Who may call what. Anything not granted is denied.
const authRules: ReadonlyArray<AuthRules.Rule> = [
  {
    id: "login",
    scope: AuthRules.ScopePublic,
    resource: { type: "service", name: "auth", endpoint: "Token" },
    access: "grant",
    priority: 0
  }
]
const billingRules: ReadonlyArray<AuthRules.Rule> = [
  {
    id: "read",
    scope: "billing.read",
    resource: { type: "service", name: "billing", endpoint: "Balance" },
    access: "grant",
    priority: 0
  },
  {
    id: "admin",
    scope: "billing.admin",
    resource: { type: "service", name: "billing", endpoint: "*" },
    access: "grant",
    priority: 0
  }
]

const main = Effect.gen(function*() {
  // --- 1. The project's PKI and signing key (an operator does this once) ---
  const ca = yield* Certificates.makeCa()
  const certificate = (identity: string) => Certificates.issue(ca, { identity })
  const tls = (issued: Certificates.Issued) => TlsTransport.layer(TlsTransport.optionsFromIssued(issued))
  const { publicKey, signingKey } = yield* Auth.generateSigningKey()
  // One in-memory registry stands in for mdns/etcd, shared by everyone in this process.
  const registry = Layer.succeedContext(yield* Layer.build(Registry.layerMemory))

  // --- 2. The auth service: issues tokens (public endpoint), the only holder of the private key ---
  const IssuerLive = Issuer.toLayer(Effect.map(Auth.Auth, (auth) => ({
    Token: (request: Auth.TokenRequest) => auth.token(request).pipe(Effect.catchTag("AuthError", Effect.die))
  })))
  yield* Layer.build(
    Server.layer(Issuer, { name: "auth", address: "127.0.0.1:0" }).pipe(
      Layer.provide(IssuerLive),
      Layer.provide(AuthMiddleware.layerServer()),
      Layer.provide(Layer.mergeAll(Auth.layerJwt({ signingKey, accounts }), AuthRules.layer(authRules))),
      Layer.provide(Layer.mergeAll(tls(yield* certificate("auth")), Codec.layer, registry))
    )
  )

  // --- 3. The billing service: verifies tokens with the public key, enforces its rules, and only honours a
  //        service token over that service's own certificate ---
  const BillingLive = Billing.toLayer({
    Balance: ({ customer }) =>
      Effect.gen(function*() {
        const account = yield* Auth.CurrentAccount
        const call = yield* Effect.orDie(Metadata.currentCall)
        return { amount: customer.length * 7, account: account?.id ?? "-", peer: call.peer.identity ?? "-" }
      }),
    Refund: ({ amount, customer }) =>
      Effect.map(Auth.CurrentAccount, (account) => `refunded ${amount} to ${customer} (by ${account?.id})`)
  })
  yield* Layer.build(
    Server.layer(Billing, { name: "billing", address: "127.0.0.1:0" }).pipe(
      Layer.provide(BillingLive),
      Layer.provide(AuthMiddleware.layerServer({ matchPeerIdentity: "service" })),
      Layer.provide(Layer.mergeAll(Auth.layerJwtVerifier({ publicKeys: [publicKey] }), AuthRules.layer(billingRules))),
      Layer.provide(Layer.mergeAll(tls(yield* certificate("billing")), Codec.layer, registry))
    )
  )

  // --- 4. The reports service: its identity comes from the auth service (over mTLS, no token needed for
  //        Token), and its billing client attaches that identity's token to every call ---
  const reportsInfra = Layer.mergeAll(tls(yield* certificate("reports")), Codec.layer, Selector.layer, registry)
  const plainClient = yield* Layer.build(Client.layer().pipe(Layer.provide(reportsInfra)))
  const authService = yield* Effect.provide(Client.make(Issuer, { service: "auth" }), plainClient)
  const identity = ServiceIdentity.layerWith({
    credentials: reports,
    issue: (request) => authService.Token(request)
  })
  const billing = yield* Effect.provide(
    Client.make(Billing, { service: "billing" }),
    yield* Layer.build(AuthMiddleware.layerClient().pipe(Layer.provide(identity), Layer.provide(reportsInfra)))
  )

  const balance = yield* billing.Balance({ customer: "acme" })
  yield* Console.log(`reports → Balance: ${balance.amount} (account ${balance.account}, mTLS peer ${balance.peer})`)

  const refused = yield* Effect.flip(billing.Refund({ customer: "acme", amount: 10 }))
  yield* Console.log(`reports → Refund: ${refused._tag} ${refused.code}: ${"detail" in refused ? refused.detail : ""}`)

  // A user's token, passed per call, replaces the service token (e.g. forwarded from an API gateway).
  const aliceToken = yield* authService.Token(alice)
  const refunded = yield* billing.Refund({ customer: "acme", amount: 10 }, {
    metadata: Auth.bearer(aliceToken.accessToken)
  })
  yield* Console.log(`reports, for alice → Refund: ${refunded}`)

  const anonymous = yield* Effect.provide(Client.make(Billing, { service: "billing" }), plainClient)
  const unauthorized = yield* Effect.flip(anonymous.Balance({ customer: "acme" }))
  yield* Console.log(`anonymous → Balance: ${unauthorized._tag} ${unauthorized.code}: ${unauthorized.detail}`)

  // --- 5. A process with a certificate from another CA cannot even connect ---
  const intruderCa = yield* Certificates.makeCa({ name: "Intruder CA" })
  const intruderCert = yield* Certificates.issue(intruderCa, { identity: "reports" })
  const intruder = yield* Effect.provide(
    Client.make(Billing, { service: "billing", retry: false }),
    yield* Layer.build(
      Client.layer().pipe(Layer.provide(Layer.mergeAll(
        TlsTransport.layer({ ...TlsTransport.optionsFromIssued(intruderCert), ca: ca.certPem }),
        Codec.layer,
        Selector.layer,
        registry
      )))
    )
  )
  const rejected = yield* Effect.flip(intruder.Balance({ customer: "acme" }))
  yield* Console.log(
    `intruder (foreign CA) → Balance: ${rejected._tag}${"reason" in rejected ? ` (${rejected.reason})` : ""}`
  )
})

main.pipe(Effect.scoped, NodeRuntime.runMain)
