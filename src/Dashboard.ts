/**
 * A web dashboard of the system, as an `@effect/platform` `HttpRouter` to mount on an HTTP server (the
 * gateway serves it at `/ui`): the services and their nodes (version, address, metadata) updated live from
 * the registry, each node's health and stats, each endpoint's JSON Schemas and a call form generated from its
 * request schema, and a live tail of a topic. One plain HTML page, one script and one stylesheet, embedded
 * in the module: nothing is loaded from elsewhere, so it works offline.
 *
 * ```ts
 * HttpRouter.empty.pipe(HttpRouter.mount("/ui", Dashboard.router))   // needs Registry and Client (and a Broker to tail topics)
 * ```
 *
 * The call form POSTs the payload as JSON to `{callPrefix}/{service}/{endpoint}` on the page's origin (the
 * gateway's call route) and shows the reply or the typed error. The data API under `api/` (docs/dashboard.md):
 *
 * - `GET api/services`: every registry entry (`name`, `version`, `kind`: service or broker subscription,
 *   `metadata`, `endpoints`, `nodes`); `GET api/services/{name}`: the versions of one (404 if unknown).
 * - `GET api/services/{name}/describe[?node=host:port]`: `Client.describe`, JSON Schemas parsed.
 * - `GET api/services/{name}/health`, `.../stats`: `Client.health` / `Client.stats` of every node, each
 *   `{id, address, version, ok, value | error}`.
 * - `GET api/registry`: server-sent events, `services` (the whole list, first and every `refreshInterval`) and
 *   `change` (`{type, service}` per `Registry.watch` event).
 * - `GET api/topics/{topic}`: server-sent events, `subscribed` then one `message` per message published to
 *   the topic. The tail subscribes through the `Broker` with a queue group of its own, so it sees a copy of
 *   every message without taking any from the topic's subscribers (503 when the process has no `Broker`).
 *
 * Errors are JSON `{_tag, id, code, detail, status}` with the HTTP status of the code (framework errors keep
 * theirs: 404 for an unknown service, 408 for a timeout …; a registry or broker failure is 503).
 *
 * **Exposure**: the dashboard has no authentication of its own and shows the whole registry; mount it behind
 * the gateway's auth, or on an interface only operators reach.
 *
 * @since 0.1.0
 */
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type * as Duration from "effect/Duration"
import type { Client } from "./Client.js"
import * as internal from "./internal/dashboard/router.js"
import type { Registry } from "./Registry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface DashboardOptions {
  /**
   * Path prefix of the call route on the page's origin: the form POSTs to `{callPrefix}/{service}/{endpoint}`.
   * Default `""` (the gateway's routes at the root of its server).
   */
  readonly callPrefix?: string | undefined
  /** Name shown in the page's header and title. Default `"effect-micro"`. */
  readonly title?: string | undefined
  /** Timeout of each `Debug` call the API makes (describe, health, stats of one node). Default 2 s. */
  readonly probeTimeout?: Duration.DurationInput | undefined
  /** Nodes asked at once by `health` and `stats`. Default 8. */
  readonly probeConcurrency?: number | undefined
  /** How often the registry stream sends the whole service list again (it heals missed changes). Default 10 s. */
  readonly refreshInterval?: Duration.DurationInput | undefined
  /** Interval of the keep-alive comments on the event streams. Default 15 s. */
  readonly heartbeat?: Duration.DurationInput | undefined
  /** Topic tails open at once (each one broker subscription); more are refused with 503. Default 16. */
  readonly maxTails?: number | undefined
  /**
   * Messages a tail (and registry changes a live list) holds for a slow browser; beyond it the oldest are dropped
   * (a tail's `seq` shows the gap; the list is repaired by its next full copy). Default 256.
   */
  readonly tailBuffer?: number | undefined
  /** Bytes of each message body a tail shows (the rest is cut, `truncated: true`). Default 4096. */
  readonly tailBodyLimit?: number | undefined
}

/**
 * What the dashboard's routes need from the process that serves them. The `Broker` is optional: it is looked
 * up per request, and without one topic tails answer 503.
 * @since 0.1.0
 * @category models
 */
export type Requirements = Registry | Client

/**
 * The dashboard's router with the given options, to mount under a prefix (`HttpRouter.mount("/ui", …)`) or
 * serve at the root. The tail limit (`maxTails`) counts per router value.
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: DashboardOptions) => HttpRouter.HttpRouter<never, Requirements> = internal.make

/**
 * The dashboard's router with the default options.
 * @since 0.1.0
 * @category constructors
 */
export const router: HttpRouter.HttpRouter<never, Requirements> = make()
