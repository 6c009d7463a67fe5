/**
 * The benchmark's load scenarios. Adding one is one more entry: a server script that prints
 * `READY <address>`, and a client factory loaded in the load-generator process.
 *
 * Group `rpc`: unary echo calls. Group `stream`: messages echoed on one bidirectional stream (a "call" is one
 * message out and its echo back, so "req/s" there is msgs/s each way). Group `gateway`: the same unary echo
 * over HTTP/1.1 keep-alive (JSON body) through an API gateway in front of the service, vs calling it directly.
 * Group `grpc`: unary and bidi over effect-micro's gRPC layer (GrpcServer + GrpcClient) vs a plain grpc-js + proto-loader service built from the
 * same `.proto`, and vs effect-micro's native protocol with the same protobuf payload (the cost of gRPC).
 */
import type { ClientFactory } from "./clients/types.js"

export interface Scenario {
  /** Unique, used on the command line (`BENCH_SCENARIOS=a,b`) and in results. */
  readonly name: string
  readonly group: "rpc" | "stream" | "gateway" | "grpc"
  /** One line for the README / table legend. */
  readonly description: string
  /**
   * Arguments of the server process (script path relative to the repository root, then its own
   * arguments). It must listen on 127.0.0.1 on an ephemeral port and print `READY <address>` on stdout
   * (`host:port`, possibly followed by what the client needs); it is stopped with SIGTERM (then SIGKILL).
   * It runs as the `node` process itself, so `/proc/<pid>` measures the server alone.
   */
  readonly server: ReadonlyArray<string>
  /** Loaded lazily in the load-generator process, so a scenario only loads its own dependencies. */
  readonly client: () => Promise<ClientFactory>
  /** Diagnostic scenarios run only when named in `BENCH_SCENARIOS`. */
  readonly optional?: boolean | undefined
}

/** The gRPC group: `<name>-unary` / `<name>-bidi`, compared with `grpc-js-<kind>` at the same in-flight count. */
const grpcScenarios: ReadonlyArray<Scenario> = (["unary", "bidi"] as const).flatMap((kind): Array<Scenario> => [
  {
    name: `grpc-js-proto-${kind}`,
    group: "grpc",
    description: `grpc-js 1.14 ${kind}, client and server from the contract's .proto via proto-loader (protobufjs)`,
    server: ["bench/servers/grpcProto.ts"],
    client: () => import("./clients/grpcProto.js").then((m) => m.make(kind))
  },
  {
    name: `effect-micro-grpc-${kind}`,
    group: "grpc",
    description:
      `effect-micro ${kind} over gRPC: GrpcServer and Client.make with GrpcClient.layer (our protobuf codec)`,
    server: ["bench/servers/effectMicroGrpc.ts"],
    client: () => import("./clients/effectMicroGrpc.js").then((m) => m.make(kind))
  },
  {
    name: `effect-micro-native-${kind}`,
    group: "grpc",
    description: `effect-micro ${kind} over its native TCP protocol, application/protobuf (same payload)`,
    server: kind === "unary" ? ["bench/servers/effectMicro.ts"] : ["bench/servers/effectMicro.ts", "bidi"],
    client: () =>
      kind === "unary"
        ? import("./clients/effectMicro.js").then((m) => m.make("application/protobuf"))
        : import("./clients/effectMicroBidi.js").then((m) => m.make("application/protobuf"))
  }
])

