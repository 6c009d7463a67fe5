/**
 * The proto3 scalars: one `ScalarType` per protobuf type and JS carrier (`number` or `bigint` for the
 * 64-bit ones), each checking its value on encode.
 *
 * @internal
 */
import { describe, fail, type ScalarName, type ScalarType } from "./types.js"
import {
  joinBigintSigned,
  joinBigintUnsigned,
  joinSigned,
  joinUnsigned,
  type Reader,
  scratch64,
  splitBigint,
  splitNumber,
  type Writer
} from "./wire.js"

const isInt = (v: unknown, min: number, max: number): v is number =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max

const numberScalar = (
  scalar: ScalarName,
  wire: number,
  write: (w: Writer, v: number) => void,
  read: (r: Reader) => number,
  check: (v: unknown) => boolean
): ScalarType => ({
  _tag: "Scalar",
  scalar,
  wire,
  packable: true,
  zero: 0,
  isZero: (v) => v === 0 && !Object.is(v, -0),
  write: (w, v) => {
    if (!check(v)) fail(`expected ${scalar} (number), got ${describe(v)}`)
    write(w, v)
  },
  read
})

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const UINT32_MAX = 4294967295
const SAFE = Number.MAX_SAFE_INTEGER

const readInt64Number = (signed: boolean) => (value: number): number => {
  if (!Number.isSafeInteger(value)) {
    fail(`${signed ? "int64" : "uint64"} value ${value} is outside the safe integer range of a number field`)
  }
  return value
}
const checkSafe = readInt64Number(true)
const checkSafeU = readInt64Number(false)

const zigzag64 = (): void => {
  const { hi, lo } = scratch64
  const sign = hi >> 31
  scratch64.hi = (((hi << 1) | (lo >>> 31)) ^ sign) >>> 0
  scratch64.lo = ((lo << 1) ^ sign) >>> 0
}
const unzigzag64 = (): void => {
  const { hi, lo } = scratch64
  const sign = -(lo & 1)
  scratch64.lo = (((lo >>> 1) | (hi << 31)) ^ sign) >>> 0
  scratch64.hi = ((hi >>> 1) ^ sign) >>> 0
}

