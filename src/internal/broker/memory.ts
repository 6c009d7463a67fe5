/**
 * The in-process broker. Each subscription owns a queue drained by one fiber (in the subscription's scope),
 * so handlers run apart from publishers, one message at a time, in publish order — as with a remote
 * subscriber. Queue groups pick members round-robin.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as Queue from "effect/Queue"
import type { Broker, DeliveryFailure, Handler, PublishOptions, SubscribeOptions, Subscription } from "../../Broker.js"
import type { Metadata } from "../../Metadata.js"
import { randomId } from "../common/text.js"
import type { LocalFailure } from "./core.js"
import { deliverLocal, deliveryFailed, normalizeHeaders, OCTET_STREAM } from "./core.js"
import { countingPublish } from "./counters.js"

interface Pending {
  readonly body: Uint8Array
  readonly contentType: string
  readonly headers: Metadata
  readonly done: Deferred.Deferred<LocalFailure | undefined>
}

interface MemorySubscription {
  readonly id: string
  readonly queue: string | undefined
  readonly inbox: Queue.Queue<Pending>
}

export const makeMemory: Effect.Effect<Broker.Service> = Effect.sync(() => {
  const topics = new Map<string, Array<MemorySubscription>>()
  const cursors = new Map<string, number>()

  const targetsOf = (topic: string): Array<MemorySubscription> => {
    const subscriptions = topics.get(topic)
    if (subscriptions === undefined) return []
    const targets: Array<MemorySubscription> = []
    const groups = new Map<string, Array<MemorySubscription>>()
    for (const subscription of subscriptions) {
      if (subscription.queue === undefined) targets.push(subscription)
      else {
        const members = groups.get(subscription.queue)
        if (members === undefined) groups.set(subscription.queue, [subscription])
        else members.push(subscription)
      }
    }
    for (const [queue, members] of groups) {
      const key = `${topic}\u0000${queue}`
      const cursor = cursors.get(key) ?? 0
      cursors.set(key, cursor + 1)
      targets.push(members[cursor % members.length]!)
    }
    return targets
  }

  const publish = (topic: string, body: Uint8Array, options?: PublishOptions) =>
    Effect.suspend(() => {
      const contentType = options?.contentType ?? OCTET_STREAM
      const headers = normalizeHeaders(options?.headers)
      const sent = targetsOf(topic).map((subscription) => {
        const done = Deferred.unsafeMake<LocalFailure | undefined>(FiberId.none)
        Queue.unsafeOffer(subscription.inbox, { body, contentType, headers, done })
        return { subscription, done }
      })
      if (options?.fireAndForget === true || sent.length === 0) return Effect.void
      const results = Effect.forEach(sent, ({ done, subscription }) =>
        Effect.map(Deferred.await(done), (failure): DeliveryFailure | undefined =>
          failure === undefined ? undefined : { subscriber: subscription.id, queue: subscription.queue, ...failure }), {
        concurrency: "unbounded"
      }).pipe(
        Effect.flatMap((all) => {
          const failures = all.filter((failure): failure is DeliveryFailure =>
            failure !== undefined
          )
          return failures.length === 0 ? Effect.void : Effect.fail(deliveryFailed(topic, failures))
        })
      )
      if (options?.timeout === undefined) {
        return results
      }
      return Effect.timeoutFail(results, {
        duration: options.timeout,
        onTimeout: () =>
          deliveryFailed(
            topic,
            sent.map(({ subscription }) => ({
              subscriber: subscription.id,
              queue: subscription.queue,
              reason: "Timeout" as const,
              detail: "no result within the publish timeout"
            }))
          )
      })
    })

  const subscribe = (topic: string, handler: Handler, options?: SubscribeOptions) =>
    Effect.gen(function*() {
      const autoAck = options?.autoAck ?? true
      const subscription: MemorySubscription = {
        id: `memory-${randomId()}`,
        queue: options?.queue,
        inbox: yield* Queue.unbounded<Pending>()
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const list = topics.get(topic)
          if (list === undefined) topics.set(topic, [subscription])
          else list.push(subscription)
        }),
        () =>
          Effect.gen(function*() {
            const list = topics.get(topic)
            if (list !== undefined) {
              const index = list.indexOf(subscription)
              if (index !== -1) list.splice(index, 1)
              if (list.length === 0) topics.delete(topic)
            }
            // Messages accepted but not handled: their publishers learn the subscriber went away.
            const left = yield* Queue.takeAll(subscription.inbox)
            for (const pending of left) {
              Deferred.unsafeDone(
                pending.done,
                Effect.succeed<LocalFailure>({ reason: "Unreachable", detail: "unsubscribed before delivery" })
              )
            }
            yield* Queue.shutdown(subscription.inbox)
          })
      )
      // The worker is forked after the release above is registered, so it is interrupted first.
      yield* Queue.take(subscription.inbox).pipe(
        Effect.flatMap((pending) =>
          Effect.flatMap(
            deliverLocal(handler, autoAck, topic, pending.body, pending.contentType, pending.headers).pipe(
              Effect.onInterrupt(() =>
                Deferred.succeed(
                  pending.done,
                  { reason: "HandlerFailed", detail: "unsubscribed while handling" } as LocalFailure
                )
              )
            ),
            (failure) => Deferred.succeed(pending.done, failure)
          )
        ),
        Effect.forever,
        Effect.forkScoped
      )
      return { id: subscription.id, topic, queue: subscription.queue } satisfies Subscription
    })

  return { name: "memory", publish: countingPublish(publish), subscribe } satisfies Broker.Service
})
