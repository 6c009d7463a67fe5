/**
 * Mutual TLS transport: the TCP transport's protocol over node:tls, where both sides must hold a
 * certificate from the project CA (`Certificates.makeCa` / `Certificates.issue`).
 *
 * ```ts
 * const issued = yield* Certificates.issue(ca, { identity: "greeter" })
 * Server.layer(Greeter, { name: "greeter" }).pipe(
 *   Layer.provide(TlsTransport.layer({ ca: issued.caPem, cert: issued.certPem, key: issued.keyPem }))
 * )
 * ```
 *
 * - The server accepts only clients with a certificate signed by the CA; every accepted connection carries
 *   the client's identity (`Connection.peerIdentity`), which handlers and middleware read as
 *   `Metadata.IncomingCall.peer.identity`. A refused handshake is dropped without disturbing the server.
 * - The client trusts only the CA and checks the server as `verifyServer` says. A refused dial (a server
 *   certificate from another CA, or a server that refuses our certificate) is a `TransportError` with
 *   reason "dial" (the request never left: safe to retry elsewhere).
 * - Wire: identical to TCP after the handshake (docs/protocol.md). With TLS 1.3 a dial completes when the
 *   server's first session ticket arrives, because only then has the server accepted the client's
 *   certificate; the server must therefore send tickets (node:tls does by default).
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import type * as tls from "node:tls"
import type * as Certificates from "./Certificates.js"
import * as internal from "./internal/transport/tls.js"
import { Transport } from "./Transport.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  /** The CA certificate(s) to trust, PEM. */
  readonly ca: string | ReadonlyArray<string>
  /**
   * This service's certificate (PEM), used as server and as client. Omitted (with `key`) only for a
   * dial-only client without a certificate, which mTLS servers refuse; `listen` then fails. Default: none.
   */
  readonly cert?: string | undefined
  /** Its private key, PEM. Default: none (with `cert`). */
  readonly key?: string | undefined
  /** SPIFFE trust domain of identities. Default `Certificates.defaultTrustDomain` ("effect-micro"). */
  readonly trustDomain?: string | undefined
  /**
   * How a dialled server is checked besides being signed by the CA: `"host"` (default) — its certificate
   * names the dialled IP or host (as HTTPS does); `"ca"` — any certificate from the CA (e.g. nodes
   * advertising LAN addresses their certificates do not list); or a function from the dialled address to
   * the identity expected there (`undefined`: check the host).
   */
  readonly verifyServer?: "host" | "ca" | ((address: string) => string | undefined) | undefined
  /** Dial timeout, TCP connect and TLS handshake together, in ms. Default 5000. */
  readonly connectTimeout?: number | undefined
  /** Server side: drop clients that have not completed the handshake after this many ms. Default 5000. */
  readonly handshakeTimeout?: number | undefined
  /** Lowest TLS version accepted, as server and as client. Default "TLSv1.2". */
  readonly minVersion?: tls.SecureVersion | undefined
}

/**
 * TLS options from a certificate `Certificates.issue` returned.
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromIssued = (
  issued: Certificates.Issued,
  options?: Omit<TlsOptions, "ca" | "cert" | "key"> | undefined
): TlsOptions => ({ ...options, ca: issued.caPem, cert: issued.certPem, key: issued.keyPem })

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: (options: TlsOptions) => Transport.Service = internal.make

/**
 * The mutual-TLS `Transport`.
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TlsOptions): Layer.Layer<Transport> =>
  Layer.sync(Transport, () => internal.make(options))
