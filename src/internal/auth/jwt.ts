/**
 * JWT access tokens with jose. Tokens are signed by one active key and carry its `kid`; verification
 * needs only the public keys (a keyset), so any service can inspect tokens offline. Rotation: add the new
 * key's public part to every verifier's set, switch the issuer's signing key, and drop the old public key
 * once the last token signed with it has expired (at most the access-token lifetime later).
 *
 * Time comes from `Clock` (passed to jose as `currentDate`), so `TestClock` decides what is expired.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Jose from "jose"
import { randomUUID } from "node:crypto"
import type { Account, JwtAlgorithm, PublicKey, SigningKey } from "../../Auth.js"
import { AuthError } from "../../Auth.js"
import { Unauthorized } from "../../Errors.js"
import { ERROR_ID } from "./issuer.js"

const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "priv"] as const

/**
 * jose, loaded by the first key import or generation: ≈90 ms of module loading (measured) that processes
 * without JWT auth, and every process's start-up, would otherwise pay.
 */
let loaded: typeof Jose | undefined
const loadJose: Effect.Effect<typeof Jose> = Effect.suspend(() =>
  loaded !== undefined ? Effect.succeed(loaded) : Effect.promise(async () => (loaded = await import("jose")))
)

const inferAlgorithm = (jwk: Jose.JWK, alg: JwtAlgorithm | undefined): Effect.Effect<JwtAlgorithm, AuthError> => {
  const inferred: JwtAlgorithm | undefined = jwk.kty === "OKP" && jwk.crv === "Ed25519"
    ? "EdDSA"
    : jwk.kty === "EC" && jwk.crv === "P-256"
    ? "ES256"
    : undefined
  if (inferred === undefined) {
    return Effect.fail(
      new AuthError({ reason: "InvalidKey", detail: "only Ed25519 (EdDSA) and P-256 (ES256) keys are supported" })
    )
  }
  if (alg !== undefined && alg !== inferred) {
    return Effect.fail(new AuthError({ reason: "InvalidKey", detail: `key is ${inferred}, not ${alg}` }))
  }
  return Effect.succeed(inferred)
}

const importKey = (jwk: Jose.JWK, alg: JwtAlgorithm, kid: string) =>
  Effect.flatMap(loadJose, (jose) =>
    Effect.tryPromise({
      try: () => jose.importJWK(jwk, alg),
      catch: (cause) => new AuthError({ reason: "InvalidKey", detail: `cannot import key ${kid}`, cause })
    }))

/** The public half of a signing key. */
export const publicKeyOf = (key: SigningKey): PublicKey => {
  const jwk: Record<string, unknown> = { ...key.privateKey }
  for (const member of PRIVATE_MEMBERS) delete jwk[member]
  return key.alg === undefined ? { kid: key.kid, publicKey: jwk } : { kid: key.kid, alg: key.alg, publicKey: jwk }
}

export const generateSigningKey = (
  options?: { readonly alg?: JwtAlgorithm | undefined; readonly kid?: string | undefined }
): Effect.Effect<{ readonly signingKey: SigningKey; readonly publicKey: PublicKey }> =>
  Effect.flatMap(loadJose, (jose) =>
    Effect.promise(async () => {
      const alg = options?.alg ?? "EdDSA"
      const pair = await jose.generateKeyPair(
        alg,
        alg === "EdDSA" ? { crv: "Ed25519", extractable: true } : {
          extractable: true
        }
      )
      const privateKey = await jose.exportJWK(pair.privateKey)
      const publicJwk = await jose.exportJWK(pair.publicKey)
      const kid = options?.kid ?? (await jose.calculateJwkThumbprint(publicJwk))
      return { signingKey: { kid, alg, privateKey }, publicKey: { kid, alg, publicKey: publicJwk } }
    }))

/** Only called after a verification, so jose is loaded. */
const verificationDetail = (cause: unknown): string => {
  const jose = loaded!
  if (cause instanceof jose.errors.JWTExpired) return "token expired"
  if (cause instanceof jose.errors.JWSSignatureVerificationFailed) return "invalid token signature"
  if (cause instanceof jose.errors.JWKSNoMatchingKey) return "token signed by an unknown key"
  if (cause instanceof jose.errors.JWTClaimValidationFailed) return `invalid token: ${cause.message}`
  if (cause instanceof jose.errors.JOSEAlgNotAllowed) return "token algorithm not allowed"
  return "malformed token"
}

const isStringArray = (u: unknown): u is ReadonlyArray<string> =>
  Array.isArray(u) && u.every((s) => typeof s === "string")

