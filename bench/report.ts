/** Markdown tables of a benchmark run (pure functions of the results). */
import type { CodecRow } from "./codec.js"
import type { LoadResult } from "./loadgen.js"
import type { LargeScenario } from "./scenarios.js"
import { baseline, gatewayDirect, gatewayReference, reference, scenarios, streamReference } from "./scenarios.js"
import type { StoreRow } from "./store.js"

export interface Measurement {
  readonly scenario: string
  readonly group: "rpc" | "stream" | "gateway" | "grpc" | "large"
  readonly inflight: number
  /** Calls (rpc) or echoed messages (stream) per second in the window. */
  readonly reqPerSec: number
  readonly completed: number
  readonly errors: number
  readonly firstError?: string | undefined
  readonly latencyUs: LoadResult["latencyUs"]
  readonly serverCpuUsPerReq: number
  readonly clientCpuUsPerReq: number
  readonly serverPeakRssMb: number
  readonly clientPeakRssMb: number
  readonly failure?: string | undefined
}

export interface StartupRow {
  readonly server: string
  readonly runs: number
  readonly medianMillis: number
  readonly minMillis: number
  readonly maxMillis: number
  /** RSS at READY (median). */
  readonly rssMb: number
  readonly failure?: string | undefined
}

export interface IdleRow {
  /** Server script and arguments. */
  readonly server: string
  readonly scenarios: ReadonlyArray<string>
  readonly idleRssMb: number
  readonly peakRssMb: number
  readonly failure?: string | undefined
}

export interface StoreCellFailure {
  readonly backend: string
  readonly failure: string
}

export const fmt = (n: number, digits = 0): string =>
  Number.isFinite(n) ? n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits }) : "—"

