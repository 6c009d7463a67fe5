/**
 * The benchmark's scenarios. Adding one (Moleculer, @effect/rpc, grpc-js, protobuf, …) is one more entry:
 * a server script that prints `READY host:port`, and a client factory loaded in the load-generator process.
 */
import type { ClientFactory } from "./clients/types.js"

export interface Scenario {
  /** Unique, used on the command line (`BENCH_SCENARIOS=a,b`) and in results. */
  readonly name: string
  /** One line for the README / table legend. */
  readonly description: string
  /**
   * Arguments of the server process after `node --import tsx` (script path relative to the repository
   * root, then its own arguments). It must listen on 127.0.0.1 on an ephemeral port and print
   * `READY host:port` on stdout; it is stopped with SIGTERM (then SIGKILL). It runs as the `node` process
   * itself, so `/proc/<pid>` measures the server alone.
   */
  readonly server: ReadonlyArray<string>
  /** Loaded lazily in the load-generator process, so a scenario only loads its own dependencies. */
  readonly client: () => Promise<ClientFactory>
  /** Diagnostic scenarios run only when named in `BENCH_SCENARIOS`. */
  readonly optional?: boolean | undefined
}

export const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "raw-net",
    description: "node:net, u32 length + JSON; server parses and re-serialises; corked writes (baseline)",
    server: ["bench/servers/rawNet.ts"],
    client: () => import("./clients/rawNet.js").then((m) => m.make)
  },
  {
    name: "effect-micro-json",
    description: "effect-micro unary over TCP, application/json, default retries/deadline/metadata",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json"))
  },
  {
    name: "effect-micro-msgpack",
    description: "effect-micro unary over TCP, application/msgpack (msgpackr), same server",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/msgpack"))
  },
  {
    name: "effect-micro-json-lean",
    description: "diagnostic (opt-in): as effect-micro-json but timeout 0 (no deadline) and retry false",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json", { timeout: 0, retry: false })),
    optional: true
  }
]

/** Ratios are computed against this scenario at the same in-flight count. */
export const baseline = "raw-net"
