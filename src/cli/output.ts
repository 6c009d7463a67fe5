/** What the commands print: aligned text tables for people, JSON for scripts. */
import * as Console from "effect/Console"
import type * as Effect from "effect/Effect"

/** A table with a header row; every cell is text. Columns are as wide as their widest cell. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells.map((cell, column) => column === cells.length - 1 ? cell : cell.padEnd(widths[column]!)).join("  ")
  return [line(header), ...rows.map(line)].join("\n")
}

/** One JSON document on stdout (one line, so `jq` and line readers both take it). */
export const json = (value: unknown): Effect.Effect<void> => Console.log(JSON.stringify(value))

/** Text for people on stdout. */
export const text = (value: string): Effect.Effect<void> => Console.log(value)

/** `k=v, k=v` of a metadata record (sorted, so output is stable). */
export const metadata = (record: Readonly<Record<string, string>>): string =>
  Object.keys(record).sort().map((key) => `${key}=${record[key]}`).join(", ")

/** A duration in milliseconds as people read it. */
export const millis = (value: number): string =>
  value < 1000
    ? `${Math.round(value)}ms`
    : value < 120_000
    ? `${(value / 1000).toFixed(1)}s`
    : `${Math.round(value / 60_000)}m`
