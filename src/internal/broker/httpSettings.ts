/**
 * The HTTP broker's options with their defaults applied, resolved once per broker and shared by its
 * publisher and subscriber sides; and the state both sides read (`BrokerState`).
 */
import * as Duration from "effect/Duration"
import type { HttpBrokerOptions } from "../../HttpBroker.js"
import type { ResolvedEjection } from "../rpc/nodeHealth.js"
import { resolveEjection } from "../rpc/nodeHealth.js"

export const defaults = {
  host: "127.0.0.1",
  port: 0,
  servicePrefix: "micro.broker.",
  registerTtl: Duration.seconds(90),
  registerInterval: Duration.seconds(30),
  timeout: Duration.seconds(10),
  maxBodySize: 16 * 1024 * 1024,
  maxBatchMessages: 1000,
  maxBatchBytes: 1024 * 1024,
  maxInFlight: 4,
  maxPending: 50_000,
  headersTimeout: Duration.seconds(10),
  bodyTimeout: Duration.seconds(10),
  handlerTimeout: Duration.seconds(30),
  keepAliveTimeout: Duration.seconds(5),
  maxConnections: 10_000,
  connectTimeout: Duration.seconds(5)
} as const

/** `HttpBrokerOptions` resolved (documented there, in HttpBroker.ts). */
export interface Settings {
  readonly host: string
  readonly port: number
  readonly advertise: string | undefined
  readonly servicePrefix: string
  readonly registerTtl: Duration.DurationInput
  readonly registerInterval: Duration.DurationInput
  /** `timeout`: bounds one batch POST. */
  readonly publishTimeout: Duration.Duration
  readonly maxBodySize: number
  readonly maxBatchMessages: number
  readonly maxBatchBytes: number
  readonly maxInFlight: number
  readonly maxPending: number
  readonly headersTimeout: Duration.Duration
  readonly bodyTimeout: Duration.Duration
  readonly bodyTimeoutMillis: number
  readonly handlerTimeout: Duration.Duration
  readonly keepAliveTimeout: Duration.Duration
  readonly maxConnections: number
  readonly connectTimeout: Duration.Duration
  readonly ejection: ResolvedEjection
}

export const resolveSettings = (options: HttpBrokerOptions | undefined): Settings => {
  const bodyTimeout = Duration.decode(options?.bodyTimeout ?? defaults.bodyTimeout)
  return {
    host: options?.host ?? defaults.host,
    port: options?.port ?? defaults.port,
    advertise: options?.advertise,
    servicePrefix: options?.servicePrefix ?? defaults.servicePrefix,
    registerTtl: options?.registerTtl ?? defaults.registerTtl,
    registerInterval: options?.registerInterval ?? defaults.registerInterval,
    publishTimeout: Duration.decode(options?.timeout ?? defaults.timeout),
    maxBodySize: options?.maxBodySize ?? defaults.maxBodySize,
    maxBatchMessages: options?.maxBatchMessages ?? defaults.maxBatchMessages,
    maxBatchBytes: options?.maxBatchBytes ?? defaults.maxBatchBytes,
    maxInFlight: Math.max(1, options?.maxInFlight ?? defaults.maxInFlight),
    maxPending: options?.maxPending ?? defaults.maxPending,
    headersTimeout: Duration.decode(options?.headersTimeout ?? defaults.headersTimeout),
    bodyTimeout,
    bodyTimeoutMillis: Duration.toMillis(bodyTimeout),
    handlerTimeout: Duration.decode(options?.handlerTimeout ?? defaults.handlerTimeout),
    keepAliveTimeout: Duration.decode(options?.keepAliveTimeout ?? defaults.keepAliveTimeout),
    maxConnections: options?.maxConnections ?? defaults.maxConnections,
    connectTimeout: Duration.decode(options?.connectTimeout ?? defaults.connectTimeout),
    ejection: resolveEjection(options?.ejection)
  }
}

/** What both sides of one broker read: `draining` is set when the broker's layer closes. */
export interface BrokerState {
  draining: boolean
}
