/**
 * Auth wired into the RPC runtime: the server middleware (bearer token → account → rule → `CurrentAccount`)
 * and the client middleware (attach the service's own token; refresh once and retry once on "token expired").
 */
import * as Effect from "effect/Effect"
import type { Account, AuthorizeRequest } from "../../Auth.js"
import { bearer, CurrentAccount } from "../../Auth.js"
import type { ClientMiddleware, OutgoingCall } from "../../Client.js"
import type { CallError } from "../../Errors.js"
import { Forbidden, Unauthorized } from "../../Errors.js"
import type { IncomingCall } from "../../Metadata.js"
import type { Middleware } from "../../Server.js"
import type { ServiceIdentity } from "../../ServiceIdentity.js"

export type PeerIdentityMatch = "never" | "service" | "always"

export interface ServerOptions {
  readonly matchPeerIdentity?: PeerIdentityMatch | undefined
}

export interface ClientOptions {
  readonly refreshOnExpiry?: boolean | undefined
}

/** The `detail` the Auth layers give an access token past its expiry (memory and JWT alike). */
export const TOKEN_EXPIRED = "token expired"

/** An `Unauthorized` reply that a fresh token may cure. */
export const isTokenExpired = (error: unknown): error is Unauthorized =>
  error instanceof Unauthorized && error.detail === TOKEN_EXPIRED

/**
 * With `matchPeerIdentity`, a token is only honoured on a connection whose mTLS identity is the token's
 * account: a stolen service token is useless without the service's private key.
 */
const checkPeer = (
  mode: PeerIdentityMatch,
  call: IncomingCall,
  account: Account | undefined
): Effect.Effect<void, Forbidden> => {
  if (mode === "never" || account === undefined) return Effect.void
  if (mode === "service" && account.type !== "service") return Effect.void
  const peer = call.peer.identity
  if (peer === account.id) return Effect.void
  return Effect.fail(Forbidden.of(
    peer === undefined
      ? `account ${account.id} must call over mTLS with its own certificate (no peer certificate)`
      : `account ${account.id} presented over a connection authenticated as ${peer}`,
    call.service
  ))
}

export const makeServerMiddleware = (
  authorize: (request: AuthorizeRequest) => Effect.Effect<Account | undefined, Unauthorized | Forbidden>,
  options?: ServerOptions
): Middleware => {
  const mode = options?.matchPeerIdentity ?? "never"
  return (call, next) =>
    Effect.flatMap(authorize(call), (account) =>
      mode === "never"
        ? Effect.provideService(next, CurrentAccount, account)
        : Effect.zipRight(checkPeer(mode, call, account), Effect.provideService(next, CurrentAccount, account)))
}

const hasAuthorization = (metadata: Readonly<Record<string, string>>): boolean => {
  if (metadata["authorization"] !== undefined) return true
  for (const key in metadata) if (key.toLowerCase() === "authorization") return true
  return false
}

const withToken = (call: OutgoingCall, token: string): OutgoingCall => ({
  ...call,
  metadata: { ...call.metadata, ...bearer(token) }
})

export const makeClientMiddleware = (
  identity: ServiceIdentity.Service,
  options?: ClientOptions
): Effect.Effect<ClientMiddleware> =>
  Effect.map(Effect.makeSemaphore(1), (lock) => {
    const refreshOnExpiry = options?.refreshOnExpiry ?? true
    // Many calls may learn "token expired" at once: only the first refreshes, the others see that the
    // token changed meanwhile and just retry with the new one (a refresh token must not be spent twice).
    const refreshIfStill = (sent: string) =>
      lock.withPermits(1)(
        Effect.flatMap(identity.currentToken, (current) => current === sent ? identity.refresh : Effect.void)
      )
    const middleware: ClientMiddleware = <A, E, R>(
      call: OutgoingCall,
      next: (call: OutgoingCall) => Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | CallError, R> => {
      // A caller's own token (per call, or `Metadata.withOutgoing`) wins; it is never refreshed here.
      if (hasAuthorization(call.metadata)) return next(call)
      return Effect.flatMap(identity.currentToken, (token) => {
        const first = next(withToken(call, token))
        if (!refreshOnExpiry) return first
        return Effect.catchAll(first, (error): Effect.Effect<A, E, R> =>
          isTokenExpired(error)
            ? refreshIfStill(token).pipe(
              Effect.matchEffect({
                onFailure: (refreshError) =>
                  Effect.zipRight(
                    Effect.logWarning("effect-micro auth: token refresh after 'token expired' failed").pipe(
                      Effect.annotateLogs({ account: identity.id, error: String(refreshError) })
                    ),
                    Effect.fail(error)
                  ),
                onSuccess: () => Effect.flatMap(identity.currentToken, (fresh) => next(withToken(call, fresh)))
              })
            )
            : Effect.fail(error))
      })
    }
    return middleware
  })
