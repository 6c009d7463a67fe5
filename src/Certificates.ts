/**
 * A project certificate authority for mutual TLS between services.
 *
 * `makeCa` creates a self-signed CA (ECDSA P-256 by default, Ed25519 optional); `issue` signs a
 * certificate for one service identity, carried as `spiffe://<trust domain>/<identity>` in the SAN and as
 * the CN, plus the hosts it serves (`127.0.0.1`, `localhost` by default). `tlsServerOptions` and
 * `tlsClientOptions` give node:tls options that require a certificate from the CA on both sides;
 * `peerIdentity` reads who is on the other end.
 *
 * Issuance runs the `openssl` CLI (node:crypto cannot create certificates and the project takes no X.509
 * dependency); without it, these fail with `CertificateError` "OpensslMissing".
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Effect from "effect/Effect"
import type * as tls from "node:tls"
import * as openssl from "./internal/certs/openssl.js"
import * as internal from "./internal/certs/tls.js"

/**
 * Certificate issuance failed: openssl missing or failing, invalid names, file-system trouble.
 * @since 0.1.0
 * @category errors
 */
export class CertificateError extends Data.TaggedError("CertificateError")<{
  readonly reason: "OpensslMissing" | "OpensslFailed" | "InvalidInput" | "Io"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `certificates ${this.reason}: ${this.detail}`
  }
}

/**
 * ECDSA P-256 (default: accepted by every TLS stack) or Ed25519 (TLS 1.3 peers only).
 * @since 0.1.0
 * @category models
 */
export type KeyType = openssl.KeyType

/**
 * A CA: its certificate and private key (PEM). Keep the key secret; only `certPem` is distributed.
 * @since 0.1.0
 * @category models
 */
export interface Ca extends openssl.Ca {}

/**
 * A certificate for one identity, its private key, and the CA certificate to trust (all PEM).
 * @since 0.1.0
 * @category models
 */
export interface Issued extends openssl.Issued {}

/**
 * @since 0.1.0
 * @category models
 */
export interface CaOptions {
  /** CN of the CA. Default: "effect-micro CA". */
  readonly name?: string | undefined
  /** Validity of the CA certificate, in days (1 to 36500). Default: 3650. */
  readonly days?: number | undefined
  /** Key algorithm: `"p256"` (ECDSA P-256) or `"ed25519"` (TLS 1.3 peers only). Default: "p256". */
  readonly keyType?: KeyType | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface IssueOptions {
  /** Service name or account id: `[A-Za-z0-9][A-Za-z0-9._-]*`. */
  readonly identity: string
  /** IPs and DNS names the certificate is valid for. Default: ["127.0.0.1", "localhost"]. */
  readonly hosts?: ReadonlyArray<string> | undefined
  /** Validity of the certificate, in days (1 to 36500). Default: 90. */
  readonly days?: number | undefined
  /** Key algorithm: `"p256"` (ECDSA P-256) or `"ed25519"` (TLS 1.3 peers only). Default: "p256". */
  readonly keyType?: KeyType | undefined
  /**
   * SPIFFE trust domain of the identity, in the certificate's URI SAN `spiffe://<trustDomain>/<identity>`.
   * Default: "effect-micro".
   */
  readonly trustDomain?: string | undefined
}

/**
 * The trust domain used unless one is given.
 * @since 0.1.0
 * @category constants
 */
export const defaultTrustDomain: string = openssl.DEFAULT_TRUST_DOMAIN

/**
 * Creates a self-signed CA.
 * @since 0.1.0
 * @category constructors
 */
export const makeCa: (options?: CaOptions) => Effect.Effect<Ca, CertificateError> = openssl.makeCa

/**
 * Issues a certificate for a service identity, signed by `ca`, usable as TLS server and client.
 * @since 0.1.0
 * @category constructors
 */
export const issue: (ca: Ca, options: IssueOptions) => Effect.Effect<Issued, CertificateError> = openssl.issue

/**
 * `node:tls` server options that require a client certificate signed by the CA.
 * @since 0.1.0
 * @category tls
 */
export const tlsServerOptions: (
  issued: Issued,
  options?: { readonly minVersion?: tls.SecureVersion | undefined }
) => tls.TlsOptions = internal.serverOptions

/**
 * `node:tls` client options presenting the certificate and trusting only the CA. With `expectedIdentity`
 * the server must carry that identity (instead of matching the dialled host name).
 * @since 0.1.0
 * @category tls
 */
export const tlsClientOptions: (
  issued: Issued,
  options?: {
    readonly expectedIdentity?: string | undefined
    readonly trustDomain?: string | undefined
    readonly minVersion?: tls.SecureVersion | undefined
  }
) => tls.ConnectionOptions = internal.clientOptions

/**
 * The identity of an authenticated TLS peer (SPIFFE name in the SAN, else CN); `undefined` when the peer
 * presented no certificate or one the CA did not sign.
 * @since 0.1.0
 * @category tls
 */
export const peerIdentity: (socket: tls.TLSSocket, trustDomain?: string) => string | undefined = internal.peerIdentity

/**
 * The identity a PEM certificate carries (no trust check).
 * @since 0.1.0
 * @category utils
 */
export const certificateIdentity: (certPem: string, trustDomain?: string) => string | undefined =
  internal.certificateIdentity
