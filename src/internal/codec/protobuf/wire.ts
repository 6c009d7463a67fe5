/**
 * Protobuf wire primitives: a growable writer and a bounds-checked reader.
 *
 * The writer reserves one byte for a length prefix and shifts the body when the length needs more
 * (`copyWithin`, rare for small messages), so nested messages are written in one pass.
 * The reader never reads past `end`: every overrun, over-long varint or bad length throws
 * `WireError`, which the codec turns into a `CodecError`.
 *
 * @internal
 */

/** Thrown inside the encoder/decoder; never escapes the codec. */
export class WireError extends Error {
  constructor(message: string) {
    super(message)
    this.name = "WireError"
  }
}

const TWO_32 = 4294967296

const f64 = new Float64Array(1)
const f64b = new Uint8Array(f64.buffer)
const f32 = new Float32Array(1)
const f32b = new Uint8Array(f32.buffer)
// Scratch for 64-bit values read from the wire (lo, hi as unsigned 32-bit).
export const scratch64 = { lo: 0, hi: 0 }

// Buffer's native latin1 slice works on any Uint8Array; for bytes < 0x80 latin1 and UTF-8 agree.
const latin1Slice =
  (Buffer.prototype as unknown as { latin1Slice: (this: Uint8Array, start: number, end: number) => string })
    .latin1Slice

const utf8Decoder = new TextDecoder("utf-8", { fatal: true })
const utf8Encoder = new TextEncoder()

/** Growable byte writer. */
export class Writer {
  // A plain Uint8Array: `slice` in `finish` is a straight copy (Buffer's species path is slower).
  buf: Uint8Array
  pos = 0
  constructor(size = 1024) {
    this.buf = new Uint8Array(size)
  }
  reset(): void {
    this.pos = 0
  }
  ensure(n: number): void {
    if (this.pos + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.pos + n + 64))
      next.set(this.buf.subarray(0, this.pos))
      this.buf = next
    }
  }
  /**
   * A copy of the written bytes (the writer's buffer is reused). Small messages are copied into Node's
   * pooled Buffer slab: half the cost of `Uint8Array#slice`, which allocates an ArrayBuffer per message.
   */
  finish(): Uint8Array {
    const out = Buffer.allocUnsafe(this.pos)
    out.set(this.buf.subarray(0, this.pos))
    return out
  }
  uint32(v: number): void {
    this.ensure(5)
    const buf = this.buf
    let pos = this.pos
    v = v >>> 0
    while (v > 127) {
      buf[pos++] = (v & 127) | 128
      v = v >>> 7
    }
    buf[pos++] = v
    this.pos = pos
  }
  /** A 64-bit varint from two unsigned 32-bit halves. */
  varint64(lo: number, hi: number): void {
    if (hi === 0) return this.uint32(lo)
    this.ensure(10)
    const buf = this.buf
    let pos = this.pos
    lo = lo >>> 0
    hi = hi >>> 0
    while (hi > 0) {
      buf[pos++] = (lo & 127) | 128
      lo = ((lo >>> 7) | (hi << 25)) >>> 0
      hi = hi >>> 7
    }
    while (lo > 127) {
      buf[pos++] = (lo & 127) | 128
      lo = lo >>> 7
    }
    buf[pos++] = lo
    this.pos = pos
  }
  int32(v: number): void {
    if (v >= 0) this.uint32(v)
    else this.varint64(v >>> 0, 0xffffffff) // sign-extended to 10 bytes, as protobuf requires
  }
  fixed32(v: number): void {
    this.ensure(4)
    const buf = this.buf
    const pos = this.pos
    buf[pos] = v & 255
    buf[pos + 1] = (v >>> 8) & 255
    buf[pos + 2] = (v >>> 16) & 255
    buf[pos + 3] = (v >>> 24) & 255
    this.pos = pos + 4
  }
  double(v: number): void {
    this.ensure(8)
    f64[0] = v
    this.buf.set(f64b, this.pos)
    this.pos += 8
  }
  float(v: number): void {
    this.ensure(4)
    f32[0] = v
    this.buf.set(f32b, this.pos)
    this.pos += 4
  }
  bytes(v: Uint8Array): void {
    this.uint32(v.length)
    this.ensure(v.length)
    this.buf.set(v, this.pos)
    this.pos += v.length
  }
  string(v: string): void {
    const n = v.length
    if (n < 40) {
      // Short strings: encode inline (crossing into C++ costs more than the loop).
      this.ensure(1 + n * 3)
      const buf = this.buf
      const start = this.pos
      let pos = start + 1
      for (let i = 0; i < n; i++) {
        let c = v.charCodeAt(i)
        if (c < 0x80) {
          buf[pos++] = c
        } else if (c < 0x800) {
          buf[pos++] = (c >> 6) | 0xc0
          buf[pos++] = (c & 63) | 0x80
        } else if ((c & 0xfc00) === 0xd800 && i + 1 < n && (v.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
          c = 0x10000 + ((c & 0x3ff) << 10) + (v.charCodeAt(++i) & 0x3ff)
          buf[pos++] = (c >> 18) | 0xf0
          buf[pos++] = ((c >> 12) & 63) | 0x80
          buf[pos++] = ((c >> 6) & 63) | 0x80
          buf[pos++] = (c & 63) | 0x80
        } else {
          if ((c & 0xf800) === 0xd800) c = 0xfffd // lone surrogate, as TextEncoder does
          buf[pos++] = (c >> 12) | 0xe0
          buf[pos++] = ((c >> 6) & 63) | 0x80
          buf[pos++] = (c & 63) | 0x80
        }
      }
      // n < 40 chars → at most 117 bytes: the one-byte length prefix always fits.
      buf[start] = pos - start - 1
      this.pos = pos
      return
    }
    const len = Buffer.byteLength(v, "utf8")
    this.uint32(len)
    this.ensure(len)
    utf8Encoder.encodeInto(v, this.buf.subarray(this.pos, this.pos + len))
    this.pos += len
  }
  /** Reserves one byte for a length prefix; returns the position to pass to `endLength`. */
  beginLength(): number {
    this.ensure(1)
    return this.pos++
  }
  endLength(start: number): void {
    const len = this.pos - start - 1
    if (len < 128) {
      this.buf[start] = len
      return
    }
    const size = len < 16384 ? 2 : len < 2097152 ? 3 : len < 268435456 ? 4 : 5
    this.ensure(size - 1)
    this.buf.copyWithin(start + size, start + 1, this.pos)
    this.pos += size - 1
    let v = len
    let pos = start
    while (v > 127) {
      this.buf[pos++] = (v & 127) | 128
      v = v >>> 7
    }
    this.buf[pos] = v
  }
}

