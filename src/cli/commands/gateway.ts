/**
 * `micro gateway`: the HTTP API gateway (src/Gateway.ts, docs/gateway.md) in front of every service the
 * registry knows, until interrupted (Ctrl-C / SIGTERM closes the server and the registry cleanly).
 * Prints `gateway listening on http://host:port` once it accepts requests.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as CachedRegistry from "../../CachedRegistry.js"
import * as Client from "../../Client.js"
import * as Codec from "../../Codec.js"
import * as Gateway from "../../Gateway.js"
import * as HttpBroker from "../../HttpBroker.js"
import * as Selector from "../../Selector.js"
import * as Transport from "../../Transport.js"
import * as layers from "../layers.js"
import * as options from "../options.js"
import * as output from "../output.js"

export const gateway = Command.make(
  "gateway",
  {
    ...options.registry,
    port: Options.integer("port").pipe(
      Options.withFallbackConfig(Config.integer("MICRO_GATEWAY_PORT")),
      Options.withDefault(8080),
      Options.withDescription("HTTP port (default 8080; 0 picks a free one). Env MICRO_GATEWAY_PORT.")
    ),
    host: Options.text("host").pipe(
      Options.withFallbackConfig(Config.string("MICRO_GATEWAY_HOST")),
      Options.withDefault("0.0.0.0"),
      Options.withDescription("Address to listen on (default 0.0.0.0). Env MICRO_GATEWAY_HOST.")
    ),
    services: Options.text("service").pipe(
      Options.repeated,
      Options.withDescription("Expose only this service (repeatable; default: every service in the registry).")
    ),
    cors: Options.boolean("cors").pipe(Options.withDescription("Answer CORS requests from any origin.")),
    ui: Options.boolean("ui").pipe(
      Options.withDescription(
        "Serve the web dashboard at /ui (services, nodes, schemas, call forms, topic tails; no auth of its own)."
      )
    ),
    rateLimit: Options.integer("rate-limit").pipe(
      Options.optional,
      Options.withDescription("Requests per second per client IP (token bucket, burst = the rate; default off).")
    )
  },
  (config) =>
    Effect.gen(function*() {
      const { host, port } = yield* Gateway.Gateway
      yield* output.text(`gateway listening on http://${host}:${port}`)
      return yield* Effect.never
    }).pipe(
      Effect.provide(
        Gateway.layer({
          port: config.port,
          host: config.host,
          ...(config.services.length === 0 ? {} : { services: config.services }),
          ...(config.cors ? { cors: true } : {}),
          ...(config.ui ? { dashboard: true } : {}),
          ...Option.match(config.rateLimit, {
            onNone: () => ({}),
            onSome: (ratePerSecond) => ({ rateLimit: { ratePerSecond } })
          })
        }).pipe(
          // With --ui, an HTTP broker (its endpoint on the gateway's host) for the dashboard's topic tails.
          Layer.provideMerge(
            config.ui ? Layer.merge(Client.layer(), HttpBroker.layer({ host: config.host })) : Client.layer()
          ),
          Layer.provideMerge(
            Layer.mergeAll(
              CachedRegistry.layer().pipe(Layer.provide(layers.registry(config))),
              Transport.layerTcp(),
              Codec.layer,
              Selector.layer
            )
          )
        )
      )
    )
).pipe(
  Command.withDescription(
    "Serve the HTTP API gateway: POST /{service}/{endpoint} with JSON, SSE/NDJSON streams, WebSocket, /openapi.json and /docs."
  )
)
