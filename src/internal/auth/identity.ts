/**
 * Client side: a service's own identity. Logs in with its credentials at start-up, then keeps the access
 * token fresh from a scoped fiber that sleeps on `Clock` until shortly before expiry, so `TestClock`
 * drives it and closing the scope stops it.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Token } from "../../Auth.js"
import type { IdentityError, ServiceIdentity, ServiceIdentityOptions } from "../../ServiceIdentity.js"

interface State {
  readonly token: Token
  readonly obtainedAt: number
}

/** Never refresh more often than this, even if the issuer hands out (nearly) expired tokens. */
const MIN_INTERVAL = 1_000

export const makeIdentity = (
  options: ServiceIdentityOptions
): Effect.Effect<ServiceIdentity.Service, IdentityError, Scope.Scope> =>
  Effect.gen(function*() {
    const refreshBefore = Duration.toMillis(Duration.decode(options.refreshBefore ?? "30 seconds"))
    const retry = options.retrySchedule ??
      Schedule.exponential("200 millis").pipe(Schedule.union(Schedule.spaced("30 seconds")))
    // Suspended: `issue` is called anew for every login (a token source may build its request per call).
    const login = Effect.suspend(() => options.issue(options.credentials))
    const state = yield* Ref.make<State>({
      token: yield* login,
      obtainedAt: yield* Clock.currentTimeMillis
    })
    const lock = yield* Effect.makeSemaphore(1)

    // Refresh with the refresh token; if that fails for any reason (expired, revoked, or consumed by a
    // request whose reply was lost), log in again with the credentials.
    const refresh: Effect.Effect<Token, IdentityError> = lock.withPermits(1)(
      Effect.gen(function*() {
        const current = yield* Ref.get(state)
        const token = yield* options.issue({ refreshToken: current.token.refreshToken }).pipe(
          Effect.orElse(() => login)
        )
        yield* Ref.set(state, { token, obtainedAt: yield* Clock.currentTimeMillis })
        return token
      })
    )

    const dueAt = (s: State) => {
      const lifetime = s.token.expiry - s.obtainedAt
      return Math.max(s.token.expiry - Math.min(refreshBefore, lifetime / 2), s.obtainedAt + MIN_INTERVAL)
    }

    const keepFresh = Effect.gen(function*() {
      while (true) {
        const now = yield* Clock.currentTimeMillis
        const due = dueAt(yield* Ref.get(state))
        if (due > now) {
          // Re-read after waking: a manual refresh may have replaced the token meanwhile.
          yield* Effect.sleep(Duration.millis(due - now))
          continue
        }
        yield* refresh.pipe(
          Effect.tapError((error) =>
            Effect.logWarning("effect-micro auth: token refresh failed, retrying").pipe(
              Effect.annotateLogs({ account: options.credentials.id, error: String(error) })
            )
          ),
          Effect.retry(retry),
          // A finite schedule gave up: wait a little and start over, the old token may still be valid.
          Effect.catchAll(() => Effect.sleep(Duration.millis(MIN_INTERVAL)))
        )
      }
    })
    yield* Effect.forkScoped(Effect.interruptible(keepFresh))

    return {
      id: options.credentials.id,
      current: Effect.map(Ref.get(state), (s) => s.token),
      currentToken: Effect.map(Ref.get(state), (s) => s.token.accessToken),
      refresh: Effect.asVoid(refresh)
    }
  })
