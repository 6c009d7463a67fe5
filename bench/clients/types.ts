/** What a scenario's client factory returns: a way to start one call, and to close. */
export interface LoadClient {
  /** Starts one echo call of `payload`; `done` is called exactly once, asynchronously, when it settles. */
  readonly call: (done: (error: unknown) => void) => void
  /**
   * Optional, for Effect clients: runs `count` long-lived workers, each making one call after another (the
   * way Effect code calls a service: from a fiber it already runs in, not a fiber forked per call). After
   * each call a worker reports `settled(error, startedAt)` (`startedAt` from `performance.now()`) and stops
   * when it returns false. The load generator uses this instead of `call` when present.
   */
  readonly workers?: ((count: number, settled: (error: unknown, startedAt: number) => boolean) => void) | undefined
  readonly close: () => Promise<void>
}

/** Builds a connected client for the server at `address` (`host:port`). Runs in the load-generator process. */
export type ClientFactory = (address: string) => Promise<LoadClient>
