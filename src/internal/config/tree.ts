/**
 * The config tree: plain JSON-like data. Pure helpers for paths, deep merge, structural equality and
 * `${VAR}` interpolation. No effects here: these run on every reload and every read.
 */
import * as Equal from "effect/Equal"

/** A JSON-like config value. */
export type Value = null | boolean | number | string | ReadonlyArray<Value> | { readonly [key: string]: Value }

/** A tree is an object at the root. */
export type Tree = { readonly [key: string]: Value }

export type Path = string | ReadonlyArray<string>

export const isObject = (u: unknown): u is { readonly [key: string]: Value } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

/** `"db.host"` → `["db", "host"]`; `""` → `[]` (the root). Empty segments are dropped. */
export const pathSegments = (path: Path): ReadonlyArray<string> =>
  typeof path === "string"
    ? path.split(".").filter((s) => s !== "")
    : path.flatMap((s) => s.split(".")).filter((s) => s !== "")

export const pathString = (path: Path): string => pathSegments(path).join(".")

/** The value at a path, or `undefined` when absent. Numeric segments index arrays. */
export const getPath = (tree: Value, path: Path): Value | undefined => {
  let current: Value | undefined = tree
  for (const segment of pathSegments(path)) {
    if (Array.isArray(current)) {
      const index = Number(segment)
      current = Number.isInteger(index) && index >= 0 ? (current as ReadonlyArray<Value>)[index] : undefined
    } else if (isObject(current)) {
      current = Object.prototype.hasOwnProperty.call(current, segment) ? current[segment] : undefined
    } else {
      return undefined
    }
    if (current === undefined) return undefined
  }
  return current
}

/**
 * Sets a value at a path in a mutable object, creating objects on the way. A scalar in the way is
 * replaced by an object (so `APP_DB=x` and `APP_DB_HOST=y` give `db.host = y`); an object already at the
 * target is kept when the new value is a scalar (the nested keys win).
 */
export const setPath = (target: Record<string, Value>, segments: ReadonlyArray<string>, value: Value): void => {
  if (segments.length === 0) {
    if (isObject(value)) Object.assign(target, mergeTrees(target, value))
    return
  }
  let current: Record<string, Value> = target
  for (let i = 0; i < segments.length - 1; i++) {
    const segment = segments[i]!
    const next = current[segment]
    if (isObject(next)) {
      current = next as Record<string, Value>
    } else {
      const created: Record<string, Value> = {}
      current[segment] = created
      current = created
    }
  }
  const last = segments[segments.length - 1]!
  const existing = current[last]
  if (isObject(existing)) {
    if (isObject(value)) current[last] = mergeValues(existing, value)
    // a scalar never replaces an object built from nested keys
  } else {
    current[last] = value
  }
}

/**
 * Deep merge, `later` wins: objects merge key by key (recursively); anything else (scalars, `null`,
 * arrays) is replaced wholesale by the later value. Arrays are not concatenated or merged by index:
 * the later source's array replaces the earlier one (go-micro's rule; it keeps lists predictable).
 */
export const mergeValues = (earlier: Value | undefined, later: Value): Value => {
  if (!isObject(earlier) || !isObject(later)) return later
  const out: Record<string, Value> = { ...earlier }
  for (const key of Object.keys(later)) {
    out[key] = mergeValues(earlier[key], later[key]!)
  }
  return out
}

export const mergeTrees = (earlier: Tree, later: Tree): Tree => mergeValues(earlier, later) as Tree

export const mergeAll = (trees: ReadonlyArray<Tree>): Tree => trees.reduce<Tree>(mergeTrees, {})

/** Structural equality of JSON-like data (and of decoded values: plain objects, arrays, Dates, Effect `Equal`s). */
export const deepEqual = (a: unknown, b: unknown): boolean => {
  if (Object.is(a, b)) return true
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false
  // Effect values (Data, Option, Chunk...) first; if they say "different" (e.g. Data classes holding arrays,
  // compared by reference), fall back to comparing their own fields.
  if ((Equal.isEqual(a) || Equal.isEqual(b)) && Equal.equals(a, b)) return true
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], b[i])) return false
    return true
  }
  if (Array.isArray(b)) return false
  if (a instanceof Date) return b instanceof Date && a.getTime() === b.getTime()
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false
  const keysA = Object.keys(a)
  const keysB = Object.keys(b)
  if (keysA.length !== keysB.length) return false
  for (const key of keysA) {
    if (!Object.prototype.hasOwnProperty.call(b, key)) return false
    if (!deepEqual((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key])) return false
  }
  return true
}

/** Converts parsed input (JSON/YAML output) into a Value, rejecting what JSON cannot hold. */
export const toValue = (u: unknown): Value => {
  if (u === null || typeof u === "string" || typeof u === "boolean") return u
  if (typeof u === "number") {
    if (!Number.isFinite(u)) throw new Error(`non-finite number ${u}`)
    return u
  }
  if (typeof u === "bigint") return u.toString()
  if (u instanceof Date) return u.toISOString()
  if (Array.isArray(u)) return u.map(toValue)
  if (typeof u === "object") {
    const out: Record<string, Value> = {}
    for (const [key, value] of Object.entries(u as object)) {
      if (value !== undefined) out[key] = toValue(value)
    }
    return out
  }
  throw new Error(`unsupported value of type ${typeof u}`)
}

export type Environment = Readonly<Record<string, string | undefined>>

const interpolationPattern = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Expands `${VAR}` and `${VAR:-default}` in a string from `env`. An unset `${VAR}` becomes "" (shell
 * rule); `${VAR:-default}` uses the default when VAR is unset or empty; `$${` is a literal `${`.
 */
export const interpolateString = (input: string, env: Environment): string =>
  input.indexOf("${") === -1 ?
    input :
    input.replace(interpolationPattern, (match, name: string | undefined, fallback: string | undefined) => {
      if (match === "$${") return "${"
      const value = env[name!]
      if (fallback !== undefined) return value === undefined || value === "" ? fallback : value
      return value ?? ""
    })

/** Interpolates every string leaf of a value (keys are left alone). */
export const interpolate = (value: Value, env: Environment): Value => {
  if (typeof value === "string") return interpolateString(value, env)
  if (Array.isArray(value)) return value.map((v) => interpolate(v, env))
  if (isObject(value)) {
    const out: Record<string, Value> = {}
    for (const key of Object.keys(value)) out[key] = interpolate(value[key]!, env)
    return out
  }
  return value
}
