/**
 * The store in a few lines: typed tables, prefix listing with paging, TTLs, and state that survives a
 * restart. Run it twice: the visit counter keeps counting because the default store is on disk.
 *
 *   npx tsx examples/store/main.ts                       # embedded SQLite (default), file in $TMPDIR
 *   STORE_FILE=./my.db npx tsx examples/store/main.ts    # choose the file
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/store/main.ts
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres npx tsx examples/store/main.ts
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as os from "node:os"
import * as path from "node:path"
import * as Codec from "../../src/Codec.js"
import * as Store from "../../src/Store.js"

class User extends Schema.Class<User>("User")({
  name: Schema.String,
  email: Schema.String,
  joined: Schema.DateFromString
}) {}

const program = Effect.gen(function*() {
  const store = yield* Store.Store
  console.log(`backend: ${store.backend}`)

  // A table bound to a Schema: values are encoded with the JSON codec, decoded back into User.
  const users = yield* Store.table(User, { table: "users" })
  yield* users.set("ada", new User({ name: "Ada Lovelace", email: "ada@example.com", joined: new Date("1843-07-01") }))
  yield* users.set("alan", new User({ name: "Alan Turing", email: "alan@example.com", joined: new Date("1936-11-12") }))
  yield* users.set(
    "grace",
    new User({ name: "Grace Hopper", email: "grace@example.com", joined: new Date("1952-05-01") })
  )

  const ada = yield* users.get("ada")
  console.log(`users.get("ada") -> ${ada.name}, joined ${ada.joined.getUTCFullYear()}`)
  const nobody = yield* users.getOption("bob")
  console.log(`users.getOption("bob") -> ${Option.isNone(nobody) ? "none" : "some"}`)
  const missing = yield* Effect.either(users.get("bob"))
  if (missing._tag === "Left") console.log(`users.get("bob") fails with StoreError reason ${missing.left.reason}`)

  // Ordered by key; filters first, then offset/limit.
  console.log(`keys starting with "a": ${(yield* users.list({ prefix: "a" })).join(", ")}`)
  console.log(`second page of size 1: ${(yield* users.list({ offset: 1, limit: 1 })).join(", ")}`)

  // Raw records: bytes + metadata, with a TTL.
  yield* store.write(
    { key: "session/ada", value: new TextEncoder().encode("token-123"), metadata: { user: "ada" } },
    { table: "sessions", ttl: "30 minutes" }
  )
  const [session] = yield* store.read("session/", { table: "sessions", prefix: true })
  console.log(
    `${session!.key} (user ${session!.metadata.user}) expires in ${
      Math.round(Duration.toMinutes(session!.expiry!))
    } minutes`
  )

  // Values are bounded by the layer's `maxValueSize` (default 16 MiB), checked before the backend.
  const huge = yield* Effect.either(
    store.write({ key: "blob", value: new Uint8Array(17 * 1024 * 1024) }, { table: "blobs" })
  )
  if (huge._tag === "Left") console.log(`a 17 MiB value fails with StoreError reason ${huge.left.reason}`)

  // State that outlives the process (with a durable backend).
  const visits = yield* store.read("visits", { table: "counters" }).pipe(
    Effect.map(([record]) => Number(new TextDecoder().decode(record!.value))),
    Effect.catchIf((error) => error.reason === "NotFound", () => Effect.succeed(0))
  )
  yield* store.write({ key: "visits", value: new TextEncoder().encode(String(visits + 1)) }, { table: "counters" })
  console.log(`this program has run ${visits + 1} time(s) against this store`)
})

// Pick a backend from the environment; plugins are imported only when used.
const storeLayer: Layer.Layer<Store.Store, Store.StoreError> = process.env.REDIS_URL !== undefined
  ? Layer.unwrapEffect(Effect.promise(async () => {
    const { layer } = await import("../../src/plugins/redis/RedisStore.js")
    return layer({ url: process.env.REDIS_URL })
  }))
  : process.env.DATABASE_URL !== undefined
  ? Layer.unwrapEffect(Effect.promise(async () => {
    const { layer } = await import("../../src/plugins/postgres/PostgresStore.js")
    return layer({ connection: { url: Redacted.make(process.env.DATABASE_URL!) } })
  }))
  : Store.layer({ filename: process.env.STORE_FILE ?? path.join(os.tmpdir(), "effect-micro-example", "store.db") })

program.pipe(
  Effect.provide(Layer.merge(storeLayer, Codec.layer)),
  Effect.catchAll((error) =>
    Effect.sync(() => {
      console.error(`store error: ${error.message}`)
      process.exitCode = 1
    })
  ),
  Effect.runPromise
)