/** @internal */
export const numberScalars: Record<string, ScalarType> = {
  double: numberScalar("double", 1, (w, v) => w.double(v), (r) => r.double(), (v) => typeof v === "number"),
  float: numberScalar("float", 5, (w, v) => w.float(v), (r) => r.float(), (v) => typeof v === "number"),
  int32: numberScalar(
    "int32",
    0,
    (w, v) => w.int32(v),
    (r) => r.uint32() | 0,
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  uint32: numberScalar("uint32", 0, (w, v) => w.uint32(v), (r) => r.uint32(), (v) => isInt(v, 0, UINT32_MAX)),
  sint32: numberScalar(
    "sint32",
    0,
    (w, v) => w.uint32(((v << 1) ^ (v >> 31)) >>> 0),
    (r) => {
      const z = r.uint32()
      return (z >>> 1) ^ -(z & 1)
    },
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  fixed32: numberScalar("fixed32", 5, (w, v) => w.fixed32(v), (r) => r.fixed32(), (v) => isInt(v, 0, UINT32_MAX)),
  sfixed32: numberScalar(
    "sfixed32",
    5,
    (w, v) => w.fixed32(v),
    (r) => r.fixed32() | 0,
    (v) => isInt(v, INT32_MIN, INT32_MAX)
  ),
  int64: numberScalar("int64", 0, (w, v) => {
    splitNumber(v)
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE)),
  uint64: numberScalar("uint64", 0, (w, v) => {
    splitNumber(v)
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    return checkSafeU(joinUnsigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, 0, SAFE)),
  sint64: numberScalar("sint64", 0, (w, v) => {
    splitNumber(v)
    zigzag64()
    w.varint64(scratch64.lo, scratch64.hi)
  }, (r) => {
    r.varint64()
    unzigzag64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE)),
  fixed64: numberScalar("fixed64", 1, (w, v) => {
    splitNumber(v)
    w.fixed32(scratch64.lo)
    w.fixed32(scratch64.hi)
  }, (r) => {
    r.fixed64()
    return checkSafeU(joinUnsigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, 0, SAFE)),
  sfixed64: numberScalar("sfixed64", 1, (w, v) => {
    splitNumber(v)
    w.fixed32(scratch64.lo)
    w.fixed32(scratch64.hi)
  }, (r) => {
    r.fixed64()
    return checkSafe(joinSigned(scratch64.lo, scratch64.hi))
  }, (v) => isInt(v, -SAFE, SAFE))
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

const bigintScalar = (
  scalar: ScalarName,
  wire: number,
  signed: boolean,
  encode: (w: Writer) => void,
  decode: (r: Reader) => void
): ScalarType => ({
  _tag: "Scalar",
  scalar,
  wire,
  packable: true,
  zero: 0n,
  isZero: (v) => v === 0n,
  write: (w, v) => {
    if (typeof v !== "bigint" || v < (signed ? INT64_MIN : 0n) || v > (signed ? INT64_MAX : UINT64_MAX)) {
      fail(`expected ${scalar} (bigint), got ${describe(v)}`)
    }
    splitBigint(v)
    encode(w)
  },
  read: (r) => {
    decode(r)
    return signed ? joinBigintSigned(scratch64.lo, scratch64.hi) : joinBigintUnsigned(scratch64.lo, scratch64.hi)
  }
})
const writeVarint64 = (w: Writer) => w.varint64(scratch64.lo, scratch64.hi)
const writeFixed64 = (w: Writer) => {
  w.fixed32(scratch64.lo)
  w.fixed32(scratch64.hi)
}

/** @internal */
export const bigintScalars: Record<string, ScalarType> = {
  int64: bigintScalar("int64", 0, true, writeVarint64, (r) => r.varint64()),
  uint64: bigintScalar("uint64", 0, false, writeVarint64, (r) => r.varint64()),
  sint64: bigintScalar("sint64", 0, true, (w) => {
    zigzag64()
    writeVarint64(w)
  }, (r) => {
    r.varint64()
    unzigzag64()
  }),
  fixed64: bigintScalar("fixed64", 1, false, writeFixed64, (r) => r.fixed64()),
  sfixed64: bigintScalar("sfixed64", 1, true, writeFixed64, (r) => r.fixed64())
}

/** @internal */
export const boolScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "bool",
  wire: 0,
  packable: true,
  zero: false,
  isZero: (v) => v === false,
  write: (w, v) => {
    if (typeof v !== "boolean") fail(`expected bool, got ${describe(v)}`)
    w.uint32(v ? 1 : 0)
  },
  read: (r) => {
    r.varint64()
    return scratch64.lo !== 0 || scratch64.hi !== 0
  }
}

/** @internal */
export const stringScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "string",
  wire: 2,
  packable: false,
  zero: "",
  isZero: (v) => v === "",
  write: (w, v) => {
    if (typeof v !== "string") fail(`expected string, got ${describe(v)}`)
    w.string(v)
  },
  read: (r) => r.string()
}

/** @internal */
export const bytesScalar: ScalarType = {
  _tag: "Scalar",
  scalar: "bytes",
  wire: 2,
  packable: false,
  zero: new Uint8Array(0),
  isZero: (v) => v.length === 0,
  write: (w, v) => {
    if (!(v instanceof Uint8Array)) fail(`expected bytes (Uint8Array), got ${describe(v)}`)
    w.bytes(v)
  },
  read: (r) => r.bytes()
}

/** @internal */
export const jsOf = (t: ScalarType): "string" | "number" | "boolean" | "bigint" | "bytes" =>
  t.scalar === "string"
    ? "string"
    : t.scalar === "bool"
    ? "boolean"
    : t.scalar === "bytes"
    ? "bytes"
    : typeof t.zero === "bigint"
    ? "bigint"
    : "number"
