/**
 * Byte transports: listen for and dial connections between processes. The multiplexed call protocol
 * (framing, streams, flow control, docs/protocol.md) runs on top of any transport, so a TLS or
 * in-memory transport is just another layer.
 *
 * Connections are callback-based on purpose: they sit under every call's hot path (see PERF-NOTES.md),
 * while their lifetimes are still managed with scopes by the Server and the Client's pool.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { TransportError } from "./Errors.js"
import * as memory from "./internal/transport/memory.js"
import * as tcp from "./internal/transport/tcp.js"

/**
 * A connected byte stream.
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly remoteAddress: string
  /** The peer's authenticated identity when the transport authenticates peers (mTLS); otherwise undefined. */
  readonly peerIdentity: string | undefined
  /** Queues bytes for the peer. Writing after close is ignored. */
  readonly write: (data: Uint8Array) => void
  /**
   * Optional: queues several buffers as one write (a writev), without copying them; the buffers must not be
   * modified afterwards. Without it the protocol concatenates them and calls `write`.
   */
  readonly writev?: ((pieces: ReadonlyArray<Uint8Array>) => void) | undefined
  /** Bytes written but not yet taken by the operating system (the user-space backlog). */
  readonly pendingBytes: () => number
  /** Calls `handler` once, as soon as the backlog is empty (at once if it already is). */
  readonly whenDrained: (handler: () => void) => void
  /** Stops delivering received data (the peer is then slowed down by TCP flow control) until `resume`. */
  readonly pause: () => void
  readonly resume: () => void
  /** Installs the receiver; call once, before any data can arrive (i.e. synchronously after accept/dial). */
  readonly onData: (handler: (chunk: Buffer) => void) => void
  /** Adds a handler called once when the connection is gone, with the error if it broke. */
  readonly onClose: (handler: (error: Error | undefined) => void) => void
  /** Flushes what was written, then closes. */
  readonly close: () => void
  /** Closes at once, dropping unsent data. */
  readonly destroy: () => void
}

/**
 * A bound listener.
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  /** The `host:port` actually bound (the port is chosen when 0 was asked for). */
  readonly address: string
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Transport extends Context.Tag("effect-micro/Transport")<Transport, Transport.Service>() {}

/**
 * @since 0.1.0
 */
export declare namespace Transport {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** A scheme-like name for logs and registry metadata (`tcp`, `memory`, `tls`). */
    readonly name: string
    /** Accepts connections until the scope closes (already accepted connections are not closed by it). */
    readonly listen: (
      address: string,
      onConnection: (connection: Connection) => void
    ) => Effect.Effect<Listener, TransportError, Scope.Scope>
    /** Connects to `host:port`. The caller owns the connection and closes it. */
    readonly dial: (address: string) => Effect.Effect<Connection, TransportError>
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TcpOptions {
  /** Dial timeout. Default 5 seconds. */
  readonly connectTimeout?: number | undefined
}

/**
 * TCP (the default): `TCP_NODELAY` on, keep-alive on.
 * @since 0.1.0
 * @category layers
 */
export const layerTcp = (options?: TcpOptions): Layer.Layer<Transport> => Layer.sync(Transport, () => tcp.make(options))

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeTcp: (options?: TcpOptions) => Transport.Service = tcp.make

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryOptions {
  /**
   * Re-cut the byte stream at random boundaries (pieces of 1 to `maxChunkBytes`, default 64, that may span
   * writes), as TCP may split and coalesce, so tests exercise frame reassembly in-process. `seed` (default
   * 1) makes the pattern repeatable. Off by default: each write arrives as one chunk.
   */
  readonly fragment?: { readonly seed?: number | undefined; readonly maxChunkBytes?: number | undefined } | undefined
}

/**
 * In-process connections for tests: listeners and dials meet in a table private to this layer, so
 * provide the same layer instance to the server and the client under test.
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<Transport> = Layer.sync(Transport, () => memory.make())

/**
 * The in-memory transport with options (e.g. `{ fragment: { seed: 7 } }` to split and coalesce chunks).
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryWith = (options: MemoryOptions): Layer.Layer<Transport> =>
  Layer.sync(Transport, () => memory.make(options))

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeMemory: (options?: MemoryOptions) => Transport.Service = memory.make

/**
 * Splits `host:port` (IPv6 hosts in brackets).
 * @since 0.1.0
 * @category utils
 */
export const parseAddress = (address: string): { readonly host: string; readonly port: number } => {
  const colon = address.lastIndexOf(":")
  const host = colon <= 0 ? "127.0.0.1" : address.slice(0, colon).replace(/^\[(.*)\]$/, "$1")
  const port = Number(colon === -1 ? address : address.slice(colon + 1))
  return { host, port: Number.isInteger(port) ? port : 0 }
}
