/**
 * The benchmark's load scenarios. Adding one is one more entry: a server script that prints
 * `READY <address>`, and a client factory loaded in the load-generator process.
 *
 * Group `rpc`: unary echo calls. Group `stream`: messages echoed on one bidirectional stream (a "call" is one
 * message out and its echo back, so "req/s" there is msgs/s each way). Group `gateway`: the same unary echo
 * over HTTP/1.1 keep-alive (JSON body) through an API gateway in front of the service, vs calling it directly.
 * Group `grpc`: unary and bidi over effect-micro's gRPC layer (GrpcServer + GrpcClient) vs a plain grpc-js + proto-loader service built from the
 * same `.proto`, and vs effect-micro's native protocol with the same protobuf payload (the cost of gRPC).
 * Group `large`: echoes of 64 KiB and 1 MiB messages (raw bytes, and JSON of a string field), unary and on a
 * bidi stream, effect-micro vs raw `node:net` vs grpc-js (MB/s).
 */
import type { ClientFactory } from "./clients/types.js"
import type { LargeSize } from "./largePayload.js"
import { largeInflight, largeSizes } from "./largePayload.js"

export interface Scenario {
  /** Unique, used on the command line (`BENCH_SCENARIOS=a,b`) and in results. */
  readonly name: string
  readonly group: "rpc" | "stream" | "gateway" | "grpc" | "large"
  /** One line for the README / table legend. */
  readonly description: string
  /**
   * Arguments of the server process (script path relative to the repository root, then its own
   * arguments). It must listen on 127.0.0.1 on an ephemeral port and print `READY <address>` on stdout
   * (`host:port`, possibly followed by what the client needs); it is stopped with SIGTERM (then SIGKILL).
   * It runs as the `node` process itself, so `/proc/<pid>` measures the server alone.
   */
  readonly server: ReadonlyArray<string>
  /** Run the server as one bundled ESM file (bench/children.ts `bundle`) instead of file by file. */
  readonly bundled?: boolean | undefined
  /** Loaded lazily in the load-generator process, so a scenario only loads its own dependencies. */
  readonly client: () => Promise<ClientFactory>
  /** Diagnostic scenarios run only when named in `BENCH_SCENARIOS`. */
  readonly optional?: boolean | undefined
  /** The `large` group: what is echoed, and the in-flight count used unless BENCH_LARGE_INFLIGHT is set. */
  readonly large?: LargeScenario | undefined
}

export interface LargeScenario {
  readonly size: LargeSize
  readonly bytes: number
  readonly encoding: "bytes" | "json"
  /** Raw net frames on one connection are both: its row is the baseline of unary and bidi rows alike. */
  readonly kind: "unary" | "bidi"
  readonly impl: "raw-net" | "grpc-js" | "effect-micro"
  readonly inflight: number
}

/**
 * The `large` group, per size: `raw-net-{bytes,json}-<size>` (baselines), `grpc-js-{unary,bidi}-<size>`
 * (reference, raw bytes), `effect-micro-{bytes-unary,json-unary,bytes-bidi}-<size>`.
 */
