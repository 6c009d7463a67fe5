/**
 * Schemas shared by the protobuf suites.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSchema from "@effect/rpc/RpcSchema"
import * as Schema from "effect/Schema"
import { BadRequest } from "../../src/Errors.js"
import * as Protobuf from "../../src/Protobuf.js"

export class Point extends Schema.Class<Point>("Point")({ x: Schema.Number, y: Schema.Number }) {}
export class Circle extends Schema.TaggedClass<Circle>()("Circle", { center: Point, radius: Schema.Number }) {}
export class Square extends Schema.TaggedClass<Square>()("Square", { corner: Point, side: Schema.Number }) {}
export const Shape = Schema.Union(Circle, Square)

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { name: Schema.String }) {}

export enum Level {
  Low = "low",
  High = "high"
}

/** bigints within the 64-bit ranges (wider values are a CodecError, tested separately). */
export const Int64 = Schema.BigIntFromSelf.pipe(Schema.betweenBigInt(-(2n ** 63n), 2n ** 63n - 1n))
export const UInt64 = Schema.BigIntFromSelf.pipe(Schema.betweenBigInt(0n, 2n ** 64n - 1n))
export const Int32 = Schema.Int.pipe(Schema.between(-(2 ** 31), 2 ** 31 - 1))

export const Address = Schema.Struct({ street: Schema.String, zip: Schema.String })

/** Nested, repeated, map, oneof and 64-bit fields. */
export const Account = Schema.Struct({
  id: Int64,
  name: Schema.String,
  balance: Schema.Number,
  visits: Schema.Int,
  signed: Schema.Int.annotations(Protobuf.scalarType("sint64")),
  small: Int32.annotations(Protobuf.scalarType("int32")),
  unsigned: UInt64.annotations(Protobuf.scalarType("uint64")),
  fixed: Int64.annotations(Protobuf.scalarType("sfixed64")),
  active: Schema.Boolean,
  avatar: Schema.Uint8ArrayFromSelf,
  address: Address,
  previous: Schema.Array(Address),
  tags: Schema.Array(Schema.String),
  ratings: Schema.Array(Schema.Number),
  counts: Schema.Array(Schema.Int),
  labels: Schema.Record({ key: Schema.String, value: Schema.String }),
  scores: Schema.Record({ key: Schema.String, value: Schema.Int }),
  homes: Schema.Record({ key: Schema.String, value: Address }),
  shape: Shape,
  level: Schema.Enums(Level),
  mood: Schema.Literal("happy", "sad", "meh"),
  nickname: Schema.optional(Schema.String),
  createdAt: Schema.ValidDateFromSelf
})

export const Contract = RpcGroup.make(
  Rpc.make("Hello", { payload: { name: Schema.String }, success: Schema.String, error: NotFound }),
  Rpc.make("Countdown", { payload: { from: Schema.Int }, success: Schema.Int, stream: true }),
  Rpc.make("Upload", {
    payload: RpcSchema.Stream({ success: Schema.Struct({ chunk: Schema.Uint8ArrayFromSelf }), failure: Schema.Never }),
    success: Schema.Struct({ size: Schema.Int })
  }),
  Rpc.make("Save", { payload: Account, success: Account, error: Schema.Union(NotFound, BadRequest) }),
  Rpc.make("Draw", { payload: { shapes: Schema.Array(Shape) }, success: Schema.Void })
)
