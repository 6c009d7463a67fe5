/**
 * The NATS core broker. Topics are subjects; queue groups are NATS queue subscriptions. One connection per
 * broker (reconnecting forever by default; subscriptions are re-established by the client after a
 * reconnect, publishes made while disconnected are buffered by the client up to `reconnectBufSize`).
 *
 * Received messages are handled one at a time per subscription, in arrival order: the NATS callback pushes
 * into a per-subscription array and one fiber drains it (a fiber per burst, not per message).
 */
import type { Msg, MsgHdrs, NatsConnection, Subscription as NatsSubscription } from "@nats-io/transport-node"
import { connect, headers as makeHeaders } from "@nats-io/transport-node"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Runtime from "effect/Runtime"
import type * as Scope from "effect/Scope"
import type { Broker, Handler, PublishOptions, SubscribeOptions, Subscription } from "../../Broker.js"
import { BrokerError } from "../../Broker.js"
import type { LocalFailure } from "../../internal/broker/core.js"
import { deliverLocal, failureOfCause, OCTET_STREAM } from "../../internal/broker/core.js"
import { countingPublish } from "../../internal/broker/counters.js"
import { randomId } from "../../internal/common/text.js"
import type { Metadata } from "../../Metadata.js"
import type { JetStreamOptions, NatsBrokerOptions } from "./NatsBroker.js"

const CONTENT_TYPE = "content-type"
const textEncoder = new TextEncoder()
const textDecoder = new TextDecoder()

const unavailable = (topic: string, detail: string, cause?: unknown) =>
  new BrokerError({ reason: "Unavailable", topic, detail, failures: [], cause })

interface ReadHeaders {
  readonly contentType: string
  readonly headers: Metadata
}

/**
 * The last header block seen (raw bytes) and what it decoded to: a publisher's messages usually carry the
 * same headers (typed topics: only the content-type), so they are decoded once, not per message. Reads the
 * client's MsgImpl internals (`_msg.hdr`, `_rdata`) when present, else decodes as usual.
 */
interface HeaderCache {
  raw: Uint8Array | undefined
  result: ReadHeaders | undefined
}

const readHeadersCached = (msg: Msg, cache: HeaderCache): ReadHeaders => {
  const impl = msg as unknown as { readonly _msg?: { readonly hdr?: unknown }; readonly _rdata?: unknown }
  const hdr = impl._msg?.hdr
  const data = impl._rdata
  if (typeof hdr !== "number" || !(data instanceof Uint8Array) || hdr > data.length) return readHeaders(msg)
  if (hdr <= 0) return noHeaders
  const raw = cache.raw
  if (raw !== undefined && raw.length === hdr && cache.result !== undefined) {
    let same = true
    for (let i = 0; i < hdr; i++) {
      if (raw[i] !== data[i]) {
        same = false
        break
      }
    }
    if (same) return cache.result
  }
  const result = readHeaders(msg)
  if (hdr <= 1024) {
    cache.raw = data.slice(0, hdr)
    cache.result = result
  }
  return result
}

const readHeaders = (msg: Msg): ReadHeaders => {
  const h = msg.headers
  if (h === undefined) return { contentType: OCTET_STREAM, headers: empty }
  let contentType = OCTET_STREAM
  const out: Record<string, string> = {}
  for (const key of h.keys()) {
    const lower = key.toLowerCase()
    if (lower === CONTENT_TYPE) contentType = h.get(key)
    else out[lower] = h.get(key)
  }
  return { contentType, headers: out }
}
const empty: Metadata = Object.freeze({})
const noHeaders: ReadHeaders = { contentType: OCTET_STREAM, headers: empty }

const hasKeys = (headers: Metadata): boolean => {
  for (const _ in headers) return true
  return false
}

/**
 * Publish options carrying only a content-type header, built once per content-type: the headers are never
 * modified after this and their wire encoding is computed once (the client encodes headers on every publish).
 */
