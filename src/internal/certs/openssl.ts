/**
 * X.509 issuance by running the `openssl` CLI in a private temp dir. node:crypto can parse and verify
 * certificates (`X509Certificate`) but cannot create them, and no X.509 library is a dependency; openssl
 * is on every machine that runs the tests and in most server images. Only fixed arguments and validated
 * names reach openssl (names go into a config file we write, never through a shell).
 */
import * as Effect from "effect/Effect"
import { execFile } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as os from "node:os"
import * as path from "node:path"
import type { CaOptions, IssueOptions } from "../../Certificates.js"
import { CertificateError } from "../../Certificates.js"

export type KeyType = "p256" | "ed25519"

export interface Ca {
  readonly certPem: string
  readonly keyPem: string
}

export interface Issued {
  readonly certPem: string
  readonly keyPem: string
  readonly caPem: string
}

export const DEFAULT_TRUST_DOMAIN = "effect-micro"

const IDENTITY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/
const CA_NAME = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$/
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/
const TRUST_DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,62})$/

const invalid = (detail: string) => Effect.fail(new CertificateError({ reason: "InvalidInput", detail }))

const checkDays = (days: number) =>
  Number.isInteger(days) && days > 0 && days <= 36500 ? Effect.void : invalid(`days must be 1 to 36500, got ${days}`)

const run = (args: ReadonlyArray<string>, cwd: string): Effect.Effect<void, CertificateError> =>
  Effect.async<void, CertificateError>((resume, signal) => {
    execFile("openssl", args, { cwd, signal, timeout: 30_000 }, (error, _stdout, stderr) => {
      if (error === null) return resume(Effect.void)
      const missing = (error as NodeJS.ErrnoException).code === "ENOENT"
      resume(
        Effect.fail(
          new CertificateError({
            reason: missing ? "OpensslMissing" : "OpensslFailed",
            detail: missing
              ? "the openssl CLI is not on PATH (install it, or issue certificates with an X.509 library such as @peculiar/x509)"
              : `openssl ${args[0]} failed: ${String(stderr).trim() || error.message}`,
            cause: error
          })
        )
      )
    })
  })

const io = <A>(what: string, f: () => Promise<A>) =>
  Effect.tryPromise({ try: f, catch: (cause) => new CertificateError({ reason: "Io", detail: what, cause }) })

const withTempDir = <A, E>(use: (dir: string) => Effect.Effect<A, E>) =>
  Effect.acquireUseRelease(
    io("cannot create a temp dir", () => fs.mkdtemp(path.join(os.tmpdir(), "effect-micro-certs-"))),
    use,
    (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
  )

// Keys are private: owner-only, in a dir mkdtemp already made owner-only.
const write = (dir: string, name: string, content: string) =>
  io(`cannot write ${name}`, () => fs.writeFile(path.join(dir, name), content, { mode: 0o600 }))

const read = (dir: string, name: string) => io(`cannot read ${name}`, () => fs.readFile(path.join(dir, name), "utf8"))

const newKeyArgs = (keyType: KeyType) =>
  keyType === "ed25519" ? ["-newkey", "ed25519"] : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-sha256"]

/** A random positive 128-bit serial (RFC 5280 allows up to 20 octets). */
const serial = () => {
  const bytes = crypto.randomBytes(16)
  bytes[0] = bytes[0]! & 0x7f | 0x01
  return `0x${bytes.toString("hex")}`
}

export const makeCa = (options?: CaOptions): Effect.Effect<Ca, CertificateError> =>
  Effect.gen(function*() {
    const name = options?.name ?? "effect-micro CA"
    const days = options?.days ?? 3650
    if (!CA_NAME.test(name)) return yield* invalid(`invalid CA name ${JSON.stringify(name)}`)
    yield* checkDays(days)
    return yield* withTempDir((dir) =>
      Effect.gen(function*() {
        yield* write(
          dir,
          "ca.cnf",
          [
            "[req]",
            "distinguished_name = dn",
            "prompt = no",
            "x509_extensions = v3_ca",
            "[dn]",
            `CN = ${name}`,
            "[v3_ca]",
            "basicConstraints = critical, CA:TRUE, pathlen:0",
            "keyUsage = critical, keyCertSign, cRLSign",
            "subjectKeyIdentifier = hash",
            ""
          ].join("\n")
        )
        yield* run(
          [
            "req",
            "-x509",
            "-new",
            "-config",
            "ca.cnf",
            ...newKeyArgs(options?.keyType ?? "p256"),
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            String(days),
            "-set_serial",
            serial()
          ],
          dir
        )
        return { certPem: yield* read(dir, "ca.crt"), keyPem: yield* read(dir, "ca.key") }
      })
    )
  })

export const issue = (ca: Ca, options: IssueOptions): Effect.Effect<Issued, CertificateError> =>
  Effect.gen(function*() {
    const identity = options.identity
    const hosts = options.hosts ?? ["127.0.0.1", "localhost"]
    const trustDomain = options.trustDomain ?? DEFAULT_TRUST_DOMAIN
    const days = options.days ?? 90
    if (!IDENTITY.test(identity)) return yield* invalid(`invalid identity ${JSON.stringify(identity)}`)
    if (!TRUST_DOMAIN.test(trustDomain)) return yield* invalid(`invalid trust domain ${JSON.stringify(trustDomain)}`)
    for (const host of hosts) {
      if (net.isIP(host) === 0 && !DNS_NAME.test(host)) return yield* invalid(`invalid host ${JSON.stringify(host)}`)
    }
    yield* checkDays(days)
    const altNames = [
      `URI.1 = spiffe://${trustDomain}/${identity}`,
      ...hosts.filter((h) => net.isIP(h) === 0).map((h, i) => `DNS.${i + 1} = ${h}`),
      ...hosts.filter((h) => net.isIP(h) !== 0).map((h, i) => `IP.${i + 1} = ${h}`)
    ]
    return yield* withTempDir((dir) =>
      Effect.gen(function*() {
        yield* write(dir, "ca.crt", ca.certPem)
        yield* write(dir, "ca.key", ca.keyPem)
        yield* write(
          dir,
          "leaf.cnf",
          [
            "[req]",
            "distinguished_name = dn",
            "prompt = no",
            "[dn]",
            `CN = ${identity}`,
            "[v3_leaf]",
            "basicConstraints = critical, CA:FALSE",
            "keyUsage = critical, digitalSignature",
            "extendedKeyUsage = serverAuth, clientAuth",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid",
            "subjectAltName = @alt",
            "[alt]",
            ...altNames,
            ""
          ].join("\n")
        )
        const keyType = options.keyType ?? "p256"
        yield* run(
          [
            "req",
            "-new",
            "-config",
            "leaf.cnf",
            ...newKeyArgs(keyType),
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr"
          ],
          dir
        )
        yield* run(
          [
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            serial(),
            "-days",
            String(days),
            "-extfile",
            "leaf.cnf",
            "-extensions",
            "v3_leaf",
            // The digest follows the CA's key: Ed25519 signs without one, ECDSA with SHA-256.
            ...(caKeyIsEd25519(ca) ? [] : ["-sha256"]),
            "-out",
            "leaf.crt"
          ],
          dir
        )
        return { certPem: yield* read(dir, "leaf.crt"), keyPem: yield* read(dir, "leaf.key"), caPem: ca.certPem }
      })
    )
  })

const caKeyIsEd25519 = (ca: Ca): boolean => {
  try {
    return crypto.createPrivateKey(ca.keyPem).asymmetricKeyType === "ed25519"
  } catch {
    return false
  }
}
