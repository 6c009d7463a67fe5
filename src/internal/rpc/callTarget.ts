/**
 * A failed call's framework error names the call it ended: service, endpoint, the last node tried and how
 * many attempts on how many nodes (see `Errors` for the message this gives). Endpoint errors are the
 * service's own values and pass through untouched.
 */
import { MicroError } from "../../Errors.js"

/** What the client knows about a call's attempts when it gives up. */
export interface CallAttempts {
  readonly count: number
  readonly lastAddress: string | undefined
  nodes(): number
}

const frameworkTags: ReadonlySet<string> = new Set(MicroError.members.map((member) => member._tag))

/** A framework error (by tag: cheaper than the Schema's `isMicroError`, this runs on every failed call). */
const isFramework = (error: unknown): error is MicroError =>
  typeof error === "object" && error !== null && frameworkTags.has((error as { _tag?: string })._tag ?? "")

/** The code of a framework error as a label (`"408"`), undefined for any other value. */
export const frameworkCode = (error: unknown): string | undefined => isFramework(error) ? String(error.code) : undefined

/** `error` with the call filled in when it is a framework error (a copy: errors are values), else `error`. */
export const withTarget = <E>(
  error: E,
  service: string,
  endpoint: string,
  attempts: CallAttempts | undefined
): E => {
  if (!isFramework(error)) return error
  const { _tag, ...fields } = error
  const Make = error.constructor as new(fields: object) => E
  return new Make({
    ...fields,
    service,
    endpoint,
    node: attempts?.lastAddress ?? fields.node,
    attempts: attempts?.count ?? 0,
    nodes: attempts?.nodes() ?? 0
  })
}
