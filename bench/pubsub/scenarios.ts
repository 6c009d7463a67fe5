/**
 * Pub/sub scenarios (group `pubsub`): one subscriber process and one publisher process per scenario; the
 * subscriber counts delivered events. Plain data (no imports), shared by run.ts, subscriber.ts, publisher.ts.
 */
export interface PubsubScenario {
  readonly name: string
  readonly description: string
  /** Needs a nats-server (started once for the group by run.ts). */
  readonly nats: boolean
  /**
   * `results`: `inflight` publishers, each awaiting its publish (its delivery results, unless fire-and-forget)
   * before the next; with a fixed `inflight` each also takes one event-loop turn per publish;
   * `credit`: fire-and-forget, at most `maxLag` events ahead of what the subscriber reported as delivered.
   */
  readonly flow: "results" | "credit"
  /** `results` flow: publishes outstanding (each a fiber publishing in a loop); default `BENCH_PUBSUB_INFLIGHT`. */
  readonly inflight?: number
}

export const topic = "bench.events"

export const pubsubScenarios: ReadonlyArray<PubsubScenario> = [
  {
    name: "raw-nats",
    description:
      "@nats-io/transport-node 3.4: `nc.publish(subject, JSON bytes)` → `nc.subscribe(subject, { callback })`, `JSON.parse` per event (baseline)",
    nats: true,
    flow: "credit"
  },
  {
    name: "moleculer-tcp",
    description:
      "Moleculer 0.15 `broker.emit(\"bench.event\", payload)` → service event handler, TCP transporter (static urls, no UDP), JSON, logger/metrics/tracing off (reference)",
    nats: false,
    flow: "credit"
  },
  {
    name: "moleculer-tcp-64",
    description:
      "same emit, 64 publishers each awaiting its `emit` promise (resolved once written to the transporter; Moleculer has no delivery result) (reference)",
    nats: false,
    flow: "results",
    inflight: 64
  },
  {
    name: "moleculer-tcp-1",
    description: "same, one publisher awaiting each `emit` (reference)",
    nats: false,
    flow: "results",
    inflight: 1
  },
  {
    name: "raw-http-64",
    description:
      "undici 7 (one keep-alive connection, pipelined) `POST` of the JSON bytes → `node:http` server, `JSON.parse`, `204`; 64 publishers each awaiting its reply: the floor of any publisher that waits for a delivery result over HTTP/1.1, one event per request (baseline)",
    nats: false,
    flow: "results",
    inflight: 64
  },
  {
    name: "raw-http-1",
    description: "same, one publisher awaiting each reply (baseline)",
    nats: false,
    flow: "results",
    inflight: 1
  },
  {
    name: "moleculer-nats",
    description: "same Moleculer emit → event handler over the NATS transporter (`nats` 2.29 client) (reference)",
    nats: true,
    flow: "credit"
  },
  {
    name: "effect-micro-http",
    description:
      "`Topic.publish` (Item Schema, JSON) over `HttpBroker.layer()`, waiting for every delivery result, 1000 publishes in flight → `Topic.subscribe` in the subscriber",
    nats: false,
    flow: "results"
  },
  {
    name: "effect-micro-http-64",
    description:
      "same, 64 concurrent publishers each waiting for its delivery result (a service publishing one event per request it handles)",
    nats: false,
    flow: "results",
    inflight: 64
  },
  {
    name: "effect-micro-http-1",
    description: "same, one publisher waiting for each delivery result before the next publish",
    nats: false,
    flow: "results",
    inflight: 1
  },
  {
    name: "effect-micro-http-ff",
    description: "same with `fireAndForget: true`",
    nats: false,
    flow: "credit"
  },
  {
    name: "effect-micro-http-ff-1",
    description:
      "fire-and-forget, one publisher awaiting each `Topic.publish` (queued, no delivery result): the same contract as `moleculer-tcp-1`",
    nats: false,
    flow: "results",
    inflight: 1
  },
  {
    name: "effect-micro-nats",
    description: "`Topic.publish` over `NatsBroker.layer({ servers })` (NATS core) → `Topic.subscribe`",
    nats: true,
    flow: "credit"
  }
]