export const ratio = (a: number | undefined, b: number | undefined): string =>
  a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${(a / b).toFixed(2)}×`
    : "—"

const markdown = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>, leftColumns = 1): string =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map((_, i) => i < leftColumns ? "---" : "---:").join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ].join("\n")

const errorsCell = (row: Measurement) => row.failure !== undefined ? "FAILED" : String(row.errors)

export const rpcTable = (rows: ReadonlyArray<Measurement>): string =>
  markdown(
    [
      "scenario",
      "in flight",
      "req/s",
      "req/s vs raw",
      "req/s vs Moleculer",
      "p50 µs",
      "p99 µs",
      "p50 vs Moleculer",
      "server CPU µs/req",
      "CPU vs raw",
      "CPU vs Moleculer",
      "server peak RSS MB",
      "RSS vs Moleculer",
      "client CPU µs/req",
      "client peak RSS MB",
      "client RSS vs Moleculer",
      "errors"
    ],
    rows.map((row) => {
      const raw = rows.find((r) => r.scenario === baseline && r.inflight === row.inflight)
      const mol = rows.find((r) => r.scenario === reference && r.inflight === row.inflight)
      return [
        row.scenario,
        String(row.inflight),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, raw?.reqPerSec),
        ratio(row.reqPerSec, mol?.reqPerSec),
        fmt(row.latencyUs.p50),
        fmt(row.latencyUs.p99),
        ratio(row.latencyUs.p50, mol?.latencyUs.p50),
        fmt(row.serverCpuUsPerReq, 1),
        ratio(row.serverCpuUsPerReq, raw?.serverCpuUsPerReq),
        ratio(row.serverCpuUsPerReq, mol?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        ratio(row.serverPeakRssMb, mol?.serverPeakRssMb),
        fmt(row.clientCpuUsPerReq, 1),
        fmt(row.clientPeakRssMb, 1),
        ratio(row.clientPeakRssMb, mol?.clientPeakRssMb),
        errorsCell(row)
      ]
    })
  )

/**
 * Gateways: req/s and latency vs moleculer-web and vs calling the service directly. "server" is the gateway
 * process only (the service runs in its own child process); for `gateway-direct` it is the service.
 */
export const gatewayTable = (rows: ReadonlyArray<Measurement>): string =>
  markdown(
    [
      "scenario",
      "in flight",
      "req/s",
      "vs moleculer-web",
      "vs direct",
      "p50 µs",
      "p99 µs",
      "p50 vs moleculer-web",
      "gateway CPU µs/req",
      "CPU vs moleculer-web",
      "gateway peak RSS MB",
      "client CPU µs/req",
      "errors"
    ],
    rows.map((row) => {
      const web = rows.find((r) => r.scenario === gatewayReference && r.inflight === row.inflight)
      const direct = rows.find((r) => r.scenario === gatewayDirect && r.inflight === row.inflight)
      return [
        row.scenario,
        String(row.inflight),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, web?.reqPerSec),
        ratio(row.reqPerSec, direct?.reqPerSec),
        fmt(row.latencyUs.p50),
        fmt(row.latencyUs.p99),
        ratio(row.latencyUs.p50, web?.latencyUs.p50),
        fmt(row.serverCpuUsPerReq, 1),
        ratio(row.serverCpuUsPerReq, web?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        fmt(row.clientCpuUsPerReq, 1),
        errorsCell(row)
      ]
    })
  )

export const streamTable = (rows: ReadonlyArray<Measurement>): string =>
  markdown(
    [
      "scenario",
      "msgs in flight",
      "msgs/s (each way)",
      "vs grpc-js",
      "p50 µs",
      "p99 µs",
      "server CPU µs/msg",
      "CPU vs grpc-js",
      "server peak RSS MB",
      "client CPU µs/msg",
      "errors"
    ],
    rows.map((row) => {
      const ref = rows.find((r) => r.scenario === streamReference && r.inflight === row.inflight)
      return [
        row.scenario,
        String(row.inflight),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, ref?.reqPerSec),
        fmt(row.latencyUs.p50),
        fmt(row.latencyUs.p99),
        fmt(row.serverCpuUsPerReq, 1),
        ratio(row.serverCpuUsPerReq, ref?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        fmt(row.clientCpuUsPerReq, 1),
        errorsCell(row)
      ]
    })
  )

/** The gRPC group: each scenario against grpc-js (proto-loader) and against the native protocol, same kind. */
export const grpcTable = (rows: ReadonlyArray<Measurement>): string =>
  markdown(
    [
      "scenario",
      "in flight",
      "calls or msgs/s",
      "vs grpc-js",
      "vs native",
      "p50 µs",
      "p99 µs",
      "server CPU µs/op",
      "CPU vs grpc-js",
      "server peak RSS MB",
      "client CPU µs/op",
      "errors"
    ],
    rows.map((row) => {
      const kind = row.scenario.endsWith("-bidi") ? "bidi" : "unary"
      const ref = rows.find((r) => r.scenario === `grpc-js-proto-${kind}` && r.inflight === row.inflight)
      const native = rows.find((r) => r.scenario === `effect-micro-native-${kind}` && r.inflight === row.inflight)
      return [
        row.scenario,
        String(row.inflight),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, ref?.reqPerSec),
        ratio(row.reqPerSec, native?.reqPerSec),
        fmt(row.latencyUs.p50),
        fmt(row.latencyUs.p99),
        fmt(row.serverCpuUsPerReq, 1),
        ratio(row.serverCpuUsPerReq, ref?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        fmt(row.clientCpuUsPerReq, 1),
        errorsCell(row)
      ]
    })
  )

/** The gRPC group's headline: our gRPC layer vs grpc-js, and what gRPC costs against the native protocol. */
export const grpcSummary = (rows: ReadonlyArray<Measurement>): Array<string> =>
  rows.filter((row) => row.scenario.startsWith("effect-micro-grpc-")).map((row) => {
    const kind = row.scenario.endsWith("-bidi") ? "bidi" : "unary"
    const ref = rows.find((r) => r.scenario === `grpc-js-proto-${kind}` && r.inflight === row.inflight)
    const native = rows.find((r) => r.scenario === `effect-micro-native-${kind}` && r.inflight === row.inflight)
    return `- ${row.scenario} @${row.inflight} in flight: ${ratio(row.reqPerSec, ref?.reqPerSec)} grpc-js ` +
      `(proto-loader) ${kind === "bidi" ? "msgs" : "calls"}/s, server CPU ${
        ratio(row.serverCpuUsPerReq, ref?.serverCpuUsPerReq)
      } grpc-js's; ${ratio(row.reqPerSec, native?.reqPerSec)} of the native protocol's throughput`
  })

const largeOf = (name: string): LargeScenario | undefined => scenarios.find((s) => s.name === name)?.large

/** MiB of payload echoed per second (each way), and CPU per MiB, of a `large` row. */
const largeFigures = (row: Measurement) => {
  const mib = (largeOf(row.scenario)?.bytes ?? NaN) / 2 ** 20
  return {
    mibPerSec: row.reqPerSec * mib,
    serverCpuMsPerMib: row.serverCpuUsPerReq / mib / 1000,
    clientCpuMsPerMib: row.clientCpuUsPerReq / mib / 1000
  }
}

/** The raw-net row of the same size and encoding, and the grpc-js row of the same size and kind (bytes only). */
const largeReferences = (rows: ReadonlyArray<Measurement>, meta: LargeScenario) => ({
  raw: rows.find((r) => r.scenario === `raw-net-${meta.encoding}-${meta.size}`),
  grpc: meta.encoding === "bytes" ? rows.find((r) => r.scenario === `grpc-js-${meta.kind}-${meta.size}`) : undefined
})

/** The large group: MiB/s against raw net and grpc-js of the same size (and kind), CPU per MiB, peak RSS. */
export const largeTable = (rows: ReadonlyArray<Measurement>): string =>
  markdown(
    [
      "scenario",
      "payload",
      "in flight",
      "MiB/s",
      "msgs/s",
      "vs raw net",
      "vs grpc-js",
      "p50 ms",
      "p99 ms",
      "server CPU ms/MiB",
      "client CPU ms/MiB",
      "server CPU vs grpc-js",
      "server peak RSS MB",
      "client peak RSS MB",
      "errors"
    ],
    rows.map((row) => {
      const meta = largeOf(row.scenario)!
      const { grpc, raw } = largeReferences(rows, meta)
      const figures = largeFigures(row)
      return [
        row.scenario,
        `${meta.size} ${meta.encoding}`,
        String(row.inflight),
        fmt(figures.mibPerSec, 1),
        fmt(row.reqPerSec),
        ratio(row.reqPerSec, raw?.reqPerSec),
        ratio(row.reqPerSec, grpc?.reqPerSec),
        fmt(row.latencyUs.p50 / 1000, 2),
        fmt(row.latencyUs.p99 / 1000, 2),
        fmt(figures.serverCpuMsPerMib, 2),
        fmt(figures.clientCpuMsPerMib, 2),
        ratio(row.serverCpuUsPerReq, grpc?.serverCpuUsPerReq),
        fmt(row.serverPeakRssMb, 1),
        fmt(row.clientPeakRssMb, 1),
        errorsCell(row)
      ]
    })
  )

/** The large group's headline: each effect-micro row against raw net and grpc-js of the same size. */
export const largeSummary = (rows: ReadonlyArray<Measurement>): Array<string> =>
  rows.filter((row) => row.scenario.startsWith("effect-micro-")).map((row) => {
    const meta = largeOf(row.scenario)!
    const { grpc, raw } = largeReferences(rows, meta)
    return `- ${row.scenario} @${row.inflight}: ${fmt(largeFigures(row).mibPerSec, 1)} MiB/s, ${
      ratio(row.reqPerSec, raw?.reqPerSec)
    } raw net` + (grpc !== undefined
      ? `, ${ratio(row.reqPerSec, grpc.reqPerSec)} grpc-js ${meta.kind}, server CPU ${
        ratio(row.serverCpuUsPerReq, grpc.serverCpuUsPerReq)
      } grpc-js's`
      : "")
  })

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? NaN
}