/** Splits a safe integer (possibly negative) into two's-complement 64-bit halves. */
export const splitNumber = (v: number): void => {
  const hi = Math.floor(v / TWO_32)
  scratch64.lo = (v - hi * TWO_32) >>> 0
  scratch64.hi = hi >>> 0
}

const MASK32 = 0xffffffffn
/** Splits a bigint into two's-complement 64-bit halves. */
export const splitBigint = (v: bigint): void => {
  scratch64.lo = Number(v & MASK32)
  scratch64.hi = Number((v >> 32n) & MASK32)
}

export const joinSigned = (lo: number, hi: number): number => (hi | 0) * TWO_32 + (lo >>> 0)
export const joinUnsigned = (lo: number, hi: number): number => (hi >>> 0) * TWO_32 + (lo >>> 0)
export const joinBigintSigned = (lo: number, hi: number): bigint =>
  BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0))
export const joinBigintUnsigned = (lo: number, hi: number): bigint => (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0)

/** Bounds-checked reader over one message. */
export class Reader {
  pos: number
  depth = 0
  constructor(readonly buf: Uint8Array, pos: number, public end: number) {
    this.pos = pos
  }
  private overrun(): never {
    throw new WireError(`truncated input at byte ${this.pos} (message ends at ${this.end})`)
  }
  /** A varint's low 32 bits (longer varints are read fully, up to 10 bytes). */
  uint32(): number {
    const buf = this.buf
    const end = this.end
    let pos = this.pos
    let result = 0
    let shift = 0
    let b: number
    do {
      if (shift >= 70) throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`)
      if (pos >= end) this.overrun()
      b = buf[pos++]!
      if (shift < 32) result |= (b & 127) << shift
      shift += 7
    } while (b & 128)
    this.pos = pos
    return result >>> 0
  }
  /** A 64-bit varint into `scratch64`. */
  varint64(): void {
    const buf = this.buf
    const end = this.end
    let pos = this.pos
    let lo = 0
    let hi = 0
    let shift = 0
    let b: number
    do {
      if (shift >= 70) throw new WireError(`varint longer than 10 bytes at byte ${this.pos}`)
      if (pos >= end) this.overrun()
      b = buf[pos++]!
      const bits = b & 127
      if (shift < 28) lo |= bits << shift
      else if (shift === 28) {
        lo |= (bits & 15) << 28
        hi |= bits >>> 4
      } else if (shift < 64) hi |= bits << (shift - 32)
      shift += 7
    } while (b & 128)
    this.pos = pos
    scratch64.lo = lo >>> 0
    scratch64.hi = hi >>> 0
  }
  /** An int64 varint as a number; outside the safe integer range is an error. */
  int64(): number {
    this.varint64()
    const { hi, lo } = scratch64
    if (hi === 0) return lo
    const v = joinSigned(lo, hi)
    if (!Number.isSafeInteger(v)) {
      throw new WireError(`int64 value ${v} is outside the safe integer range of a number field`)
    }
    return v
  }
  bool(): boolean {
    this.varint64()
    return scratch64.lo !== 0 || scratch64.hi !== 0
  }
  fixed32(): number {
    const pos = this.pos
    if (pos + 4 > this.end) this.overrun()
    const buf = this.buf
    this.pos = pos + 4
    return (buf[pos]! | (buf[pos + 1]! << 8) | (buf[pos + 2]! << 16) | (buf[pos + 3]! << 24)) >>> 0
  }
  fixed64(): void {
    scratch64.lo = this.fixed32()
    scratch64.hi = this.fixed32()
  }
  double(): number {
    const pos = this.pos
    if (pos + 8 > this.end) this.overrun()
    for (let i = 0; i < 8; i++) f64b[i] = this.buf[pos + i]!
    this.pos = pos + 8
    return f64[0]!
  }
  float(): number {
    const pos = this.pos
    if (pos + 4 > this.end) this.overrun()
    for (let i = 0; i < 4; i++) f32b[i] = this.buf[pos + i]!
    this.pos = pos + 4
    return f32[0]!
  }
  /** A length prefix, checked against the remaining bytes; returns the end position. */
  length(): number {
    const start = this.pos
    this.varint64()
    const { hi, lo } = scratch64
    if (hi !== 0 || lo > this.end - this.pos) {
      throw new WireError(
        `length ${hi !== 0 ? joinSigned(lo, hi) : lo} at byte ${start} exceeds the ${
          this.end - this.pos
        } remaining bytes`
      )
    }
    return this.pos + lo
  }
  bytes(): Uint8Array {
    const end = this.length()
    // A copy, always a plain Uint8Array (Buffer#slice would alias the input).
    const out = new Uint8Array(end - this.pos)
    out.set(this.buf.subarray(this.pos, end))
    this.pos = end
    return out
  }
  string(): string {
    const end = this.length()
    const buf = this.buf
    let pos = this.pos
    const start = pos
    if (end - start < 64) {
      // Short ASCII strings (the common case) are sliced in one native call once checked.
      while (pos < end && buf[pos]! < 0x80) pos++
      if (pos === end) {
        this.pos = end
        return latin1Slice.call(buf, start, end)
      }
    }
    try {
      const s = utf8Decoder.decode(buf.subarray(start, end))
      this.pos = end
      return s
    } catch {
      throw new WireError(`invalid UTF-8 in string at byte ${start}`)
    }
  }
  /** Skips a field's value of the given wire type (groups included, bounded depth). */
  skip(wireType: number, fieldNumber: number): void {
    switch (wireType) {
      case 0:
        this.varint64()
        return
      case 1:
        if (this.pos + 8 > this.end) this.overrun()
        this.pos += 8
        return
      case 2:
        this.pos = this.length()
        return
      case 3: {
        if (++this.depth > 100) throw new WireError("groups nested too deeply")
        for (;;) {
          const tag = this.uint32()
          const wt = tag & 7
          if (wt === 4) {
            if (tag >>> 3 !== fieldNumber) throw new WireError(`mismatched end-group for field ${fieldNumber}`)
            break
          }
          this.checkFieldNumber(tag)
          this.skip(wt, tag >>> 3)
        }
        this.depth--
        return
      }
      case 5:
        if (this.pos + 4 > this.end) this.overrun()
        this.pos += 4
        return
      default:
        throw new WireError(`invalid wire type ${wireType} for field ${fieldNumber} at byte ${this.pos}`)
    }
  }
  checkFieldNumber(tag: number): void {
    if (tag >>> 3 === 0) throw new WireError(`invalid field number 0 at byte ${this.pos}`)
  }
}
