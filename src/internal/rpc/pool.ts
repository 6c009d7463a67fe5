/**
 * The client's connections, one per node address, dialled once and shared by every call: through the
 * `Transport` (native protocol), or through the dialer of the node's `protocol` (internal/rpc/protocols.ts).
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import { TransportError } from "../../Errors.js"
import type { Node } from "../../Registry.js"
import type { Transport } from "../../Transport.js"
import type { CallConnection } from "./clientConnection.js"
import { ClientConnection } from "./clientConnection.js"
import type { DeadlineWheel } from "./deadlines.js"
import type { ProtocolDialer } from "./protocols.js"
import { NATIVE_PROTOCOL, PROTOCOL_KEY } from "./protocols.js"

export class Pool {
  private readonly connections = new Map<string, CallConnection>()
  private readonly dialing = new Map<string, Deferred.Deferred<CallConnection, TransportError>>()
  closed = false

  constructor(
    private readonly transport: Transport["Type"],
    private readonly maxFrameSize: number,
    private readonly deadlines: DeadlineWheel,
    private readonly dialers: ReadonlyMap<string, ProtocolDialer> = new Map()
  ) {}

  /** An open, usable connection to `address`, if the pool has one. */
  peek(address: string): CallConnection | undefined {
    const existing = this.connections.get(address)
    return existing !== undefined && !existing.unusable ? existing : undefined
  }

  get(node: Node): Effect.Effect<CallConnection, TransportError> {
    const address = node.address
    const existing = this.connections.get(address)
    if (existing !== undefined && !existing.unusable) return Effect.succeed(existing)
    return Effect.suspend(() => {
      if (this.closed) return Effect.fail(TransportError.of("closed", address, "client is closed"))
      const pending = this.dialing.get(address)
      if (pending !== undefined) return Deferred.await(pending)
      const deferred = Deferred.unsafeMake<CallConnection, TransportError>(FiberId.none)
      this.dialing.set(address, deferred)
      const onGone = (gone: CallConnection) => {
        if (this.connections.get(address) === gone) this.connections.delete(address)
      }
      const protocol = node.metadata[PROTOCOL_KEY]
      const dialer = protocol === undefined ? undefined : this.dialers.get(protocol)
      const dialled: Effect.Effect<CallConnection, TransportError> = dialer !== undefined
        ? dialer(node, { maxFrameSize: this.maxFrameSize, onGone, deadlines: this.deadlines })
        : protocol !== undefined && protocol !== NATIVE_PROTOCOL
        ? Effect.fail(TransportError.of(
          "dial",
          address,
          `node ${node.id} speaks "${protocol}", which this client cannot (for "grpc", build it with GrpcClient.layer)`
        ))
        : this.transport.dial(address).pipe(
          Effect.map((connection) =>
            new ClientConnection(address, connection, this.maxFrameSize, this.deadlines, onGone)
          )
        )
      return dialled.pipe(
        Effect.flatMap((client) => {
          if (this.closed) {
            // The client closed while this dial was in flight: do not leak the connection.
            client.close()
            return Effect.fail(TransportError.of("closed", address, "client is closed"))
          }
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
