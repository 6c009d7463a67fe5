/**
 * The `scale` group (opt-in: BENCH_GROUPS=scale): starts etcd (scripts/engines.sh, always stopped), runs
 * bench/scale.ts in one child process with --expose-gc, and renders its result as tables.
 */
import type { Engine, Launcher } from "./children.js"
import { runForResult, startEngine } from "./children.js"
import type { ScaleOptions, ScaleResult } from "./scale.js"

export interface ScaleConfig {
  readonly sections: ReadonlyArray<string>
  readonly roundMs: number
  readonly rounds: number
  readonly cycles: number
  readonly clients: number
  readonly changes: number
  readonly mdnsNodes: number
}

const sectionNames = ["selection", "memory", "etcd", "mdns"] as const

export const runScale = async (
  launcher: Launcher,
  config: ScaleConfig
): Promise<{ result?: ScaleResult; failure?: string }> => {
  const sections = sectionNames.filter((s) => config.sections.includes(s))
  console.log(
    `[scale] ${sections.join(", ")}: 1,000 services × 3 nodes + one of 3,000; ${config.clients} etcd clients, ` +
      `${config.changes} changes; mdns ${config.mdnsNodes} nodes`
  )
  let engine: Engine | undefined
  try {
    if (sections.includes("etcd")) engine = startEngine("etcd")
    const options: ScaleOptions = {
      sections,
      etcd: engine?.address,
      services: 1000,
      nodesPerService: 3,
      bigNodes: 3000,
      roundMs: config.roundMs,
      rounds: config.rounds,
      cycles: config.cycles,
      clients: config.clients,
      changes: config.changes,
      registerConcurrency: 32,
      mdnsPort: 20000 + Math.floor(Math.random() * 20000),
      mdnsNodes: config.mdnsNodes
    }
    const result = await runForResult<ScaleResult>(
      launcher,
      "bench/scale.ts",
      [JSON.stringify(options)],
      180_000,
      ["--expose-gc"]
    )
    return { result }
  } catch (error) {
    const failure = error instanceof Error ? error.message : String(error)
    console.log(`  FAILED ${failure}`)
    return { failure }
  } finally {
    try {
      engine?.stop()
    } catch (error) {
      console.log(`  stopping etcd failed: ${error}`)
    }
  }
}

const fmt = (n: number | undefined, digits = 0): string =>
  n !== undefined && Number.isFinite(n)
    ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })
    : "—"

