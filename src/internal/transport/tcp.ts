import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as net from "node:net"
import { TransportError } from "../../Errors.js"
import type { Connection, TcpOptions } from "../../Transport.js"
import { parseAddress, Transport } from "../../Transport.js"

const EMPTY = Buffer.alloc(0)

/** Wraps a connected socket (plain or TLS) as a Connection. */
export const fromSocket = (socket: net.Socket, remoteAddress: string, peerIdentity?: string): Connection => {
  const closeHandlers: Array<(error: Error | undefined) => void> = []
  let closed = false
  let lastError: Error | undefined
  socket.on("error", (error) => {
    lastError = error
  })
  socket.on("close", () => {
    closed = true
    for (const handler of closeHandlers) handler(lastError)
  })
  return {
    remoteAddress,
    peerIdentity,
    write: (data) => {
      if (!closed && socket.writable) socket.write(data)
    },
    // Corked writes leave as one writev of the buffers themselves (no copy, one syscall).
    writev: (pieces) => {
      if (closed || !socket.writable) return
      socket.cork()
      for (let i = 0; i < pieces.length; i++) socket.write(pieces[i]!)
      socket.uncork()
    },
    pendingBytes: () => socket.writableLength,
    whenDrained: (handler) => {
      if (closed || socket.writableLength === 0) handler()
      else if (socket.writableNeedDrain) socket.once("drain", handler)
      else {
        // Below the stream's own high-water mark no 'drain' is due: check again once the data is out.
        socket.write(EMPTY, () => handler())
      }
    },
    pause: () => {
      socket.pause()
    },
    resume: () => {
      socket.resume()
    },
    onData: (handler) => {
      socket.on("data", handler)
    },
    onClose: (handler) => {
      closeHandlers.push(handler)
      if (closed) handler(lastError)
    },
    close: () => {
      socket.end()
      // A peer that never closes its side must not keep the socket forever.
      setTimeout(() => socket.destroy(), 2000).unref()
    },
    destroy: () => {
      socket.destroy()
    }
  }
}

export const configureSocket = (socket: net.Socket): void => {
  socket.setNoDelay(true)
  socket.setKeepAlive(true, 30_000)
}

export const formatAddress = (host: string, port: number): string =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

export const listenServer = (
  server: net.Server,
  address: string
): Effect.Effect<{ address: string }, TransportError, Scope.Scope> => {
  const { host, port } = parseAddress(address)
  return Effect.acquireRelease(
    Effect.async<{ address: string }, TransportError>((resume) => {
      const onError = (error: NodeJS.ErrnoException) => resume(Effect.fail(listenError(address, error)))
      server.once("error", onError)
      server.listen(port, host, () => {
        server.off("error", onError)
        const bound = server.address() as net.AddressInfo
        resume(Effect.succeed({ address: formatAddress(bound.address, bound.port) }))
      })
    }),
    () => Effect.sync(() => server.close())
  )
}

/** Why a server could not listen, with what to do about it. */
export const listenError = (address: string, error: NodeJS.ErrnoException): TransportError => {
  const hint = error.code === "EADDRINUSE"
    ? "the address is in use (another server listens there): stop it, pick another port, or use port 0 to let the OS choose one"
    : error.code === "EADDRNOTAVAIL"
    ? "the host is not an address of this machine: use one of its interfaces, 127.0.0.1 or 0.0.0.0"
    : error.code === "EACCES"
    ? "permission denied (ports below 1024 need privileges): use a higher port or port 0"
    : error.message
  return TransportError.of("listen", address, `listen on ${address} failed: ${hint}`, false)
}

export const dialError = (address: string, error: NodeJS.ErrnoException): TransportError =>
  error.code === "ECONNREFUSED"
    ? TransportError.of("refused", address, `connection refused by ${address}`)
    : TransportError.of("dial", address, `dial ${address} failed: ${error.code ?? error.message}`)

export const make = (options?: TcpOptions): Transport.Service => {
  const connectTimeout = options?.connectTimeout ?? 5000
  return Transport.of({
    name: "tcp",
    listen: (address, onConnection) => {
      const server = net.createServer((socket) => {
        configureSocket(socket)
        onConnection(fromSocket(socket, formatAddress(socket.remoteAddress ?? "?", socket.remotePort ?? 0)))
      })
      return listenServer(server, address)
    },
    dial: (address) =>
      Effect.async<Connection, TransportError>((resume) => {
        const { host, port } = parseAddress(address)
        const socket = net.connect({ host, port })
        const timer = setTimeout(() => {
          socket.destroy()
          resume(
            Effect.fail(TransportError.of("dial", address, `dial ${address} timed out after ${connectTimeout} ms`))
          )
        }, connectTimeout)
        const onError = (error: NodeJS.ErrnoException) => {
          clearTimeout(timer)
          resume(Effect.fail(dialError(address, error)))
        }
        socket.once("error", onError)
        socket.once("connect", () => {
          clearTimeout(timer)
          socket.off("error", onError)
          configureSocket(socket)
          resume(Effect.succeed(fromSocket(socket, address)))
        })
        return Effect.sync(() => {
          clearTimeout(timer)
          socket.destroy()
        })
      })
  })
}
