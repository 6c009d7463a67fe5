/**
 * The Postgres store's backend over `@effect/sql` (the embedded SQLite store talks to better-sqlite3 directly,
 * off the Effect SQL client, for its lock handling: see internal/store/sqlite.ts).
 *
 * One table holds every namespace: (db_name, table_name, key) is the primary key, so databases and tables
 * are isolated by construction and no identifier is ever built from user input. Time comes from `Clock`
 * (expires_at is epoch millis), so `TestClock` drives expiry here too; expired rows are filtered out of
 * every query and deleted by a periodic sweep.
 *
 * Keys sort in code point order: the column is `COLLATE "C"` (byte order of UTF-8). Prefix filters are the
 * range [prefix, upperBound(prefix)), answered from the primary key index.
 */
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Backend, Namespace, Query } from "../../internal/store/common.js"
import {
  decodeMetadata,
  defaultSweepInterval,
  encodeMetadata,
  expiryOf,
  makeRecord,
  MIGRATIONS_TABLE,
  notFound,
  TABLE,
  toBuffer,
  toUint8Array,
  unavailable,
  unsupported,
  upperBound
} from "../../internal/store/common.js"
import type { Change, StoreError } from "../../Store.js"

export { MIGRATIONS_TABLE, TABLE }
/** The channel the Postgres trigger notifies on. */
export const CHANNEL = "effect_micro_store"

// `LIMIT ALL` cannot be a bound parameter: this stands for "no limit" when an offset is given.
const NO_LIMIT = Number.MAX_SAFE_INTEGER

const createTable = (sql: SqlClient.SqlClient) =>
  sql.unsafe(`CREATE TABLE IF NOT EXISTS ${TABLE} (
  db_name text NOT NULL,
  table_name text NOT NULL,
  key text COLLATE "C" NOT NULL,
  value bytea NOT NULL,
  metadata text NOT NULL DEFAULT '{}',
  expires_at bigint,
  PRIMARY KEY (db_name, table_name, key)
)`)

// Every change to a row notifies CHANNEL with {op, d, t, k}. The value is not in the payload (NOTIFY
// payloads are limited to 8000 bytes); watchers read the key. A sweep marks its deletes as expiries
// through a transaction-local setting.
const createNotifyTrigger = (sql: SqlClient.SqlClient) =>
  Effect.zipRight(
    sql.unsafe(`CREATE OR REPLACE FUNCTION ${TABLE}_notify() RETURNS trigger AS $$
DECLARE
  op text;
  d text;
  t text;
  k text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    op := CASE WHEN current_setting('effect_micro.reason', true) = 'expire' THEN 'expire' ELSE 'delete' END;
    d := OLD.db_name; t := OLD.table_name; k := OLD.key;
  ELSE
    op := 'write';
    d := NEW.db_name; t := NEW.table_name; k := NEW.key;
  END IF;
  PERFORM pg_notify('${CHANNEL}', json_build_object('op', op, 'd', d, 't', t, 'k', k)::text);
  RETURN NULL;
END
$$ LANGUAGE plpgsql`),
    sql.unsafe(`CREATE TRIGGER ${TABLE}_notify AFTER INSERT OR UPDATE OR DELETE ON ${TABLE}
FOR EACH ROW EXECUTE FUNCTION ${TABLE}_notify()`)
  )

/** Creates or upgrades the schema (idempotent; Postgres serialises concurrent runs with a table lock). */
export const migrate = (sql: SqlClient.SqlClient) => {
  const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
    "1_create_store": Effect.asVoid(
      Effect.zipRight(
        createTable(sql),
        sql.unsafe(
          `CREATE INDEX IF NOT EXISTS ${TABLE}_expiry ON ${TABLE} (expires_at) WHERE expires_at IS NOT NULL`
        )
      )
    ),
    "2_notify_trigger": Effect.asVoid(createNotifyTrigger(sql))
  }
  return Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE }).pipe(
    Effect.provideService(SqlClient.SqlClient, sql)
  )
}

interface Row {
  readonly key: string
  readonly value: Uint8Array
  readonly metadata: string
  readonly expires_at: number | string | bigint | null
}

const toMillis = (value: number | string | bigint | null): number | undefined =>
  value === null ? undefined : Number(value)

export interface SqlBackendOptions {
  readonly name: string
  readonly sweepInterval: Duration.Duration
}

