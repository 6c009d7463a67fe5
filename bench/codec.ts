/**
 * Codec micro-benchmark (one process, run by run.ts or directly: `npx tsx bench/codec.ts [roundMs] [rounds]`).
 *
 * One ~10-field message (`Message10`: ints, strings, bool, double, repeated string, packed repeated int32,
 * nested message) is encoded then decoded, again and again, by:
 *   - effect-micro `Protobuf.compile(Message10)` (the `application/protobuf` codec);
 *   - protobufjs 8 with the `.proto` that `Protobuf.toProto` emits for the same Schema (encode().finish() +
 *     decode(); decode returns its message instance, no toObject);
 *   - effect-micro `Codec.json` and `Codec.msgpack` compiled for the Schema (Schema encode/decode included);
 *   - references: bare `JSON.stringify`/`JSON.parse` (with UTF-8 Buffer conversion) and bare msgpackr.
 * Every codec is checked to round-trip the message (and ours/protobufjs to read each other's bytes) first.
 * Rounds are interleaved (each round runs every codec for `roundMs`, in a rotating order); the best round
 * counts. Prints `RESULT <json>`.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import { Packr } from "msgpackr"
import { performance } from "node:perf_hooks"
import { isDeepStrictEqual } from "node:util"
import protobuf from "protobufjs"
import * as Codec from "../src/Codec.js"
import * as Protobuf from "../src/Protobuf.js"

export const Address = Schema.Struct({
  street: Schema.String,
  city: Schema.String,
  zip: Schema.String
}).annotations({ identifier: "Address" })

export const Message10 = Schema.Struct({
  id: Schema.Number.annotations(Protobuf.scalarType("int32")),
  name: Schema.String,
  email: Schema.String,
  active: Schema.Boolean,
  score: Schema.Number,
  visits: Schema.Number.annotations(Protobuf.scalarType("uint32")),
  tags: Schema.Array(Schema.String),
  counts: Schema.Array(Schema.Number.annotations(Protobuf.scalarType("int32"))),
  created: Schema.String,
  address: Address
}).annotations({ identifier: "Message10" })

export const message: typeof Message10.Type = {
  id: 4242,
  name: "Ada Lovelace",
  email: "ada@example.com",
  active: true,
  score: 98.25,
  visits: 1234567,
  tags: ["alpha", "beta", "gamma"],
  counts: [1, 2, 300, 40000, -5],
  created: "2024-05-01T12:00:00Z",
  address: { street: "1 Main St", city: "London", zip: "NW1 6XE" }
}

export interface CodecRow {
  readonly codec: string
  readonly opsPerSec: number
  /** ops/s of every round, in order. */
  readonly rounds: ReadonlyArray<number>
  readonly bytes: number
}

interface Candidate {
  readonly name: string
  readonly encode: () => Uint8Array
  readonly decode: (bytes: Uint8Array) => unknown
}

/** JSON with object keys sorted, to compare decoded values whatever their key order. */
const canonical = (value: unknown): string =>
  JSON.stringify(value, (_, v) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
      : v)

const getOrThrow = <A>(either: Either.Either<A, { readonly detail?: string }>): A => {
  if (Either.isLeft(either)) throw new Error(String(either.left.detail ?? either.left))
  return either.right
}

const candidates = (): { readonly list: ReadonlyArray<Candidate>; readonly proto: string } => {
  const ours = Protobuf.compile(Message10)
  const group = RpcGroup.make(Rpc.make("Put", { payload: Message10, success: Message10 }))
  const proto = Protobuf.toProto(group, { package: "bench", frameworkErrors: false })
  const root = protobuf.parse(proto, { keepCase: true }).root
  root.resolveAll()
  const Type = root.lookupType("bench.Message10")
  const json = Codec.json.compile(Message10)
  const msgpack = Codec.msgpack.compile(Message10)
  const packr = new Packr({ useRecords: false, moreTypes: false } as any)

  // Interop and round trips before timing anything.
  const ourBytes = getOrThrow(ours.encode(message))
  const theirBytes = Type.encode(Type.fromObject(message)).finish()
  const fromTheirs = getOrThrow(ours.decode(theirBytes))
  const fromOurs = Type.toObject(Type.decode(ourBytes), { defaults: true, arrays: true })
  if (!isDeepStrictEqual(fromTheirs, message)) {
    throw new Error(`ours cannot read protobufjs bytes: ${JSON.stringify(fromTheirs)}`)
  }
  if (canonical(fromOurs) !== canonical(message)) {
    throw new Error(`protobufjs cannot read our bytes: ${JSON.stringify(fromOurs)}`)
  }

  const list: Array<Candidate> = [
    {
      name: "effect-micro protobuf",
      encode: () => getOrThrow(ours.encode(message)),
      decode: (b) => getOrThrow(ours.decode(b))
    },
    { name: "protobufjs", encode: () => Type.encode(message).finish(), decode: (b) => Type.decode(b) },
    {
      name: "effect-micro json",
      encode: () => getOrThrow(json.encode(message)),
      decode: (b) => getOrThrow(json.decode(b))
    },
    {
      name: "effect-micro msgpack",
      encode: () => getOrThrow(msgpack.encode(message)),
      decode: (b) => getOrThrow(msgpack.decode(b))
    },
    {
      name: "JSON.stringify/parse (bare)",
      encode: () => Buffer.from(JSON.stringify(message), "utf8"),
      decode: (b) => JSON.parse((b as Buffer).toString("utf8"))
    },
    { name: "msgpackr (bare)", encode: () => packr.pack(message), decode: (b) => packr.unpack(b) }
  ]
  for (const candidate of list) {
    const decoded = candidate.decode(candidate.encode())
    const plain = candidate.name === "protobufjs"
      ? Type.toObject(decoded as protobuf.Message, { arrays: true })
      : decoded
    if (canonical(plain) !== canonical(message)) {
      throw new Error(`${candidate.name} does not round-trip: ${JSON.stringify(plain)}`)
    }
  }
  return { list, proto }
}

let sink = 0

/** encode+decode ops per second for `ms` milliseconds (in batches of 256, clock read per batch). */
const time = (candidate: Candidate, ms: number): number => {
  const { decode, encode } = candidate
  let ops = 0
  const start = performance.now()
  const end = start + ms
  let now = start
  while (now < end) {
    for (let i = 0; i < 256; i++) {
      const bytes = encode()
      sink += bytes.length
      if (decode(bytes) === undefined) sink++
    }
    ops += 256
    now = performance.now()
  }
  return ops / ((now - start) / 1000)
}

export const run = (roundMs: number, rounds: number): { rows: ReadonlyArray<CodecRow>; proto: string } => {
  const { list, proto } = candidates()
  for (const candidate of list) time(candidate, Math.min(200, roundMs)) // warm-up (JIT)
  const results = list.map(() => [] as Array<number>)
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < list.length; k++) {
      const index = (k + round) % list.length
      results[index]!.push(time(list[index]!, roundMs))
    }
  }
  return {
    proto,
    rows: list.map((candidate, i) => ({
      codec: candidate.name,
      opsPerSec: Math.max(...results[i]!),
      rounds: results[i]!,
      bytes: candidate.encode().length
    }))
  }
}

if (process.argv[1]?.replace(/\.[jt]s$/, "").endsWith("bench/codec") || process.argv[1]?.endsWith("codec.js")) {
  const roundMs = Number(process.argv[2] ?? 100)
  const rounds = Number(process.argv[3] ?? 15)
  const result = run(roundMs, rounds)
  process.stdout.write(`RESULT ${JSON.stringify({ rows: result.rows, sink })}\n`)
}
