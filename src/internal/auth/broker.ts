/**
 * Auth wired into the Broker: outgoing publishes carry the publisher's bearer token, incoming messages are
 * checked against the rules for `{ type: "topic", name: <topic>, endpoint: "publish" }` before the handler runs.
 * A wrapper around any `Broker.Service`, so the brokers themselves know nothing about auth.
 */
import * as Effect from "effect/Effect"
import type { Account } from "../../Auth.js"
import { bearer, CurrentAccount, topicResource } from "../../Auth.js"
import type { Resource } from "../../AuthRules.js"
import type { Broker, Handler, PublishOptions } from "../../Broker.js"
import type { Forbidden, Unauthorized } from "../../Errors.js"
import type { Metadata } from "../../Metadata.js"
import type { ServiceIdentity } from "../../ServiceIdentity.js"

export type MessageAuthorizer = (
  metadata: Metadata,
  resource: Resource
) => Effect.Effect<Account | undefined, Unauthorized | Forbidden>

export interface WrapOptions {
  /** Attach this identity's token to publishes without an `authorization` header. Absent: publishes untouched. */
  readonly identity?: ServiceIdentity.Service | undefined
  /** Check incoming messages before the handler. Absent: handlers run unchecked. */
  readonly authorize?: MessageAuthorizer | undefined
}

const hasAuthorization = (headers: Metadata | undefined): boolean => {
  if (headers === undefined) return false
  if (headers["authorization"] !== undefined) return true
  for (const key in headers) if (key.toLowerCase() === "authorization") return true
  return false
}

export const wrapBroker = (broker: Broker.Service, options: WrapOptions): Broker.Service => {
  const { authorize, identity } = options
  const publish: Broker.Service["publish"] = identity === undefined
    ? broker.publish
    : (topic, body, publishOptions) =>
      // A caller's own `authorization` header (a user token) wins and is sent untouched.
      hasAuthorization(publishOptions?.headers)
        ? broker.publish(topic, body, publishOptions)
        : Effect.flatMap(identity.currentToken, (token) =>
          broker.publish(
            topic,
            body,
            {
              ...publishOptions,
              headers: { ...publishOptions?.headers, ...bearer(token) }
            } satisfies PublishOptions
          ))
  const subscribe: Broker.Service["subscribe"] = authorize === undefined
    ? broker.subscribe
    : (topic, handler, subscribeOptions) => {
      const resource = topicResource(topic)
      // Refused messages fail with Unauthorized / Forbidden before the handler: the broker reports them to the
      // publisher under those reasons (memory, HTTP) or logs them (NATS).
      const checked: Handler = (message) =>
        Effect.flatMap(
          authorize(message.headers, resource),
          (account) => Effect.provideService(handler(message), CurrentAccount, account)
        )
      return broker.subscribe(topic, checked, subscribeOptions)
    }
  return { name: broker.name, publish, subscribe }
}