const contentTypeCache = new Map<string, { headers: MsgHdrs }>()
const contentTypeOptions = (contentType: string): { headers: MsgHdrs } => {
  let options = contentTypeCache.get(contentType)
  if (options === undefined) {
    const h = makeHeaders()
    h.set(CONTENT_TYPE, contentType)
    // `encode` is the client's (MsgHdrsImpl), not part of the MsgHdrs type.
    const impl = h as unknown as { encode?: () => Uint8Array }
    if (typeof impl.encode === "function") {
      const encoded = impl.encode()
      impl.encode = () => encoded
    }
    options = { headers: h }
    if (contentTypeCache.size < 64) contentTypeCache.set(contentType, options)
  }
  return options
}

export const make = (options?: NatsBrokerOptions): Effect.Effect<Broker.Service, BrokerError, Scope.Scope> =>
  Effect.gen(function*() {
    const jetstream: JetStreamOptions | undefined = options?.jetstream === true
      ? {}
      : options?.jetstream === false
      ? undefined
      : options?.jetstream
    const prefix = options?.subjectPrefix ?? (jetstream !== undefined ? "micro.events." : "")
    if (jetstream !== undefined && prefix === "") {
      return yield* Effect.fail(unavailable("", "JetStream mode needs a subjectPrefix (the stream holds <prefix>>)"))
    }
    const streamName = jetstream?.stream ?? "MICRO"
    const ackWaitNanos = Duration.toMillis(Duration.decode(jetstream?.ackWait ?? "30 seconds")) * 1_000_000
    const maxDeliver = jetstream?.maxDeliver ?? 10
    const publishTimeoutMillis = Duration.toMillis(Duration.decode(jetstream?.publishTimeout ?? "5 seconds"))
    const maxPending = options?.maxPending ?? 100_000
    const servers = options?.servers ?? "127.0.0.1:4222"
    const runtime = yield* Effect.runtime<never>()
    const runFork = Runtime.runFork(runtime)

    const nc: NatsConnection = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          connect({
            servers: typeof servers === "string" ? servers : [...servers],
            timeout: Duration.toMillis(Duration.decode(options?.connectTimeout ?? "5 seconds")),
            reconnect: true,
            maxReconnectAttempts: options?.maxReconnectAttempts ?? -1,
            reconnectTimeWait: Duration.toMillis(Duration.decode(options?.reconnectTimeWait ?? "250 millis")),
            ...options?.connection
          }),
        catch: (cause) => unavailable("", `could not connect to NATS at ${String(servers)}: ${String(cause)}`, cause)
      }),
      (nc) =>
        Effect.promise(() => nc.drain().catch(() => nc.close())).pipe(
          Effect.timeoutOption("5 seconds"),
          Effect.zipRight(Effect.promise(() => nc.close().catch(() => undefined)))
        )
    )

    // Connection state changes are logged (and visible to tests through the log).
    yield* Effect.forkScoped(Effect.promise(async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect" || status.type === "reconnect" || status.type === "reconnecting") {
          if (status.type !== "reconnecting") {
            runFork(Effect.logInfo(`nats ${status.type}`, String((status as { server?: string }).server ?? "")))
          }
        }
      }
    }))

    /** A JetStream API request ($JS.API.…): JSON in, JSON out, `error` in the reply becomes a failure. */
    const jsApi = (subject: string, request: unknown, topic = "") =>
      Effect.tryPromise({
        try: () => nc.request(`$JS.API.${subject}`, textEncoder.encode(JSON.stringify(request)), { timeout: 5000 }),
        catch: (cause) => unavailable(topic, `JetStream ${subject}: ${String(cause)}`, cause)
      }).pipe(
        Effect.flatMap((msg) => {
          const reply = JSON.parse(textDecoder.decode(msg.data)) as {
            error?: { code: number; err_code?: number; description: string }
          }
          return reply.error === undefined
            ? Effect.succeed(reply)
            : Effect.fail(
              new BrokerError({
                reason: "Unavailable",
                topic,
                detail: `JetStream ${subject}: ${reply.error.description} (${
                  reply.error.err_code ?? reply.error.code
                })`,
                failures: [],
                cause: reply.error
              })
            )
        })
      )

    if (jetstream !== undefined) {
      // Create the stream, or accept the existing one (err_code 10058: name in use).
      yield* jsApi(`STREAM.CREATE.${streamName}`, {
        name: streamName,
        subjects: [`${prefix}>`],
        storage: "file",
        retention: "limits"
      }).pipe(
        Effect.catchIf(
          (error) => (error.cause as { err_code?: number } | undefined)?.err_code === 10058,
          () => Effect.void
        )
      )
    }

    const publishJetStream = (topic: string, body: Uint8Array, h: MsgHdrs | undefined) =>
      Effect.tryPromise({
        try: () =>
          nc.request(prefix + topic, body, {
            timeout: publishTimeoutMillis,
            ...(h === undefined ? {} : { headers: h })
          }),
        catch: (cause) =>
          new BrokerError({
            reason: String(cause).includes("TIMEOUT") || String(cause).toLowerCase().includes("timeout")
              ? "Timeout"
              : "Unavailable",
            topic,
            detail: `JetStream publish not acknowledged: ${String(cause)}`,
            failures: [],
            cause
          })
      }).pipe(
        Effect.flatMap((msg) => {
          const ack = JSON.parse(textDecoder.decode(msg.data)) as { error?: { description: string }; seq?: number }
          return ack.error === undefined
            ? Effect.void
            : Effect.fail(unavailable(topic, `JetStream publish rejected: ${ack.error.description}`, ack.error))
        })
      )

    const publish = (topic: string, body: Uint8Array, publishOptions?: PublishOptions) =>
      Effect.suspend(() => {
        const contentType = publishOptions?.contentType
        const given = publishOptions?.headers
        const typed = contentType !== undefined && contentType !== OCTET_STREAM
        let h: MsgHdrs | undefined
        let natsOptions: { headers: MsgHdrs } | undefined
        if (given !== undefined && hasKeys(given)) {
          h = makeHeaders()
          if (typed) h.set(CONTENT_TYPE, contentType)
          for (const key in given) h.set(key.toLowerCase(), given[key]!)
          natsOptions = { headers: h }
        } else if (typed) {
          // Content-type only (typed topics): headers built and encoded once per content-type.
          natsOptions = contentTypeOptions(contentType)
          h = natsOptions.headers
        }
        if (jetstream !== undefined && publishOptions?.fireAndForget !== true) return publishJetStream(topic, body, h)
        try {
          nc.publish(prefix + topic, body, natsOptions)
          return Effect.void
        } catch (cause) {
          return Effect.fail(
            nc.isClosed()
              ? new BrokerError({ reason: "Closed", topic, detail: "NATS connection closed", failures: [], cause })
              : unavailable(topic, `publish failed: ${String(cause)}`, cause)
          )
        }
      })

    const subscribe = (topic: string, handler: Handler, subscribeOptions?: SubscribeOptions) =>
      Effect.gen(function*() {
        const autoAck = subscribeOptions?.autoAck ?? true
        const queue = subscribeOptions?.queue
        // Handlers run in the subscribing fiber's runtime (its context), set once per fiber.
        const runForkSubscriber = Runtime.runFork(yield* Effect.runtime<never>())
        let pending: Array<Msg> = []
        let draining: Fiber.RuntimeFiber<void> | undefined
        let scheduled = false
        let dropped = 0
        let closed = false
        const headerCache: HeaderCache = { raw: undefined, result: undefined }

        const settle = (msg: Msg, failure: LocalFailure | undefined): Effect.Effect<void> => {
          if (jetstream !== undefined && msg.reply !== undefined && msg.reply !== "") {
            // Ack: done. Rejected (will never decode) or refused by auth (its token will not change):
            // terminate, no redelivery. Otherwise: redeliver.
            const final = failure !== undefined &&
              (failure.reason === "Rejected" || failure.reason === "Unauthorized" || failure.reason === "Forbidden")
            msg.respond(textEncoder.encode(failure === undefined ? "+ACK" : final ? "+TERM" : "-NAK"))
          }
          return failure === undefined
            ? Effect.void
            : Effect.logWarning(`nats subscriber ${topic}: ${failure.reason}: ${failure.detail}`)
        }
        const handleOne = (msg: Msg): Effect.Effect<void> => {
          const { contentType, headers } = readHeadersCached(msg, headerCache)
          if (!autoAck) {
            return Effect.flatMap(deliverLocal(handler, false, topic, msg.data, contentType, headers), (failure) =>
              settle(msg, failure))
          }
          // Hot path (autoAck): one match around the handler, no intermediate result.
          let effect: Effect.Effect<void, unknown>
          try {
            effect = handler({ topic, body: msg.data, contentType, headers, ack: Effect.void })
          } catch (defect) {
            effect = Effect.die(defect)
          }
          return Effect.matchCauseEffect(effect, {
            onFailure: (cause) =>
              settle(msg, failureOfCause(cause)),
            onSuccess: () => settle(msg, undefined)
          })
        }

        // JetStream: a push consumer delivering to `deliverSubject` (a queue group shares one durable consumer).
        let deliverSubject = prefix + topic
        if (jetstream !== undefined) {
          const durable = queue === undefined ? undefined : `${queue}-${topic}`.replace(/[^A-Za-z0-9_-]/g, "_")
          deliverSubject = durable === undefined
            ? `_INBOX.micro.${randomId()}`
            : `_micro_deliver.${streamName}.${durable}`
          const config = {
            ...(durable !== undefined ? { durable_name: durable, deliver_group: queue } : {}),
            deliver_subject: deliverSubject,
            deliver_policy: "new",
            ack_policy: "explicit",
            ack_wait: ackWaitNanos,
            max_deliver: maxDeliver,
            filter_subject: prefix + topic
          }
          yield* jsApi(
            durable === undefined
              ? `CONSUMER.CREATE.${streamName}`
              : `CONSUMER.DURABLE.CREATE.${streamName}.${durable}`,
            { stream_name: streamName, config },
            topic
          )
        }
        // Drains until empty; a new burst starts a new fiber.
        const drain: Effect.Effect<void> = Effect.suspend(() => {
          const batch = pending
          pending = []
          return Effect.forEach(batch, handleOne, { discard: true }).pipe(
            Effect.zipRight(Effect.suspend(() => pending.length > 0 && !closed ? drain : Effect.void))
          )
        })
        // Started on a microtask, not inside the NATS callback: the client delivers every message of a socket
        // read synchronously, so they are all queued first and one fiber handles the burst (a fiber started
        // in the callback would run at once and handle one message each).
        const startDrain = () => {
          scheduled = false
          if (closed || pending.length === 0) return
          draining = runForkSubscriber(drain)
          draining.addObserver(() => {
            draining = undefined
            if (pending.length > 0 && !closed) scheduleDrain()
          })
        }
        const scheduleDrain = () => {
          if (scheduled) return
          scheduled = true
          queueMicrotask(startDrain)
        }

        const sub: NatsSubscription = yield* Effect.acquireRelease(
          Effect.try({
            try: () =>
              nc.subscribe(deliverSubject, {
                ...(queue !== undefined ? { queue } : {}),
                callback: (error, msg) => {
                  if (error !== null || closed) return
                  if (pending.length >= maxPending) {
                    if (dropped++ % 10_000 === 0) {
                      runFork(
                        Effect.logWarning(
                          `nats subscriber ${topic}: ${dropped} message(s) dropped (maxPending ${maxPending})`
                        )
                      )
                    }
                    return
                  }
                  pending.push(msg)
                  if (draining === undefined) scheduleDrain()
                }
              }),
            catch: (cause) => unavailable(topic, `subscribe failed: ${String(cause)}`, cause)
          }),
          (sub) =>
            Effect.suspend(() => {
              closed = true
              pending = []
              try {
                sub.unsubscribe()
              } catch {
                // connection already closed
              }
              return draining === undefined ? Effect.void : Fiber.interrupt(draining)
            })
        )
        // The subscription is known to the server once flushed: a publish after this returns reaches it.
        yield* Effect.tryPromise({
          try: () => nc.flush(),
          catch: (cause) => unavailable(topic, `subscribe not confirmed by the server: ${String(cause)}`, cause)
        }).pipe(Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => unavailable(topic, "subscribe not confirmed within 5 s")
        }))
        return { id: `nats-${sub.getID()}-${randomId()}`, topic, queue } satisfies Subscription
      })

    return { name: "nats", publish: countingPublish(publish), subscribe } satisfies Broker.Service
  })
