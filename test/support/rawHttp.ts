/** Raw HTTP/1.1 over a plain socket, for tests of how an endpoint treats slow, partial and vanishing clients. */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as net from "node:net"

export interface RawClient {
  readonly socket: net.Socket
  /** Everything received so far. */
  readonly received: () => string
  /** Resolves with everything received when the server (or we) closed the connection. */
  readonly closed: Promise<string>
  readonly write: (data: string) => void
}

/** Opens a connection to `url`'s host and port; destroyed when the scope closes. */
export const connect = (url: string): Effect.Effect<RawClient, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<RawClient>((resume) => {
      const { hostname, port } = new URL(url)
      const socket = net.connect({ host: hostname, port: Number(port) })
      let data = ""
      socket.setEncoding("utf8")
      socket.on("data", (chunk: string) => {
        data += chunk
      })
      socket.on("error", () => {})
      const closed = new Promise<string>((resolve) => socket.once("close", () => resolve(data)))
      socket.once("connect", () =>
        resume(Effect.succeed({
          socket,
          received: () => data,
          closed,
          write: (chunk) => {
            socket.write(chunk)
          }
        })))
    }),
    (client) => Effect.sync(() => client.socket.destroy())
  )

/** The request line and headers of a POST to `url` with a body of `length` bytes. */
export const postHead = (url: string, length: number, headers: Record<string, string> = {}): string => {
  const { host, pathname } = new URL(url)
  const lines = [`POST ${pathname} HTTP/1.1`, `host: ${host}`, `content-length: ${length}`]
  for (const [key, value] of Object.entries(headers)) lines.push(`${key}: ${value}`)
  return lines.join("\r\n") + "\r\n\r\n"
}

/** Writes one byte of `body` every `intervalMillis` (in a fiber of the scope) until it is all sent or the socket closes. */
export const dribble = (
  client: RawClient,
  body: string,
  intervalMillis: number
): Effect.Effect<void, never, Scope.Scope> =>
  Effect.forkScoped(
    Effect.forEach(body.split(""), (byte) =>
      client.socket.destroyed
        ? Effect.void
        : Effect.zipRight(
          Effect.sleep(intervalMillis),
          Effect.sync(() => client.write(byte))
        ), {
      discard: true
    })
  ).pipe(Effect.asVoid)

/** Status code of the first response in `text`, or undefined. */
export const statusOf = (text: string): number | undefined => {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(text)
  return match === null ? undefined : Number(match[1])
}
