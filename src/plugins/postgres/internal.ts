/**
 * The Postgres store: the shared SQL backend (src/internal/store/sql.ts) with the `"pg"` dialect, plus
 * `watch` through LISTEN/NOTIFY: a row trigger (installed by the schema migration) notifies
 * `effect_micro_store` with {op, database, table, key} on every insert, update and delete; the expiry
 * sweep marks its deletes so they reach watchers as `expire`.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Backend, Namespace } from "../../internal/store/common.js"
import { fromBackend, resolveSettings, unavailable } from "../../internal/store/common.js"
import { CHANNEL, defaultSweepInterval, makeBackend, migrate, parseNotification } from "../../internal/store/sql.js"
import type { Change, Store, StoreError, StoreOptions } from "../../Store.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PostgresStoreOptions extends StoreOptions {
  /**
   * How to reach Postgres (the `@effect/sql-pg` client options: url, host, port, database, username,
   * password, ssl, pool sizes ...). `connection.database` is the Postgres database; the store's own
   * `database`/`table` namespaces are columns inside one table.
   */
  readonly connection?: PgClient.PgClientConfig | undefined
  /** How often expired rows are deleted (and `expire` changes notified). Default 1 minute. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /**
   * How often a `watch` stream checks that its LISTEN connection still delivers notifications (it
   * notifies itself and waits as long for the echo). A lost connection fails the stream with reason
   * Unavailable within about twice this time. Default 5 seconds.
   */
  readonly watchHeartbeat?: Duration.DurationInput | undefined
}

/**
 * LISTEN through the client's shared listen connection. `@effect/sql-pg` keeps that connection silently
 * dead when Postgres goes away (its errors are swallowed), so the stream checks it: it notifies its own
 * channel with a token (through the pool) and expects the echo within `heartbeat`. No echo, or a failed
 * notify, fails the stream with reason Unavailable: changes made meanwhile are lost, so the consumer must
 * learn it (retry the stream and re-read). The first echo also tells that the subscription is in place,
 * so the stream emits nothing before it (and fails with Unavailable if Postgres is down at the start).
 */
const watch = (
  sql: PgClient.PgClient,
  ns: Namespace,
  prefix: string,
  heartbeat: Duration.Duration
): Stream.Stream<Change, StoreError> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    const mailbox = yield* Mailbox.make<Change, StoreError>()
    const ping = JSON.stringify({ op: "ping", k: crypto.randomUUID() })
    const echoes = yield* Queue.sliding<void>(1)
    const lost = (cause: unknown) =>
      mailbox.fail(unavailable("postgres", "watch connection lost (changes may have been missed)", cause))

    yield* sql.listen(CHANNEL).pipe(
      Stream.runForEach((payload) => {
        if (payload === ping) return Queue.offer(echoes, undefined)
        const change = parseNotification(payload)
        return change !== undefined && change.database === ns.database && change.table === ns.table &&
            change.key.startsWith(prefix)
          ? mailbox.offer(change)
          : Effect.void
      }),
      Effect.matchCauseEffect({ onFailure: (cause) => lost(Cause.squash(cause)), onSuccess: () => lost(undefined) }),
      Effect.forkScoped
    )

    const notify = Effect.mapError(
      sql`SELECT pg_notify(${CHANNEL}, ${ping})`,
      (cause) => unavailable("postgres", "watch heartbeat failed (changes may have been missed)", cause)
    )
    const noEcho = unavailable("postgres", "watch connection lost (no heartbeat echo)", undefined)
    /** Notifies our token and waits `within` for it to come back: true if it did. */
    const echo = (within: Duration.Duration) =>
      Effect.zipRight(
        Effect.zipRight(Queue.takeAll(echoes), notify),
        Effect.map(Effect.timeoutOption(Queue.take(echoes), within), Option.isSome)
      )
    // Subscribed once our own notification comes back; LISTEN runs asynchronously, so ask a few times.
    const subscribed = yield* echo(Duration.millis(200)).pipe(Effect.repeat({ until: (ok) => ok, times: 25 }))
    if (!subscribed) return yield* noEcho
    yield* echo(heartbeat).pipe(
      Effect.flatMap((ok) => ok ? Effect.void : Effect.fail(noEcho)),
      Effect.delay(heartbeat),
      Effect.forever,
      Effect.catchAll((error) => mailbox.fail(error)),
      Effect.forkScoped
    )
    return Mailbox.toStream(mailbox)
  }))

/** A store over an existing PgClient; runs the schema migration first. */
export const fromClient = (
  options: Omit<PostgresStoreOptions, "connection">
): Effect.Effect<Store.Service, StoreError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const settings = yield* resolveSettings(options)
    const sql = yield* PgClient.PgClient
    // Two processes starting at once can race on creating the migrations table: retry (at most twice).
    yield* migrate(sql, "pg").pipe(
      Effect.retry({ times: 2 }),
      Effect.mapError((cause) => unavailable("postgres", "schema migration failed", cause))
    )
    const base = yield* makeBackend(sql, {
      dialect: "pg",
      name: "postgres",
      sweepInterval: defaultSweepInterval(options.sweepInterval)
    })
    const heartbeat = options.watchHeartbeat === undefined
      ? Duration.seconds(5)
      : Duration.decode(options.watchHeartbeat)
    const backend: Backend = {
      ...base,
      watch: (ns, prefix) => watch(sql, ns, prefix, heartbeat)
    }
    return fromBackend(backend, settings)
  })

/** Connects (its own pool, closed with the scope) and builds the store. */
export const make = (options: PostgresStoreOptions): Effect.Effect<Store.Service, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* PgClient.make({
      connectTimeout: Duration.seconds(5),
      applicationName: "effect-micro-store",
      ...options.connection
    }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.mapError((cause) => unavailable("postgres", "cannot connect", cause))
    )
    return yield* Effect.provideService(fromClient(options), PgClient.PgClient, client)
  })