export const codecTable = (rows: ReadonlyArray<CodecRow>): string => {
  const ref = rows.find((r) => r.codec === "protobufjs")
  return markdown(
    ["codec", "encode+decode ops/s (best)", "median round", "ns/op", "vs protobufjs", "bytes"],
    rows.map((row) => [
      row.codec,
      fmt(row.opsPerSec),
      fmt(median(row.rounds)),
      fmt(1e9 / row.opsPerSec),
      ratio(row.opsPerSec, ref?.opsPerSec),
      String(row.bytes)
    ])
  )
}

export const storeTable = (rows: ReadonlyArray<StoreRow>, failures: ReadonlyArray<StoreCellFailure>): string => {
  const table = markdown(
    ["backend", "op", "in flight", "implementation", "ops/s", "µs/op", "Store ÷ this"],
    rows.map((row) => {
      const store = rows.find((r) =>
        !r.raw && r.backend === row.backend && r.op === row.op && r.concurrency === row.concurrency
      )
      return [
        row.backend,
        row.op,
        String(row.concurrency),
        row.impl,
        fmt(row.opsPerSec),
        fmt(row.usPerOp, 1),
        row.raw ? ratio(store?.opsPerSec, row.opsPerSec) : ""
      ]
    }),
    4
  )
  const notes = [
    ...rows.filter((r) => r.errors > 0).map((r) =>
      `- ${r.backend} ${r.op} ${r.impl}: ${r.errors} errors (${r.firstError})`
    ),
    ...failures.map((f) => `- ${f.backend}: FAILED ${f.failure.split("\n")[0]}`)
  ]
  return notes.length === 0 ? table : `${table}\n\n${notes.join("\n")}`
}

