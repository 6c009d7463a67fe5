/**
 * A signal from an HTTP server to the responses it is streaming: Node's `server.close()` waits for every open
 * response, and an event stream (the dashboard's registry view, a topic tail) never ends by itself, so a
 * browser left open on the page would hold a server's shutdown forever. A server that streams sets this
 * reference for its requests and completes it as it starts to close (a finalizer that runs before the close);
 * long-lived responses end when it completes. Where no server set it, it never completes.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"

export class ServerClosing extends Context.Reference<ServerClosing>()("effect-micro/internal/ServerClosing", {
  defaultValue: (): Effect.Effect<void> => Effect.never
}) {}
