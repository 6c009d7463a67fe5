/**
 * Mutual TLS over node:tls. Sockets become Connections with the TCP transport's `fromSocket`, so the
 * protocol above (framing, multiplexing) is the same; what TLS adds is who is on the other end.
 */
import * as Effect from "effect/Effect"
import type * as net from "node:net"
import * as tls from "node:tls"
import * as Certificates from "../../Certificates.js"
import { TransportError } from "../../Errors.js"
import type { TlsOptions } from "../../TlsTransport.js"
import type { Connection } from "../../Transport.js"
import { parseAddress, Transport } from "../../Transport.js"
import { configureSocket, formatAddress, fromSocket, listenServer } from "./tcp.js"

const describeError = (error: NodeJS.ErrnoException): string =>
  error.code !== undefined && !error.message.includes(error.code) ? `${error.code}: ${error.message}` : error.message

const dialFailure = (address: string, error: NodeJS.ErrnoException): TransportError =>
  error.code === "ECONNREFUSED"
    ? TransportError.of("refused", address, `connection refused by ${address}`)
    : TransportError.of("dial", address, `TLS dial ${address} failed: ${describeError(error)}`)

export const make = (options: TlsOptions): Transport.Service => {
  const connectTimeout = options.connectTimeout ?? 5000
  const trustDomain = options.trustDomain ?? Certificates.defaultTrustDomain
  const hasCertificate = options.cert !== undefined && options.key !== undefined
  const issued: Certificates.Issued = {
    certPem: options.cert as string,
    keyPem: options.key as string,
    caPem: typeof options.ca === "string" ? options.ca : options.ca.join("\n")
  }
  const minVersion = options.minVersion
  const serverOptions: tls.TlsOptions = {
    ...Certificates.tlsServerOptions(issued, { minVersion }),
    handshakeTimeout: options.handshakeTimeout ?? 5000
  }
  const verifyServer = options.verifyServer ?? "host"
  const hostOptions = Certificates.tlsClientOptions(issued, { trustDomain, minVersion })
  const clientOptions = (address: string): tls.ConnectionOptions => {
    if (verifyServer === "host") return hostOptions
    if (verifyServer === "ca") return { ...hostOptions, checkServerIdentity: () => undefined }
    const expectedIdentity = verifyServer(address)
    return expectedIdentity === undefined
      ? hostOptions
      : Certificates.tlsClientOptions(issued, { trustDomain, minVersion, expectedIdentity })
  }

  return Transport.of({
    name: "tls",
    listen: (address, onConnection) => {
      if (!hasCertificate) {
        return Effect.fail(
          TransportError.of("listen", address, `listen on ${address} failed: a TLS server needs cert and key`, false)
        )
      }
      // Only authorized clients get here: node:tls refuses the others during the handshake.
      const server = tls.createServer(serverOptions, (socket) => {
        const identity = Certificates.peerIdentity(socket, trustDomain)
        if (identity === undefined) {
          socket.destroy()
          return
        }
        configureSocket(socket)
        onConnection(fromSocket(socket, formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0), identity))
      })
      // A refused or broken handshake concerns that client only; the server keeps serving.
      server.on("tlsClientError", (_error, socket) => socket.destroy())
      return listenServer(server as net.Server, address)
    },
    dial: (address) =>
      Effect.async<Connection, TransportError>((resume) => {
        const { host, port } = parseAddress(address)
        const socket = tls.connect({ host, port, ...clientOptions(address) })
        let settled = false
        let secure = false
        let gotTicket = false
        const settle = (result: Effect.Effect<Connection, TransportError>) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          socket.off("error", onError)
          socket.off("close", onClose)
          socket.off("session", onSession)
          resume(result)
        }
        const fail = (error: TransportError) => {
          socket.destroy()
          settle(Effect.fail(error))
        }
        const readyUnlessSettled = () => {
          if (!settled) ready()
        }
        const ready = () => {
          configureSocket(socket)
          settle(Effect.succeed(fromSocket(socket, address, Certificates.peerIdentity(socket, trustDomain))))
        }
        const timer = setTimeout(
          () => fail(TransportError.of("dial", address, `TLS dial ${address} timed out after ${connectTimeout} ms`)),
          connectTimeout
        )
        const onError = (error: NodeJS.ErrnoException) => fail(dialFailure(address, error))
        const onClose = () =>
          fail(TransportError.of(
            "dial",
            address,
            `TLS dial ${address} failed: the server closed the connection during the handshake (client certificate refused?)`
          ))
        // TLS 1.3: the client finishes its handshake before the server has checked the client certificate;
        // a refusal arrives afterwards as an alert. The server sends its session tickets only once it has
        // accepted us, so the first ticket is the proof that the connection is really up (TLS 1.2 proves
        // it with the handshake itself). Listening from the start also turns on ticket delivery.
        // Deferred with setImmediate: bytes written from inside the ticket callback (OpenSSL is still
        // reading the record) are silently lost, even on the next microtask.
        const onSession = () => {
          if (gotTicket) return
          gotTicket = true
          if (secure) setImmediate(readyUnlessSettled)
        }
        socket.once("error", onError)
        socket.once("close", onClose)
        socket.on("session", onSession)
        socket.once("secureConnect", () => {
          secure = true
          if (socket.getProtocol() !== "TLSv1.3") ready()
          else if (gotTicket) setImmediate(readyUnlessSettled)
        })
        return Effect.sync(() => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          socket.destroy()
        })
      })
  })
}