export const startupTable = (rows: ReadonlyArray<StartupRow>): string => {
  const reference = rows.find((r) => r.server.startsWith("moleculer"))
  return markdown(
    ["server", "starts", "spawn → READY median ms", "min–max ms", "vs Moleculer", "RSS at READY MB"],
    rows.map((row) => [
      row.server,
      String(row.runs),
      row.failure !== undefined ? "FAILED" : fmt(row.medianMillis),
      `${fmt(row.minMillis)}–${fmt(row.maxMillis)}`,
      ratio(row.medianMillis, reference?.medianMillis),
      fmt(row.rssMb, 1)
    ])
  )
}

export const idleTable = (rows: ReadonlyArray<IdleRow>): string =>
  markdown(
    ["server", "scenarios", "idle RSS MB", "peak RSS MB (start-up)"],
    rows.map((row) => [
      `\`${row.server}\``,
      row.scenarios.join(", "),
      row.failure !== undefined ? "FAILED" : fmt(row.idleRssMb, 1),
      fmt(row.peakRssMb, 1)
    ]),
    2
  )

/** The headline ratios, one line each. */
export const summary = (results: {
  readonly rpc: ReadonlyArray<Measurement>
  readonly gateway?: ReadonlyArray<Measurement> | undefined
  readonly stream: ReadonlyArray<Measurement>
  readonly codec: ReadonlyArray<CodecRow>
  readonly store: ReadonlyArray<StoreRow>
  readonly idle: ReadonlyArray<IdleRow>
  readonly startup?: ReadonlyArray<StartupRow> | undefined
}): string => {
  const lines: Array<string> = []
  const inflights = [...new Set(results.rpc.map((r) => r.inflight))]
  for (const inflight of inflights) {
    const mol = results.rpc.find((r) => r.scenario === reference && r.inflight === inflight)
    const raw = results.rpc.find((r) => r.scenario === baseline && r.inflight === inflight)
    if (mol === undefined && raw === undefined) continue
    for (const row of results.rpc.filter((r) => r.inflight === inflight && r.scenario.startsWith("effect-micro"))) {
      lines.push(
        `- ${row.scenario} @${inflight} in flight: ${ratio(row.reqPerSec, mol?.reqPerSec)} Moleculer req/s ` +
          `(${ratio(row.reqPerSec, raw?.reqPerSec)} raw net), server CPU ${
            ratio(row.serverCpuUsPerReq, mol?.serverCpuUsPerReq)
          } Moleculer's, ` +
          `peak RSS server ${ratio(row.serverPeakRssMb, mol?.serverPeakRssMb)} / client ${
            ratio(row.clientPeakRssMb, mol?.clientPeakRssMb)
          } Moleculer's`
      )
    }
  }
  for (const row of (results.gateway ?? []).filter((r) => r.scenario === "gateway-effect-micro")) {
    const web = results.gateway!.find((r) => r.scenario === gatewayReference && r.inflight === row.inflight)
    const direct = results.gateway!.find((r) => r.scenario === gatewayDirect && r.inflight === row.inflight)
    lines.push(
      `- gateway @${row.inflight} in flight: ${ratio(row.reqPerSec, web?.reqPerSec)} moleculer-web req/s, ` +
        `${ratio(row.reqPerSec, direct?.reqPerSec)} of calling the service directly ` +
        `(p50 ${fmt(row.latencyUs.p50)} µs vs ${fmt(direct?.latencyUs.p50 ?? NaN)} µs direct)`
    )
  }
  for (const row of results.stream.filter((r) => r.scenario !== streamReference)) {
    const ref = results.stream.find((r) => r.scenario === streamReference && r.inflight === row.inflight)
    if (ref === undefined) continue
    lines.push(
      `- ${row.scenario} (${row.inflight} msgs in flight): ${
        ratio(row.reqPerSec, ref?.reqPerSec)
      } grpc-js bidi msgs/s, ` +
        `server CPU ${ratio(row.serverCpuUsPerReq, ref?.serverCpuUsPerReq)} grpc-js's`
    )
  }
  const greeter = results.startup?.find((r) => r.server.startsWith("effect-micro"))
  const molStart = results.startup?.find((r) => r.server.startsWith("moleculer"))
  if (greeter !== undefined && molStart !== undefined) {
    lines.push(
      `- start → serving: ${ratio(greeter.medianMillis, molStart.medianMillis)} Moleculer's time ` +
        `(${fmt(greeter.medianMillis)} vs ${fmt(molStart.medianMillis)} ms, medians of ${greeter.runs}), RSS at READY ${
          fmt(greeter.rssMb, 1)
        } vs ${fmt(molStart.rssMb, 1)} MB`
    )
  }
  const ours = results.codec.find((r) => r.codec === "effect-micro protobuf")
  const pbjs = results.codec.find((r) => r.codec === "protobufjs")
  if (ours !== undefined && pbjs !== undefined) {
    lines.push(
      `- protobuf codec: ${ratio(ours.opsPerSec, pbjs.opsPerSec)} protobufjs (encode+decode, best round; median ${
        ratio(median(ours.rounds), median(pbjs.rounds))
      })`
    )
  }
  for (const store of results.store.filter((r) => !r.raw)) {
    const raws = results.store.filter((r) =>
      r.raw && r.backend === store.backend && r.op === store.op && r.concurrency === store.concurrency
    )
    if (raws.length === 0) continue
    lines.push(
      `- ${store.backend} Store ${store.op}s (${store.concurrency} in flight): ` +
        raws.map((raw) => `${ratio(store.opsPerSec, raw.opsPerSec)} ${raw.impl}`).join(", ")
    )
  }
  for (const row of results.idle) {
    lines.push(`- idle RSS \`${row.server}\`: ${fmt(row.idleRssMb, 1)} MB`)
  }
  return lines.join("\n")
}
