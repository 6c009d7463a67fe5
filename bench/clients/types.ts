/** What a scenario's client factory returns: a way to start one call, and to close. */
export interface LoadClient {
  /** Starts one echo call of `payload`; `done` is called exactly once, asynchronously, when it settles. */
  readonly call: (done: (error: unknown) => void) => void
  readonly close: () => Promise<void>
}

/** Builds a connected client for the server at `address` (`host:port`). Runs in the load-generator process. */
export type ClientFactory = (address: string) => Promise<LoadClient>
