/**
 * Protocols other than the native one, by the `protocol` node metadata a server registers: the client's
 * pool dials a node through the dialer of its protocol (the gRPC plugin adds `grpc`), or through the
 * `Transport` with the native protocol when the node names none or `effect-micro/1`. The core imports no
 * protocol library: a plugin provides its dialer with `ProtocolDialers`.
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { TransportError } from "../../Errors.js"
import type { Node } from "../../Registry.js"
import type { CallConnection } from "./clientConnection.js"
import type { DeadlineWheel } from "./deadlines.js"

/** What a dialer is given besides the node. */
export interface DialContext {
  /** Largest message the client sends or accepts. */
  readonly maxFrameSize: number
  /** Call when the connection must not be handed out again (closed, broken). */
  readonly onGone: (connection: CallConnection) => void
  /** The client's timing wheel (Clock-driven), for the connection's own timers (PING answers). */
  readonly deadlines: DeadlineWheel
}

/** Opens a connection to a node of one protocol. */
export type ProtocolDialer = (node: Node, context: DialContext) => Effect.Effect<CallConnection, TransportError>

/** Dialers by protocol name, read when a client runtime is built. Default: none (native protocol only). */
export class ProtocolDialers extends Context.Reference<ProtocolDialers>()("effect-micro/Client/ProtocolDialers", {
  defaultValue: (): ReadonlyMap<string, ProtocolDialer> => new Map()
}) {}

/** The node metadata key naming a node's protocol. */
export const PROTOCOL_KEY = "protocol"

/** The protocol the native server registers (docs/protocol.md). */
export const NATIVE_PROTOCOL = "effect-micro/1"
