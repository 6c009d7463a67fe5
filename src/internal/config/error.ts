import * as Data from "effect/Data"

/**
 * Why a config operation failed:
 * - `Missing`: the path is absent and no default was given.
 * - `InvalidValue`: the value at the path does not decode with the schema.
 * - `Parse`: a source's content is malformed (JSON/YAML syntax, not an object at the root).
 * - `Unavailable`: a source could not be read (file missing, etcd down, I/O or watch failure).
 */
export type DynamicConfigErrorReason = "Missing" | "InvalidValue" | "Parse" | "Unavailable"

export class DynamicConfigError extends Data.TaggedError("DynamicConfigError")<{
  readonly reason: DynamicConfigErrorReason
  /** The config path concerned (`db.host`), or "" when the error is about a whole source. */
  readonly path: string
  /** The source concerned (`file:/etc/app.yaml`, `etcd:/app/`), when there is one. */
  readonly source?: string | undefined
  /** Human-readable detail; for `InvalidValue` the schema's formatted parse issue. */
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    const where = [this.source, this.path === "" ? undefined : `path "${this.path}"`].filter((s) => s !== undefined)
    return `config ${this.reason}${where.length > 0 ? ` (${where.join(", ")})` : ""}: ${this.detail}`
  }
}