export const scaleTable = (result: ScaleResult): string => {
  const parts: Array<string> = []
  const selection = result.selection ?? []
  if (selection.length > 0) {
    const strategies = [...new Set(selection.filter((r) => r.nodes > 0).map((r) => r.strategy))]
    const small = Math.min(...selection.filter((r) => r.nodes > 0).map((r) => r.nodes))
    const lines = [
      "| strategy | ns/call, 3-node service (median / best round) | ns/call, 3,000-node service (median / best) | 3,000 ÷ 3 (median / best) |",
      "|---|---:|---:|---:|"
    ]
    for (const strategy of strategies) {
      const a = selection.find((r) => r.strategy === strategy && r.nodes === small)
      const b = selection.find((r) => r.strategy === strategy && r.nodes !== small)
      lines.push(
        `| ${strategy} | ${fmt(a?.nsPerCall)} / ${fmt(a?.bestNsPerCall)} | ${fmt(b?.nsPerCall)} / ${
          fmt(b?.bestNsPerCall)
        } | ${a && b ? `${fmt(b.nsPerCall / a.nsPerCall, 2)}× / ${fmt(b.bestNsPerCall / a.bestNsPerCall, 2)}×` : "—"} |`
      )
    }
    const loop = selection.find((r) => r.nodes === 0)
    if (loop !== undefined) {
      lines.push(`| (the fiber loop alone, included above) | ${fmt(loop.nsPerCall)} / ${fmt(loop.bestNsPerCall)} | | |`)
    }
    parts.push(
      "Selection: cached-registry read + `Selector.select` per call, 1,000 services × 3 nodes and one of " +
        "3,000 registered\n\n" + lines.join("\n")
    )
  }
  const rows: Array<string> = []
  const m = result.memory
  if (m !== undefined) {
    rows.push(`| memory registry holding 1,000 × 3 (heap after gc) | ${fmt(m.registryMb as number, 2)} MB | |`)
    rows.push(
      `| CachedRegistry over it, all 1,000 cached | +${
        fmt(m.cacheMb as number, 2)
      } MB | entries share the registry's objects |`
    )
    rows.push(
      `| … after refresh cycle 1 / ${m.warmCycle} / ${m.cycles} (each: all 1,000 stale → refetched, all renewed, 50 changed) | ${
        fmt(m.afterFirstCycleMb as number, 2)
      } / ${fmt(m.afterWarmCycleMb as number, 2)} / ${fmt(m.afterCyclesMb as number, 2)} MB over the registry | ${
        m.bounded ? "bounded" : "GROWS"
      }: ${fmt(m.growthMb as number, 2)} MB from cycle ${m.warmCycle} to ${m.cycles} |`
    )
  }
  const e = result.etcd
  if (e !== undefined) {
    rows.push(
      `| etcd: register 1,000 × 3 (one lease + put per node, ${e.registerConcurrency} register calls in flight) | ${
        fmt(e.registerMs as number)
      } ms | ${fmt(e.nodesPerSecond as number)} nodes/s |`
    )
    rows.push(
      `| etcd: one client's watch (view of all 3,000 keys) + etcd3 client | ${fmt(e.clientWatchMb as number, 2)} MB | |`
    )
    rows.push(
      `| etcd: its CachedRegistry filled with 1,000 services | +${fmt(e.cacheMb as number, 2)} MB | filled in ${
        fmt(e.cacheFillMs as number)
      } ms (16 lookups in flight) |`
    )
    rows.push(
      `| etcd: change → seen by each client's cache, ${e.clients} clients × ${e.changes} changes (one process) | p50 ${
        fmt(e.p50Ms as number, 1)
      } / p99 ${fmt(e.p99Ms as number, 1)} / max ${
        fmt(e.maxMs as number, 1)
      } ms | ${e.samples} samples, ${e.missed} missed; until all ${e.clients} saw it: p50 ${
        fmt(e.allClientsP50Ms as number, 1)
      } / p99 ${fmt(e.allClientsP99Ms as number, 1)} ms |`
    )
  }
  const d = result.mdns
  if (d !== undefined) {
    rows.push(
      `| mdns: most endpoints one registration can carry (names \`Endpoint0000\`…, no metadata) | ${d.maxEndpoints} | beyond: ${d.beyondEndpoints} |`
    )
    rows.push(
      `| mdns: bytes of one node's records (2 PTR, SRV, TXT, A), minimal / 3 endpoints + 1 metadata key | ${d.minimalNodeBytes} / ${d.typicalNodeBytes} B | nodes per 1,472-byte packet: ${
        Math.floor(1460 / (d.minimalNodeBytes as number))
      } / ${Math.floor(1460 / (d.typicalNodeBytes as number))} (shared names are not compressed) |`
    )
    rows.push(
      `| mdns: one registration of ${fmt(d.nodesRegistered as number)} nodes | ${
        fmt(d.registerMs as number)
      } ms | ≤ ${d.nodesPerPacketMax} nodes per packet; a raw listener got ${d.packetsSeenByListener} packets |`
    )
    rows.push(
      `| mdns: nodes seen by a registry running before / started 0 ms after | ${d.seenByObserver} / ${d.seenByLateStarter} of ${d.nodesRegistered} | after 1.5 s each |`
    )
  }
  if (rows.length > 0) parts.push(["| measurement | value | note |", "|---|---:|---|", ...rows].join("\n"))
  return parts.join("\n\n")
}

export const scaleSummary = (result: ScaleResult | undefined): Array<string> => {
  if (result === undefined) return []
  const out: Array<string> = []
  const selection = result.selection ?? []
  for (const strategy of ["random", "round-robin"]) {
    const rows = selection.filter((r) => r.strategy === strategy).sort((a, b) => a.nodes - b.nodes)
    if (rows.length === 2) {
      out.push(
        `- selection ${strategy}: ${fmt(rows[0]!.nsPerCall)} ns/call at ${rows[0]!.nodes} nodes, ${
          fmt(rows[1]!.nsPerCall)
        } at ${fmt(rows[1]!.nodes)} (${fmt(rows[1]!.nsPerCall / rows[0]!.nsPerCall, 2)}× median, ${
          fmt(rows[1]!.bestNsPerCall / rows[0]!.bestNsPerCall, 2)
        }× best round; target flat)`
      )
    }
  }
  if (result.etcd !== undefined) {
    out.push(
      `- etcd watch propagation p99 ${
        fmt(result.etcd.p99Ms as number, 1)
      } ms over ${result.etcd.clients} clients (target ≤ 100 ms)`
    )
  }
  return out
}
