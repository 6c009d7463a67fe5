/** Starts a Node server listening; fails with the listen error (EADDRINUSE, EACCES, ...) instead of emitting it. */
import * as Effect from "effect/Effect"
import type * as net from "node:net"

export const listen = (server: net.Server, port: number, host: string | undefined) =>
  Effect.async<void, NodeJS.ErrnoException>((resume) => {
    const onError = (error: NodeJS.ErrnoException) => resume(Effect.fail(error))
    server.once("error", onError)
    server.listen(port, host, () => {
      server.off("error", onError)
      resume(Effect.void)
    })
  })
