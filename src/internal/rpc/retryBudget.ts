/**
 * A client runtime's retry budget (Finagle's RetryBudget, gRPC's retry throttling): a token bucket that
 * every call fills by `ratio` and every retry or hedge drains by one, plus a floor of
 * `minRetriesPerSecond` refilled by time, capped at `burst` (it starts full).
 *
 * In steady failure at most `ratio` of calls are retried (after the saved-up burst is spent), so a sick
 * cluster sees at most (1 + ratio)× its normal load instead of (1 + retries)×.
 *
 * Cost on the call path: `deposit` is one compare and one add. The clock is read only on withdrawal.
 */
import type * as Clock from "effect/Clock"
import type { RetryBudgetOptions } from "../../Client.js"

export const retryBudgetDefaults = { ratio: 0.2, minRetriesPerSecond: 10, burst: 100 } as const

export class RetryBudget {
  private readonly ratio: number
  private readonly perMilli: number
  private readonly burst: number
  /** Retries available now. */
  balance: number
  private refilledAt: number

  constructor(private readonly clock: Clock.Clock, options?: RetryBudgetOptions) {
    this.ratio = Math.max(0, options?.ratio ?? retryBudgetDefaults.ratio)
    this.perMilli = Math.max(0, options?.minRetriesPerSecond ?? retryBudgetDefaults.minRetriesPerSecond) / 1000
    this.burst = Math.max(1, options?.burst ?? retryBudgetDefaults.burst)
    this.balance = this.burst
    this.refilledAt = clock.unsafeCurrentTimeMillis()
  }

  /** A call was made. */
  deposit(): void {
    if (this.balance < this.burst) this.balance = Math.min(this.burst, this.balance + this.ratio)
  }

  /** Takes one retry from the budget; false when it is empty. */
  tryWithdraw(): boolean {
    const now = this.clock.unsafeCurrentTimeMillis()
    if (now > this.refilledAt) {
      this.balance = Math.min(this.burst, this.balance + (now - this.refilledAt) * this.perMilli)
      this.refilledAt = now
    }
    // (the epsilon absorbs the rounding of adding `ratio` many times: 5 × 0.2 is a retry)
    if (this.balance < 1 - 1e-9) return false
    this.balance -= 1
    return true
  }
}