const isStringRecord = (u: unknown): u is Readonly<Record<string, string>> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && Object.values(u).every((s) => typeof s === "string")

const accountOf = (payload: Jose.JWTPayload): Account | undefined => {
  const { iss, metadata, scopes, sub, type } = payload
  if (typeof sub !== "string" || (type !== "user" && type !== "service")) return undefined
  if (!isStringArray(scopes) || !isStringRecord(metadata)) return undefined
  return { id: sub, type, scopes, metadata, issuer: typeof iss === "string" ? iss : "" }
}

export interface VerifierOptions {
  readonly publicKeys: ReadonlyArray<PublicKey>
  readonly issuer?: string | undefined
  readonly clockTolerance?: Duration.DurationInput | undefined
}

export const makeVerifier = (
  options: VerifierOptions
): Effect.Effect<(accessToken: string) => Effect.Effect<Account, Unauthorized>, AuthError> =>
  Effect.gen(function*() {
    if (options.publicKeys.length === 0) {
      return yield* new AuthError({ reason: "InvalidKey", detail: "a verifier needs at least one public key" })
    }
    const jose = yield* loadJose
    const keys = new Map<string, { readonly alg: JwtAlgorithm; readonly key: Jose.CryptoKey | Uint8Array }>()
    for (const pk of options.publicKeys) {
      if (keys.has(pk.kid)) {
        return yield* new AuthError({ reason: "InvalidKey", detail: `duplicate key id ${pk.kid}` })
      }
      const alg = yield* inferAlgorithm(pk.publicKey, pk.alg)
      // Only the public members: a private JWK passed by mistake must not become a (private) verification key.
      const jwk: Record<string, unknown> = { ...pk.publicKey }
      for (const member of PRIVATE_MEMBERS) delete jwk[member]
      keys.set(pk.kid, { alg, key: yield* importKey(jwk, alg, pk.kid) })
    }
    const algorithms = [...new Set([...keys.values()].map((k) => k.alg))]
    const getKey: Jose.JWTVerifyGetKey = (header) => {
      const entry = header.kid === undefined ? undefined : keys.get(header.kid)
      // The key decides the algorithm: a token cannot pick a weaker one for a known kid.
      if (entry === undefined || entry.alg !== header.alg) throw new jose.errors.JWKSNoMatchingKey()
      return entry.key
    }
    const tolerance = options.clockTolerance === undefined
      ? 0
      : Math.floor(Duration.toSeconds(Duration.decode(options.clockTolerance)))
    const verifyOptions = {
      algorithms,
      requiredClaims: ["exp", "sub"],
      clockTolerance: tolerance,
      ...(options.issuer === undefined ? {} : { issuer: options.issuer })
    }
    return (accessToken: string) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.tryPromise({
          try: () => jose.jwtVerify(accessToken, getKey, { ...verifyOptions, currentDate: new Date(now) }),
          catch: (cause) => Unauthorized.of(verificationDetail(cause), ERROR_ID)
        })).pipe(
          Effect.flatMap(({ payload }) => {
            const account = accountOf(payload)
            return account === undefined
              ? Effect.fail(Unauthorized.of("invalid token claims", ERROR_ID))
              : Effect.succeed(account)
          })
        )
  })

export const makeSigner = (
  key: SigningKey
): Effect.Effect<
  (account: Account, expiresAt: number) => Effect.Effect<{ readonly accessToken: string; readonly expiry: number }>,
  AuthError
> =>
  Effect.gen(function*() {
    const jose = yield* loadJose
    const alg = yield* inferAlgorithm(key.privateKey, key.alg)
    if (typeof key.privateKey.d !== "string") {
      return yield* new AuthError({ reason: "InvalidKey", detail: `signing key ${key.kid} has no private part` })
    }
    const privateKey = yield* importKey(key.privateKey, alg, key.kid)
    return (account: Account, expiresAt: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        // JWT times are whole seconds; report the expiry the token really carries.
        const exp = Math.floor(expiresAt / 1000)
        return Effect.promise(() =>
          new jose.SignJWT({ type: account.type, scopes: account.scopes, metadata: account.metadata })
            .setProtectedHeader({ alg, kid: key.kid, typ: "JWT" })
            .setSubject(account.id)
            .setIssuer(account.issuer)
            .setIssuedAt(Math.floor(now / 1000))
            .setExpirationTime(exp)
            .setJti(randomUUID())
            .sign(privateKey)
        ).pipe(Effect.map((accessToken) => ({ accessToken, expiry: exp * 1000 })))
      })
  })
