/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): top functions by self time, and self time by
 * source file. Usage: `npx tsx bench/profile.ts <file.cpuprofile> [top=10] [lastMs]`; with `lastMs`, only
 * samples from the last `lastMs` milliseconds before the profile ends count (skipping its final 200 ms), which
 * for a bench server is the measured window (it is stopped right after the window).
 */
import { readFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
    readonly columnNumber: number
  }
  readonly hitCount?: number
  readonly children?: ReadonlyArray<number>
}
interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

export const summarise = (profile: Profile, top = 10, lastMs?: number) => {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const from = lastMs === undefined ? -Infinity : profile.endTime - lastMs * 1000
  const to = lastMs === undefined ? Infinity : profile.endTime - 200_000
  // Self time per node from the sample timeline (more precise than hitCount × interval).
  const selfUs = new Map<number, number>()
  let time = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0
    if (time < from || time > to) continue
    const delta = profile.timeDeltas[i + 1] ?? 0
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + delta)
  }
  const total = [...selfUs.values()].reduce((a, b) => a + b, 0)
  const shortUrl = (url: string) =>
    url === "" ? "" : url
      .replace(/^file:\/\//, "")
      .replace(/^.*\/node_modules\//, "~/")
      .replace(`${root}/bench/.build/`, "")
      .replace(`${root}/`, "")
  const fnKey = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${shortUrl(n.callFrame.url)}${
      n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""
    }`
  const byFunction = new Map<string, number>()
  const byFile = new Map<string, number>()
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!
    byFunction.set(fnKey(node), (byFunction.get(fnKey(node)) ?? 0) + us)
    const file = shortUrl(node.callFrame.url) || node.callFrame.functionName
    byFile.set(file, (byFile.get(file) ?? 0) + us)
  }
  const rank = (m: Map<string, number>, n: number) =>
    [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([name, us]) => ({
      name,
      ms: us / 1000,
      percent: (100 * us) / total
    }))
  return { totalMs: total / 1000, functions: rank(byFunction, top), files: rank(byFile, top) }
}

const main = () => {
  const [file, topArg, lastArg] = process.argv.slice(2)
  if (file === undefined) {
    console.error("usage: profile.ts <file.cpuprofile> [top]")
    process.exit(2)
  }
  const result = summarise(
    JSON.parse(readFileSync(file, "utf8")),
    Number(topArg ?? 10),
    lastArg === undefined ? undefined : Number(lastArg)
  )
  console.log(
    `sampled: ${result.totalMs.toFixed(0)} ms${
      lastArg === undefined ? "" : ` (last ${lastArg} ms)`
    }\n\ntop self time by function:`
  )
  for (const f of result.functions) {
    console.log(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`)
  }
  console.log("\nself time by file:")
  for (const f of result.files) {
    console.log(`  ${f.percent.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(6)} ms  ${f.name}`)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main()