/** Builds the backend and forks its expiry sweep in the current scope. */
export const makeBackend = (
  sql: SqlClient.SqlClient,
  options: SqlBackendOptions
): Effect.Effect<Backend, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { name } = options
    const failed = (what: string) => (cause: SqlError): StoreError => unavailable(name, `${what} failed`, cause)

    const toRecord = (row: Row, now: number) =>
      makeRecord(
        row.key,
        toUint8Array(row.value),
        decodeMetadata(row.metadata),
        expiryOf(toMillis(row.expires_at), now)
      )

    // The WHERE clause of a range query: namespace, live, prefix range, suffix.
    const where = (query: Query, now: number) => {
      const clauses = [
        sql`db_name = ${query.ns.database}`,
        sql`table_name = ${query.ns.table}`,
        sql`(expires_at IS NULL OR expires_at > ${now})`
      ]
      if (query.prefix !== undefined) {
        clauses.push(sql`key >= ${query.prefix}`)
        const upper = upperBound(query.prefix)
        if (upper !== undefined) clauses.push(sql`key < ${upper}`)
      }
      if (query.suffix !== undefined) {
        // length() counts characters (code points) in both engines.
        const length = Array.from(query.suffix).length
        clauses.push(sql`length(key) >= ${length}`)
        clauses.push(sql`substr(key, length(key) - ${length - 1}) = ${query.suffix}`)
      }
      return sql.and(clauses)
    }

    const sweep = Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const remove = sql`DELETE FROM ${sql(TABLE)} WHERE expires_at IS NOT NULL AND expires_at <= ${now}`
      return sql.withTransaction(Effect.zipRight(sql`SELECT set_config('effect_micro.reason', 'expire', true)`, remove))
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logWarning(`${name} store: expiry sweep failed`, cause))
    )
    yield* sweep.pipe(Effect.repeat(Schedule.spaced(options.sweepInterval)), Effect.forkScoped)

    const backend: Backend = {
      name,
      get: (ns: Namespace, key: string) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql<Row>`SELECT key, value, metadata, expires_at FROM ${sql(TABLE)}
            WHERE db_name = ${ns.database} AND table_name = ${ns.table} AND key = ${key}
            AND (expires_at IS NULL OR expires_at > ${now})`.pipe(
            Effect.mapError(failed("read")),
            Effect.flatMap((rows) =>
              rows.length === 0 ? Effect.fail(notFound(ns, key)) : Effect.succeed([toRecord(rows[0]!, now)])
            )
          )),
      query: (query) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql<Row>`SELECT key, value, metadata, expires_at FROM ${sql(TABLE)} WHERE ${where(query, now)}
            ORDER BY key LIMIT ${query.limit ?? NO_LIMIT} OFFSET ${query.offset}`.pipe(
            Effect.map((rows) =>
              rows.map((row) =>
                toRecord(row, now)
              )
            ),
            Effect.mapError(failed("read"))
          )),
      keys: (query) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql<{ readonly key: string }>`SELECT key FROM ${sql(TABLE)} WHERE ${where(query, now)}
            ORDER BY key LIMIT ${query.limit ?? NO_LIMIT} OFFSET ${query.offset}`.pipe(
            Effect.map((rows) =>
              rows.map((row) =>
                row.key
              )
            ),
            Effect.mapError(failed("list"))
          )),
      put: (ns, key, value, metadata, ttlMillis) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql`INSERT INTO ${sql(TABLE)} (db_name, table_name, key, value, metadata, expires_at)
            VALUES (${ns.database}, ${ns.table}, ${key}, ${toBuffer(value)}, ${encodeMetadata(metadata)}, ${
            ttlMillis === undefined ? null : now + ttlMillis
          })
            ON CONFLICT (db_name, table_name, key) DO UPDATE
            SET value = excluded.value, metadata = excluded.metadata, expires_at = excluded.expires_at`.pipe(
            Effect.asVoid,
            Effect.mapError(failed("write"))
          )),
      // Rows that already expired are left to the sweep (which reports them as expiries to watchers).
      remove: (ns, key) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          sql`DELETE FROM ${sql(TABLE)}
            WHERE db_name = ${ns.database} AND table_name = ${ns.table} AND key = ${key}
            AND (expires_at IS NULL OR expires_at > ${now})`.pipe(
            Effect.asVoid,
            Effect.mapError(failed("delete"))
          )),
      watch: () =>
        Stream.fail(unsupported(`${name} store cannot watch changes`))
    }
    return backend
  })

/** Parses a trigger notification; undefined for anything malformed. */
export const parseNotification = (payload: string): Change | undefined => {
  try {
    const parsed = JSON.parse(payload) as { op?: unknown; d?: unknown; t?: unknown; k?: unknown }
    if (
      (parsed.op === "write" || parsed.op === "delete" || parsed.op === "expire") &&
      typeof parsed.d === "string" && typeof parsed.t === "string" && typeof parsed.k === "string"
    ) {
      return { type: parsed.op, database: parsed.d, table: parsed.t, key: parsed.k }
    }
  } catch {
    // fall through
  }
  return undefined
}

export { defaultSweepInterval }