const largeScenarios: ReadonlyArray<Scenario> = (Object.keys(largeSizes) as Array<LargeSize>).flatMap(
  (size): Array<Scenario> => {
    const bytes = largeSizes[size]
    const meta = (impl: LargeScenario["impl"], encoding: LargeScenario["encoding"], kind: LargeScenario["kind"]) => ({
      size,
      bytes,
      encoding,
      kind,
      impl,
      inflight: largeInflight[size]
    })
    return [
      {
        name: `raw-net-bytes-${size}`,
        group: "large",
        description: `node:net, u32 length + ${size} of bytes echoed as received; prefix and body corked (baseline)`,
        server: ["bench/servers/rawNetLarge.ts", "bytes"],
        client: () => import("./clients/rawNetLarge.js").then((m) => m.make("bytes", bytes)),
        large: meta("raw-net", "bytes", "unary")
      },
      {
        name: `raw-net-json-${size}`,
        group: "large",
        description:
          `node:net, u32 length + JSON { data } of ${size}; parsed and re-serialised on both sides (baseline)`,
        server: ["bench/servers/rawNetLarge.ts", "json"],
        client: () => import("./clients/rawNetLarge.js").then((m) => m.make("json", bytes)),
        large: meta("raw-net", "json", "unary")
      },
      {
        name: `grpc-js-unary-${size}`,
        group: "large",
        description: `grpc-js 1.14 unary Echo of ${size} of raw bytes (identity serializers)`,
        server: ["bench/servers/grpcLarge.ts"],
        client: () => import("./clients/grpcLarge.js").then((m) => m.make("unary", bytes)),
        large: meta("grpc-js", "bytes", "unary")
      },
      {
        name: `grpc-js-bidi-${size}`,
        group: "large",
        description: `grpc-js 1.14 bidi Chat, ${size} raw-bytes messages echoed`,
        server: ["bench/servers/grpcLarge.ts"],
        client: () => import("./clients/grpcLarge.js").then((m) => m.make("bidi", bytes)),
        large: meta("grpc-js", "bytes", "bidi")
      },
      {
        name: `effect-micro-bytes-unary-${size}`,
        group: "large",
        description: `effect-micro unary EchoBytes, application/octet-stream, ${size}, defaults kept`,
        server: ["bench/servers/effectMicro.ts", "large"],
        client: () => import("./clients/effectMicroLarge.js").then((m) => m.make("bytes-unary", bytes)),
        large: meta("effect-micro", "bytes", "unary")
      },
      {
        name: `effect-micro-json-unary-${size}`,
        group: "large",
        description: `effect-micro unary EchoText ({ data: string } of ${size}), application/json`,
        server: ["bench/servers/effectMicro.ts", "large"],
        client: () => import("./clients/effectMicroLarge.js").then((m) => m.make("json-unary", bytes)),
        large: meta("effect-micro", "json", "unary")
      },
      {
        name: `effect-micro-bytes-bidi-${size}`,
        group: "large",
        description: `effect-micro bidi ChatBytes, ${size} octet-stream messages echoed (credit flow control)`,
        server: ["bench/servers/effectMicro.ts", "large"],
        client: () => import("./clients/effectMicroLarge.js").then((m) => m.make("bytes-bidi", bytes)),
        large: meta("effect-micro", "bytes", "bidi")
      }
    ]
  }
)

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
    description:
      "effect-micro unary over TCP, application/json, default retries/deadline/metadata; echo handler `Effect.succeed(item)`",
    server: ["bench/servers/effectMicro.ts"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json"))
  },
  {
    name: "effect-micro-json-bundled",
    group: "rpc",
    description:
      "as effect-micro-json, the server bundled into one ESM file with esbuild (docs/deploying.md) instead of ≈ 550 modules",
    server: ["bench/servers/effectMicro.ts"],
    bundled: true,
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
    name: "effect-micro-json-effectful",
    group: "rpc",
    description:
      "as effect-micro-json, the echo handler written `Effect.sync(() => item)` (work to run: a pooled fiber per call) instead of `Effect.succeed(item)` (an `Exit`: no fiber)",
    server: ["bench/servers/effectMicro.ts", "effectful"],
    client: () => import("./clients/effectMicro.js").then((m) => m.make("application/json"))
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
    name: "effect-micro-json-promise-client",
    group: "rpc",
    description:
      "as effect-micro-json, but each call made from Promise code through `Client.makePromise`: `await client.Echo(...)`",
    server: ["bench/servers/effectMicro.ts"],
    client: () =>
      import("./clients/effectMicro.js").then((m) => m.make("application/json", { caller: "promise-client" }))
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
  ...grpcScenarios,
  ...largeScenarios
]

/** Ratios are computed against these scenarios at the same in-flight count. */
export const baseline = "raw-net"
export const reference = "moleculer"
export const streamReference = "grpc-js-bidi"
export const gatewayReference = "gateway-moleculer-web"
export const gatewayDirect = "gateway-direct"
