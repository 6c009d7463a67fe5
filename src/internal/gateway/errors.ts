/**
 * What an HTTP client sees of a failed call: a status and a JSON body.
 *
 * - Framework errors (`Errors.MicroError`): `{ _tag, id, code, detail, status }`, HTTP status = `code`, except
 *   `Timeout` (408 → 504: the upstream was too slow, not the HTTP client; browsers re-send a request on a
 *   408) and `StreamClosed` (499 → 502). The target fields (`node`: an internal address) stay inside.
 * - Endpoint errors (the contract's own): their JSON value as the service encoded it, with the status their
 *   class declares (`HttpApiSchema.annotations({ status })`, carried by `Debug.Describe` as `x-http-status`),
 *   else the gateway's `errorStatus` option for the `_tag`, else `endpointErrorStatus` (default 422).
 */
import * as Errors from "../../Errors.js"

/** A refusal or a failed call, ready to answer: an HTTP status and the JSON body. */
export class Failure {
  constructor(readonly status: number, readonly body: unknown) {}
}

/** The body of a framework error: go-micro's fields and the class name. */
export const frameworkBody = (error: Errors.MicroError) => ({
  _tag: error._tag,
  id: error.id,
  code: error.code,
  detail: error.detail,
  status: error.status
})

const validStatus = (status: number, fallback: number): number =>
  Number.isInteger(status) && status >= 400 && status <= 599 ? status : fallback

/** The HTTP status of a framework error. */
export const frameworkStatus = (error: Errors.MicroError): number =>
  error._tag === "Timeout" ? 504 : error._tag === "StreamClosed" ? 502 : validStatus(error.code, 500)

export interface StatusRules {
  /** `_tag` → status, from the gateway's options (wins over the contract's annotation). */
  readonly overrides: ReadonlyMap<string, number>
  /** Default status of an endpoint error. */
  readonly fallback: number
}

/** The failure of a call: framework error or the endpoint's own (its JSON value). */
export const failureOf = (
  error: unknown,
  declared: ReadonlyMap<string, number>,
  rules: StatusRules
): Failure => {
  if (Errors.isMicroError(error)) return new Failure(frameworkStatus(error), frameworkBody(error))
  const tag = typeof error === "object" && error !== null ? (error as { _tag?: unknown })._tag : undefined
  if (typeof tag === "string") {
    const status = rules.overrides.get(tag) ?? declared.get(tag)
    if (status !== undefined) return new Failure(validStatus(status, rules.fallback), error)
  }
  return new Failure(rules.fallback, error)
}

/** Errors the gateway raises itself, in the framework's shape. */
export const gatewayId = "effect-micro.gateway"

export const badRequest = (detail: string): Failure => {
  const error = Errors.BadRequest.of(detail, gatewayId)
  return new Failure(400, frameworkBody(error))
}

export const notFound = (detail: string): Failure => {
  const error = Errors.NotFound.of(detail, gatewayId)
  return new Failure(404, frameworkBody(error))
}

/** What a streamed reply or WebSocket still open when the gateway closes ends with. */
export const shuttingDown = (): Failure => {
  const error = Errors.ServiceUnavailable.of("the gateway is shutting down", gatewayId)
  return new Failure(503, frameworkBody(error))
}

/** 413, 429, 405: HTTP-level refusals with no framework class; same body shape. */
export const httpError = (status: number, statusText: string, detail: string): Failure =>
  new Failure(status, { _tag: "GatewayError", id: gatewayId, code: status, detail, status: statusText })
