/** Template: `src/contract.ts`, the service's contract (schemas and endpoints). */
import type { Names } from "./names.js"

export const contract = ({ contract, service }: Names): string =>
  `/**
 * The contract of ${service}: the endpoints, their payloads, replies and errors as Schemas. The server
 * (src/handlers.ts) implements it and callers (src/client.ts) get a typed client from it; every message is
 * validated against these Schemas on the way in.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import { Contract } from "effect-micro"
import * as Schema from "effect/Schema"

/** The reply of \`Hello\`. */
export class Greeting extends Schema.Class<Greeting>("Greeting")({
  message: Schema.String
}) {}

/** \`Hello\`'s typed error: the caller gets this class back, not a generic failure. */
export class NameRejected extends Schema.TaggedError<NameRejected>()("NameRejected", {
  name: Schema.String,
  reason: Schema.String
}) {}

/** One message of \`Countdown\`'s stream. */
export class Tick extends Schema.Class<Tick>("Tick")({
  remaining: Schema.Int
}) {}

export const ${contract} = RpcGroup.make(
  // Unary, with a typed error. Idempotent: the client may retry it on another node after a timeout.
  Rpc.make("Hello", {
    payload: { name: Schema.String },
    success: Greeting,
    error: NameRejected
  }).annotate(Contract.Idempotent, true),
  // Server stream: Ticks from \`from\` down to 0. A \`from\` outside 0..100 is refused (by the
  // client before sending, and by the server).
  Rpc.make("Countdown", {
    payload: { from: Schema.Int.pipe(Schema.between(0, 100)) },
    success: Tick,
    stream: true
  })
)
`
