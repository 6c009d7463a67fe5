import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import * as jose from "jose"
import * as Auth from "../src/Auth.js"

const setup = (options?: { alg?: Auth.JwtAlgorithm; kid?: string }) =>
  Effect.gen(function*() {
    const keys = yield* Auth.generateSigningKey(options)
    const issuer = yield* Auth.makeJwt({ signingKey: keys.signingKey, accessTokenExpiry: "1 minute" })
    const { account, credentials } = yield* issuer.generate("svc", { type: "service", scopes: ["a"] })
    const token = yield* issuer.token(credentials)
    return { keys, issuer, account, credentials, token }
  })

const detail = <A>(effect: Effect.Effect<A, { readonly _tag: string; readonly detail?: string }>) =>
  Effect.map(Effect.flip(effect), (error) => `${error._tag}: ${error.detail}`)

const [header, payload, signature] = [0, 1, 2]
const part = (token: string, i: number) => token.split(".")[i]!
const decodePart = (token: string, i: number) =>
  JSON.parse(Buffer.from(part(token, i), "base64url").toString()) as Record<string, unknown>
const encodePart = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")

describe("Auth JWT", () => {
  it.effect("tokens are EdDSA JWTs with a kid, the account in the claims and exp from Clock", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(1_700_000_000_000)
      const { keys, token } = yield* setup()
      expect(decodePart(token.accessToken, header)).toEqual({ alg: "EdDSA", kid: keys.signingKey.kid, typ: "JWT" })
      const claims = decodePart(token.accessToken, payload)
      expect(claims).toMatchObject({
        sub: "svc",
        iss: "effect-micro",
        type: "service",
        scopes: ["a"],
        metadata: {},
        iat: 1_700_000_000,
        exp: 1_700_000_060
      })
      expect(token.expiry).toBe(1_700_000_060_000)
      // The default kid is the RFC 7638 thumbprint of the public key.
      expect(keys.signingKey.kid).toBe(
        yield* Effect.promise(() => jose.calculateJwkThumbprint(keys.publicKey.publicKey))
      )
      expect(keys.publicKey.publicKey).not.toHaveProperty("d")
    }))

  it.effect("a verifier with public keys only inspects tokens, and cannot issue", () =>
    Effect.gen(function*() {
      const { account, keys, token } = yield* setup()
      const verifier = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey], issuer: "effect-micro" })
      expect(yield* verifier.inspect(token.accessToken)).toEqual(account)
      const gen = yield* Effect.flip(verifier.generate("x"))
      expect(gen.reason).toBe("Unsupported")
      const tok = yield* Effect.flip(verifier.token({ id: "svc", secret: "x" }))
      expect(tok._tag === "AuthError" && tok.reason).toBe("Unsupported")
      // Expiry is enforced on the verifier's Clock too.
      yield* TestClock.adjust("60 seconds")
      expect(yield* detail(verifier.inspect(token.accessToken))).toBe("Unauthorized: token expired")
    }))

  it.effect("clockTolerance allows for skew between issuer and verifier", () =>
    Effect.gen(function*() {
      const { keys, token } = yield* setup()
      const lenient = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey], clockTolerance: "10 seconds" })
      yield* TestClock.adjust("65 seconds")
      expect((yield* lenient.inspect(token.accessToken)).id).toBe("svc")
      yield* TestClock.adjust("10 seconds")
      expect(yield* detail(lenient.inspect(token.accessToken))).toBe("Unauthorized: token expired")
    }))

  it.effect("a tampered token is Unauthorized", () =>
    Effect.gen(function*() {
      const { issuer, token } = yield* setup()
      const t = token.accessToken
      // Escalate the scopes, keep the signature.
      const claims = { ...decodePart(t, payload), scopes: ["admin"] }
      const escalated = [part(t, header), encodePart(claims), part(t, signature)].join(".")
      expect(yield* detail(issuer.inspect(escalated))).toBe("Unauthorized: invalid token signature")
      // Flip a bit of the signature.
      const sig = Buffer.from(part(t, signature), "base64url")
      sig[0] = sig[0]! ^ 1
      const forged = [part(t, header), part(t, payload), sig.toString("base64url")].join(".")
      expect(yield* detail(issuer.inspect(forged))).toBe("Unauthorized: invalid token signature")
      // Truncated, or not a JWT at all.
      expect(yield* detail(issuer.inspect(t.slice(0, -10)))).toMatch(/^Unauthorized: /)
      expect(yield* detail(issuer.inspect("not-a-jwt"))).toBe("Unauthorized: malformed token")
    }))

  it.effect("a token signed with another key under the same kid is Unauthorized", () =>
    Effect.gen(function*() {
      const { keys, token } = yield* setup({ kid: "k1" })
      const impostor = yield* Auth.generateSigningKey({ kid: "k1" })
      const verifier = yield* Auth.makeJwtVerifier({ publicKeys: [impostor.publicKey] })
      expect(yield* detail(verifier.inspect(token.accessToken))).toBe("Unauthorized: invalid token signature")
      // And the other way round: the impostor's token does not pass the real verifier.
      const fake = yield* Auth.makeJwt({ signingKey: impostor.signingKey })
      const { credentials } = yield* fake.generate("svc", { scopes: ["admin"] })
      const fakeToken = yield* fake.token(credentials)
      const real = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey] })
      expect(yield* detail(real.inspect(fakeToken.accessToken))).toBe("Unauthorized: invalid token signature")
    }))

  it.effect("an unknown kid, a missing kid, or another algorithm is Unauthorized", () =>
    Effect.gen(function*() {
      const { keys, token } = yield* setup({ kid: "k1" })
      const other = yield* Auth.generateSigningKey({ kid: "k2" })
      const verifier = yield* Auth.makeJwtVerifier({ publicKeys: [other.publicKey] })
      expect(yield* detail(verifier.inspect(token.accessToken))).toBe("Unauthorized: token signed by an unknown key")
      const real = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey] })
      const claims = decodePart(token.accessToken, payload)
      // No kid.
      const privateKey = yield* Effect.promise(() => jose.importJWK(keys.signingKey.privateKey as jose.JWK, "EdDSA"))
      const noKid = yield* Effect.promise(() =>
        new jose.SignJWT(claims).setProtectedHeader({ alg: "EdDSA" }).sign(privateKey)
      )
      expect(yield* detail(real.inspect(noKid))).toBe("Unauthorized: token signed by an unknown key")
      // alg "none".
      const unsecured = new jose.UnsecuredJWT(claims).encode()
      expect(yield* detail(real.inspect(unsecured))).toMatch(/^Unauthorized: /)
      // HS256 "signed" with the public key as an HMAC secret, under the right kid (algorithm confusion).
      const secret = new TextEncoder().encode(JSON.stringify(keys.publicKey.publicKey))
      const hs = yield* Effect.promise(() =>
        new jose.SignJWT(claims).setProtectedHeader({ alg: "HS256", kid: "k1" }).sign(secret)
      )
      expect(yield* detail(real.inspect(hs))).toMatch(/^Unauthorized: /)
    }))

  it.effect("key rotation: tokens signed with the old kid verify while its key is in the set", () =>
    Effect.gen(function*() {
      const old = yield* setup({ kid: "2024" })
      const next = yield* Auth.generateSigningKey({ kid: "2025" })
      // The issuer switches to the new key and keeps the old public key for tokens still in flight.
      const rotated = yield* Auth.makeJwt({ signingKey: next.signingKey, publicKeys: [old.keys.publicKey] })
      const { credentials } = yield* rotated.generate("svc")
      const fresh = yield* rotated.token(credentials)
      expect(decodePart(fresh.accessToken, header).kid).toBe("2025")
      expect((yield* rotated.inspect(old.token.accessToken)).id).toBe("svc")
      const during = yield* Auth.makeJwtVerifier({ publicKeys: [old.keys.publicKey, next.publicKey] })
      expect((yield* during.inspect(old.token.accessToken)).id).toBe("svc")
      expect((yield* during.inspect(fresh.accessToken)).id).toBe("svc")
      // Once the old key is dropped, its tokens stop verifying.
      const after = yield* Auth.makeJwtVerifier({ publicKeys: [next.publicKey] })
      expect(yield* detail(after.inspect(old.token.accessToken))).toBe("Unauthorized: token signed by an unknown key")
      expect((yield* after.inspect(fresh.accessToken)).id).toBe("svc")
    }))

  it.effect("a verifier bound to an issuer refuses other issuers", () =>
    Effect.gen(function*() {
      const keys = yield* Auth.generateSigningKey()
      const issuer = yield* Auth.makeJwt({ signingKey: keys.signingKey, issuer: "staging" })
      const { credentials } = yield* issuer.generate("svc")
      const token = yield* issuer.token(credentials)
      expect((yield* issuer.inspect(token.accessToken)).issuer).toBe("staging")
      const prod = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey], issuer: "production" })
      expect(yield* detail(prod.inspect(token.accessToken))).toMatch(/^Unauthorized: invalid token: .*iss/)
    }))

  it.effect("ES256 keys work as well", () =>
    Effect.gen(function*() {
      const { account, keys, token } = yield* setup({ alg: "ES256" })
      expect(decodePart(token.accessToken, header).alg).toBe("ES256")
      const verifier = yield* Auth.makeJwtVerifier({ publicKeys: [keys.publicKey] })
      expect(yield* verifier.inspect(token.accessToken)).toEqual(account)
    }))

  it.effect("unusable keys fail at construction with AuthError InvalidKey", () =>
    Effect.gen(function*() {
      const { publicKey, signingKey } = yield* Auth.generateSigningKey({ kid: "k" })
      const reasons = yield* Effect.forEach([
        Auth.makeJwtVerifier({ publicKeys: [] }),
        Auth.makeJwtVerifier({ publicKeys: [publicKey, publicKey] }),
        Auth.makeJwtVerifier({ publicKeys: [{ kid: "k", publicKey: { kty: "RSA", n: "x", e: "AQAB" } }] }),
        Auth.makeJwtVerifier({ publicKeys: [{ ...publicKey, alg: "ES256" }] }),
        Auth.makeJwtVerifier({ publicKeys: [{ kid: "k", publicKey: { kty: "OKP", crv: "Ed25519", x: "!!" } }] }),
        Auth.makeJwt({ signingKey: { kid: "k", privateKey: publicKey.publicKey } })
      ], (make) => Effect.map(Effect.flip(make), (e) => e.reason))
      expect(reasons).toEqual(Array(6).fill("InvalidKey"))
      // A private JWK given to a verifier is used for its public part only.
      const verifier = yield* Auth.makeJwtVerifier({ publicKeys: [{ kid: "k", publicKey: signingKey.privateKey }] })
      const issuer = yield* Auth.makeJwt({ signingKey })
      const { credentials } = yield* issuer.generate("svc")
      expect((yield* verifier.inspect((yield* issuer.token(credentials)).accessToken)).id).toBe("svc")
    }))
})
