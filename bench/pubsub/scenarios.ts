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
   * `results`: the publisher keeps `inflight` publishes outstanding and each waits for its delivery result;
   * `credit`: fire-and-forget, at most `maxLag` events ahead of what the subscriber reported as delivered.
   */
  readonly flow: "results" | "credit"
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
    name: "effect-micro-http-ff",
    description: "same with `fireAndForget: true`",
    nats: false,
    flow: "credit"
  },
  {
    name: "effect-micro-nats",
    description: "`Topic.publish` over `NatsBroker.layer({ servers })` (NATS core) → `Topic.subscribe`",
    nats: true,
    flow: "credit"
  }
]