export const scenarios: ReadonlyArray<Scenario> = [
  {
    name: "raw-net",
    group: "rpc",
    description: "node:net, u32 length + JSON; server parses and re-serialises; corked writes (baseline)",
    server: ["bench/servers/rawNet.ts"],
    client: () => import("./clients/rawNet.js").then((m) => m.make)
  },
  {
    name: "moleculer",
    group: "rpc",
    description: "Moleculer 0.15, TCP transporter (static urls + gossip, no UDP), JSON, logger/metrics/tracing off",
    server: ["bench/servers/moleculer.ts"],
    client: () => import("./clients/moleculer.js").then((m) => m.make)
  },
  {
    name: "effect-rpc-msgpack",
    group: "rpc",
    description: "@effect/rpc 0.76 over raw TCP (layerProtocolSocketServer/NodeSocket), msgpack, tracing off",
    server: ["bench/servers/effectRpc.ts"],
    client: () => import("./clients/effectRpc.js").then((m) => m.make)
  },
  {
    name: "effect-micro-json",
    group: "rpc",
    description: "effect-micro unary over TCP, application/json, default retries/deadline/metadata",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json"))
  },
  {
    name: "effect-micro-msgpack",
    group: "rpc",
    description: "effect-micro unary over TCP, application/msgpack (msgpackr), same server",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/msgpack"))
  },
  {
    name: "effect-micro-protobuf",
    group: "rpc",
    description: "effect-micro unary over TCP, application/protobuf (codec derived from the Schema), same server",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/protobuf"))
  },
  {
    name: "effect-micro-json-metrics",
    group: "rpc",
    description: "as effect-micro-json with Debug.layerMetrics on both sides (Effect metrics per call)",
    server: ["bench/servers/effectMicro.ts", "metrics"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json", { metrics: true })),
    optional: true
  },
  {
    name: "effect-micro-json-lean",
    group: "rpc",
    description: "diagnostic (opt-in): as effect-micro-json but timeout 0 (no deadline) and retry false",
    server: ["bench/servers/effectMicro.ts"],
    client: () =>
      import("./clients/effectMicro.js").then((m) => m.make("application/json", { timeout: 0, retry: false })),
    optional: true
  },
  {
    name: "effect-micro-json-promise",
    group: "rpc",
    description:
      "as effect-micro-json, but each call made from Promise code: `runtime.runPromise(client.Echo(...))` per call",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json", { caller: "promise" }))
  },
  {
    name: "effect-micro-json-fork",
    group: "rpc",
    description: "diagnostic (opt-in): as effect-micro-json but each call forked from callback code (runFork per call)",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json", { caller: "fork" })),
    optional: true
  },
  {
    name: "grpc-js-bidi",
    group: "stream",
    description: "grpc-js 1.14 bidi stream, JSON serializers (no proto-loader), server echoes each message",
    server: ["bench/servers/grpcBidi.ts"],
    client: () => import("./clients/grpcBidi.js").then((m) => m.make)
  },
  {
    name: "effect-micro-bidi",
    group: "stream",
    description: "effect-micro bidi stream (Contract.bidi), JSON, handler returns its input stream",
    server: ["bench/servers/effectMicro.ts", "bidi"],
    client: () => import("./clients/effectMicroBidi.js").then((m) => m.make("application/json"))
  },
  {
    name: "effect-micro-bidi-msgpack",
    group: "stream",
    description: "diagnostic (opt-in): effect-micro bidi stream with application/msgpack",
    server: ["bench/servers/effectMicro.ts", "bidi"],
    client: () => import("./clients/effectMicroBidi.js").then((m) => m.make("application/msgpack")),
    optional: true
  },
  {
    name: "gateway-effect-micro",
    group: "gateway",
    description:
      "effect-micro Gateway.layer (HTTP/1.1, JSON) → effect-micro server over TCP (child process); undici keep-alive pool",
    server: ["bench/servers/gateway.ts"],
    client: () => import("./clients/http.js").then((m) => m.make("/bench/Echo"))
  },
  {
    name: "gateway-moleculer-web",
    group: "gateway",
    description:
      "moleculer-web 0.11 (HTTP/1.1, JSON) → Moleculer 0.15 server over the TCP transporter (child process); same client",
    server: ["bench/servers/moleculerWeb.ts"],
    client: () => import("./clients/http.js").then((m) => m.make("/bench/Echo"))
  },
  {
    name: "gateway-direct",
    group: "gateway",
    description: "no gateway: the effect-micro client calling the same effect-micro server directly (TCP, JSON)",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json"))
  },
  ...grpcScenarios
]

/** Ratios are computed against these scenarios at the same in-flight count. */
export const baseline = "raw-net"
export const reference = "moleculer"
export const streamReference = "grpc-js-bidi"
export const gatewayReference = "gateway-moleculer-web"
export const gatewayDirect = "gateway-direct"
