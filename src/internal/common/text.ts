/** Small text helpers shared across subsystems. */

/** The message of a thrown value, whatever was thrown. */
export const errorMessage = (cause: unknown): string => cause instanceof Error ? cause.message : String(cause)

/** A short random id for node and subscription ids: unique enough per process start, not a secret. */
export const randomId = (): string => Math.random().toString(36).slice(2, 10) + Math.random().toString(36).slice(2, 6)

/** Levenshtein distance, stopping early once it exceeds `max` (then returns max + 1). */
const distance = (a: string, b: string, max: number): number => {
  if (Math.abs(a.length - b.length) > max) return max + 1
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    let rowMin = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      const value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost)
      current.push(value)
      if (value < rowMin) rowMin = value
    }
    if (rowMin > max) return max + 1
    previous = current
  }
  return previous[b.length]!
}

const normalized = (name: string) => name.toLowerCase().replace(/[-_.\s]/g, "")

/**
 * The candidates a mistyped `name` probably meant, best first (at most 3): the same ignoring case and
 * separators, or within an edit distance of a third of the name's length (at least 1, at most 3).
 */
export const closeNames = (name: string, candidates: Iterable<string>): ReadonlyArray<string> => {
  const target = normalized(name)
  const max = Math.min(3, Math.max(1, Math.floor(target.length / 3)))
  const scored: Array<readonly [string, number]> = []
  for (const candidate of new Set(candidates)) {
    if (candidate === name) continue
    const d = distance(target, normalized(candidate), max)
    if (d <= max) scored.push([candidate, d])
  }
  return scored.sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0])).slice(0, 3).map(([candidate]) => candidate)
}

/** `; did you mean "inventory"?` for an unknown name, or "" when nothing is close. */
export const didYouMean = (name: string, candidates: Iterable<string>): string => {
  const close = closeNames(name, candidates)
  return close.length === 0 ? "" : `; did you mean ${close.map((c) => `"${c}"`).join(" or ")}?`
}
