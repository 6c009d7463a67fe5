import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as net from "node:net"
import * as path from "node:path"
import * as PostgresStore from "../../src/plugins/postgres/PostgresStore.js"
import * as Store from "../../src/Store.js"
import { engine, type RunningEngine, startEngine } from "../support/engines.js"
import { engineRestartScenario, storeContract } from "../support/storeContract.js"

let postgres: RunningEngine
beforeAll(() => {
  postgres = startEngine("postgres")
})
afterAll(() => postgres?.stop())

const connection = () => ({ host: postgres.host, port: postgres.port, username: "postgres", database: "postgres" })

storeContract({
  name: "postgres",
  make: (options) => PostgresStore.make({ connection: connection(), ...options }),
  clock: "test",
  watch: true
})

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port
      server.close(() => resolve(port))
    })
  })

/**
 * Stops a Postgres started by scripts/engines.sh the way a crash does (`pg_ctl stop -m immediate`: no
 * checkpoint, WAL recovery at the next start) and starts it again on the same port and data directory
 * with the options engines.sh uses; DIR/pid is updated so the engine's own `stop()` still works.
 */
const postgresControl = (engine: RunningEngine) => {
  const bin = "/usr/lib/postgresql/15/bin"
  const data = path.join(engine.dir, "data")
  const asPostgres = (command: string) =>
    Effect.try(() =>
      execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", command], { stdio: "pipe", timeout: 30_000 })
    )
  const kill = asPostgres(`${bin}/pg_ctl -D '${data}' -m immediate stop`)
  const start = Effect.zipRight(
    asPostgres(
      `${bin}/pg_ctl -D '${data}' -l '${engine.dir}/log' -o "-c listen_addresses=127.0.0.1 -p ${engine.port} -k ${engine.dir}" -w start`
    ),
    Effect.sync(() =>
      fs.writeFileSync(
        path.join(engine.dir, "pid"),
        fs.readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]!
      )
    )
  )
  return { kill, start }
}

describe("PostgresStore specifics", () => {
  it.scopedLive("stores starting at once migrate the schema once; the migration is recorded", () =>
    Effect.gen(function*() {
      const stores = yield* Effect.all(
        Array.from({ length: 4 }, () => PostgresStore.make({ connection: connection() })),
        { concurrency: "unbounded" }
      )
      yield* stores[0]!.write({ key: "k", value: new Uint8Array([1]) }, { table: "migrated" })
      expect(yield* stores[3]!.list({ table: "migrated" })).toEqual(["k"])
      const sql = yield* PgClient.make(connection()).pipe(Effect.provide(Reactivity.layer))
      const rows = yield* sql<{ migration_id: number; name: string }>`
        SELECT migration_id, name FROM effect_micro_store_migrations ORDER BY migration_id`
      expect(rows.map((r) => [r.migration_id, r.name])).toEqual([[1, "create_store"], [2, "notify_trigger"]])
      const collation = yield* sql<{ collation_name: string }>`
        SELECT collation_name FROM information_schema.columns
        WHERE table_name = 'effect_micro_store' AND column_name = 'key'`
      expect(collation[0]!.collation_name).toBe("C")
    }))

  it.scopedLive("layerFromClient shares the application's PgClient", () =>
    Effect.gen(function*() {
      const store = yield* Store.Store
      expect(store.backend).toBe("postgres")
      expect(store.defaults.table).toBe("shared")
      yield* store.write({ key: "x", value: new Uint8Array([1]) })
      expect(yield* store.list()).toEqual(["x"])
    }).pipe(
      Effect.provide(
        PostgresStore.layerFromClient({ table: "shared" }).pipe(Layer.provide(PgClient.layer(connection())))
      )
    ))

  it.live(
    "Postgres restarting: operations fail with Unavailable in bounded time, then the same store recovers",
    () =>
      Effect.gen(function*() {
        const own = yield* engine("postgres")
        const control = postgresControl(own)
        const store = yield* PostgresStore.make({
          connection: {
            host: own.host,
            port: own.port,
            username: "postgres",
            database: "postgres",
            connectTimeout: "1 second"
          },
          watchHeartbeat: "300 millis"
        })
        yield* engineRestartScenario(store, control, { downBoundMillis: 5_000, persistent: true })
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("an unreachable Postgres fails with reason Unavailable, in bounded time", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(freePort)
      const start = Date.now()
      const error = yield* Effect.flip(Effect.scoped(PostgresStore.make({
        connection: { host: "127.0.0.1", port, username: "postgres", connectTimeout: "1 second" }
      })))
      expect(error.reason).toBe("Unavailable")
      expect(Date.now() - start).toBeLessThan(5_000)
    }))
})
