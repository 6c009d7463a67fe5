/**
 * The dashboard's router: the page and its two assets, and the data API (`api.ts`). Paths are relative to
 * where it is mounted (`HttpRouter.mount("/ui", router)`): the page finds its mount point from the request,
 * so the same router works at the root of a server or under any prefix.
 */
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { DashboardOptions } from "../../Dashboard.js"
import * as api from "./api.js"
import * as assets from "./assets.js"

const pathOf = (url: string) => {
  const query = url.indexOf("?")
  return query === -1 ? url : url.slice(0, query)
}

/**
 * The mount point of the router, from the URL the client asked for (`originalUrl`) and the part the router
 * matched (`url`, with the mount prefix cut by HttpRouter): `/ui` for `/ui`, `/ui/` and `/ui/index.html`.
 */
export const mountPath = (originalUrl: string, url: string): string => {
  const original = pathOf(originalUrl)
  const local = pathOf(url)
  if (local === "/") return original.replace(/\/+$/, "")
  return original.endsWith(local) ? original.slice(0, original.length - local.length) : ""
}

const cache = { "cache-control": "no-cache" }

/** The options with their defaults. */
export const settingsOf = (options: DashboardOptions | undefined): api.Settings => {
  const defaults = api.defaults
  const duration = (value: Duration.DurationInput | undefined, fallback: Duration.Duration) =>
    value === undefined ? fallback : Duration.decode(value)
  const count = (value: number | undefined, fallback: number) =>
    value === undefined || !Number.isFinite(value) || value < 1 ? fallback : Math.floor(value)
  return {
    callPrefix: (options?.callPrefix ?? defaults.callPrefix).replace(/\/+$/, ""),
    title: options?.title ?? defaults.title,
    probeTimeout: duration(options?.probeTimeout, defaults.probeTimeout),
    probeConcurrency: count(options?.probeConcurrency, defaults.probeConcurrency),
    refreshInterval: duration(options?.refreshInterval, defaults.refreshInterval),
    heartbeat: duration(options?.heartbeat, defaults.heartbeat),
    maxTails: count(options?.maxTails, defaults.maxTails),
    tailBuffer: count(options?.tailBuffer, defaults.tailBuffer),
    tailBodyLimit: count(options?.tailBodyLimit, defaults.tailBodyLimit)
  }
}

/** The router for `options`. */
export const make = (options?: DashboardOptions) => {
  const settings = settingsOf(options)
  const config: assets.PageConfig = { callPrefix: settings.callPrefix, title: settings.title }
  const page = Effect.map(
    HttpServerRequest.HttpServerRequest,
    (request) =>
      HttpServerResponse.html(assets.page(`${mountPath(request.originalUrl, request.url)}/`, config)).pipe(
        HttpServerResponse.setHeaders(cache)
      )
  )
  const script = HttpServerResponse.text(assets.script, {
    contentType: "text/javascript; charset=utf-8",
    headers: cache
  })
  const stylesheet = HttpServerResponse.text(assets.stylesheet, {
    contentType: "text/css; charset=utf-8",
    headers: cache
  })
  return HttpRouter.empty.pipe(
    HttpRouter.get("/", page),
    HttpRouter.get("/index.html", page),
    HttpRouter.get("/app.js", Effect.succeed(script)),
    HttpRouter.get("/app.css", Effect.succeed(stylesheet)),
    HttpRouter.concat(api.routes(settings))
  )
}
