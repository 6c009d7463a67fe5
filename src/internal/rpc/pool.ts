/** The client's connections, one per node address, dialled once and shared by every call. */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { TransportError } from "../../Errors.js"
import type { Transport } from "../../Transport.js"
import { ClientConnection } from "./clientConnection.js"
import type { DeadlineWheel } from "./deadlines.js"

export class Pool {
  private readonly connections = new Map<string, ClientConnection>()
  private readonly dialing = new Map<string, Deferred.Deferred<ClientConnection, TransportError>>()
  closed = false

  constructor(
    private readonly transport: Transport["Type"],
    private readonly maxFrameSize: number,
    private readonly deadlines: DeadlineWheel
  ) {}

  /** An open, usable connection to `address`, if the pool has one. */
  peek(address: string): ClientConnection | undefined {
    const existing = this.connections.get(address)
    return existing !== undefined && !existing.unusable ? existing : undefined
  }

  get(address: string): Effect.Effect<ClientConnection, TransportError> {
    const existing = this.connections.get(address)
    if (existing !== undefined && !existing.unusable) return Effect.succeed(existing)
    return Effect.suspend(() => {
      if (this.closed) return Effect.fail(TransportError.of("closed", address, "client is closed"))
      const pending = this.dialing.get(address)
      if (pending !== undefined) return Deferred.await(pending)
      const deferred = Deferred.unsafeMake<ClientConnection, TransportError>(FiberId.none)
      this.dialing.set(address, deferred)
      return this.transport.dial(address).pipe(
        Effect.flatMap((connection) => {
          if (this.closed) {
            // The client closed while this dial was in flight: do not leak the connection.
            connection.destroy()
            return Effect.fail(TransportError.of("closed", address, "client is closed"))
          }
          const client = new ClientConnection(address, connection, this.maxFrameSize, this.deadlines, (gone) => {
            if (this.connections.get(address) === gone) this.connections.delete(address)
          })
          this.connections.set(address, client)
          return Effect.succeed(client)
        }),
        Effect.onExit((exit) => {
          this.dialing.delete(address)
          return Deferred.done(
            deferred,
            Exit.isInterrupted(exit)
              ? Exit.fail(TransportError.of("dial", address, "dial interrupted"))
              : exit
          )
        })
      )
    })
  }

  closeAll(): void {
    this.closed = true
    for (const connection of this.connections.values()) connection.close()
    this.connections.clear()
  }
}
