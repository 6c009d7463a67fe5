/**
 * node:tls options for mutual TLS inside one project CA, and reading the peer's identity.
 */
import * as crypto from "node:crypto"
import type * as tls from "node:tls"
import { DEFAULT_TRUST_DOMAIN, type Issued } from "./openssl.js"

export interface ServerOptions {
  readonly minVersion?: tls.SecureVersion | undefined
}

export interface ClientOptions {
  /** When set, the server must present this identity (replaces the host-name check). */
  readonly expectedIdentity?: string | undefined
  readonly trustDomain?: string | undefined
  readonly minVersion?: tls.SecureVersion | undefined
}

/**
 * The identity in a subject-alt-name string as Node prints it
 * (`URI:spiffe://effect-micro/greeter, DNS:localhost, IP Address:127.0.0.1`).
 */
export const identityFromAltNames = (altNames: string | undefined, trustDomain: string): string | undefined => {
  if (altNames === undefined) return undefined
  const prefix = `URI:spiffe://${trustDomain}/`
  for (const entry of altNames.split(", ")) {
    if (entry.startsWith(prefix)) {
      const name = entry.slice(prefix.length)
      if (name.length > 0 && !name.includes("/")) return name
    }
  }
  return undefined
}

const commonName = (subject: unknown): string | undefined => {
  const cn = (subject as { readonly CN?: unknown } | undefined)?.CN
  return typeof cn === "string" ? cn : Array.isArray(cn) && typeof cn[0] === "string" ? cn[0] : undefined
}

export const serverOptions = (issued: Issued, options?: ServerOptions): tls.TlsOptions => ({
  key: issued.keyPem,
  cert: issued.certPem,
  ca: [issued.caPem],
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: options?.minVersion ?? "TLSv1.2"
})

export const clientOptions = (issued: Issued, options?: ClientOptions): tls.ConnectionOptions => {
  const trustDomain = options?.trustDomain ?? DEFAULT_TRUST_DOMAIN
  const expected = options?.expectedIdentity
  return {
    key: issued.keyPem,
    cert: issued.certPem,
    ca: [issued.caPem],
    rejectUnauthorized: true,
    minVersion: options?.minVersion ?? "TLSv1.2",
    ...(expected === undefined ? {} : {
      checkServerIdentity: (_host: string, cert: tls.PeerCertificate): Error | undefined => {
        const actual = identityFromAltNames(cert.subjectaltname, trustDomain)
        return actual === expected
          ? undefined
          : new Error(`server identity is ${actual ?? "missing"}, expected ${expected}`)
      }
    })
  }
}

/**
 * The identity of an authenticated peer: the SPIFFE name of the trust domain in its certificate's SAN,
 * else its CN; `undefined` when the peer is not authenticated (no certificate, or not from the CA).
 */
export const peerIdentity = (socket: tls.TLSSocket, trustDomain = DEFAULT_TRUST_DOMAIN): string | undefined => {
  if (!socket.authorized) return undefined
  const cert = socket.getPeerCertificate()
  if (cert === null || Object.keys(cert).length === 0) return undefined
  return identityFromAltNames(cert.subjectaltname, trustDomain) ?? commonName(cert.subject)
}

export const certificateIdentity = (certPem: string, trustDomain = DEFAULT_TRUST_DOMAIN): string | undefined => {
  const cert = new crypto.X509Certificate(certPem)
  return identityFromAltNames(cert.subjectAltName, trustDomain) ??
    /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1]
}
