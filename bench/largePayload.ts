/**
 * The `large` group's payloads (plain data, no Effect import, so the raw scenarios load nothing else): raw
 * bytes of 64 KiB or 1 MiB, and the JSON variant `{ data: string }` whose string has that many ASCII
 * characters (so its JSON body is the size + 11 bytes).
 */
export const largeSizes = { "64k": 64 * 1024, "1m": 1024 * 1024 } as const
export type LargeSize = keyof typeof largeSizes

/** Calls (unary) or messages (bidi) in flight per size when BENCH_LARGE_INFLIGHT does not say otherwise. */
export const largeInflight: Record<LargeSize, number> = { "64k": 8, "1m": 2 }

/** A deterministic, non-constant byte pattern (so a corrupted echo would not look like the original by luck). */
export const bytesPayload = (size: number): Buffer => {
  const bytes = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + (i >>> 8)) & 0xff
  return bytes
}

export interface TextMessage {
  readonly data: string
}

export const textPayload = (size: number): TextMessage => {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
  return { data: alphabet.repeat(Math.ceil(size / alphabet.length)).slice(0, size) }
}

/**
 * Frame reader for the raw `node:net` baseline (u32 big-endian length + body): received chunks are kept in a
 * list and a frame is cut out when all of it has arrived — a view when it sits in one chunk, otherwise one
 * copy into a buffer of its size (never a re-concatenation per chunk, which is quadratic for a 1 MiB frame
 * arriving in 64 KiB reads).
 */
export class LengthPrefixedReader {
  private chunks: Array<Buffer> = []
  private buffered = 0
  private need = -1

  constructor(private readonly onFrame: (body: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.buffered += chunk.byteLength
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) return
        this.need = this.take(4).readUInt32BE(0)
      }
      if (this.buffered < this.need) return
      const body = this.take(this.need)
      this.need = -1
      this.onFrame(body)
    }
  }

  private take(n: number): Buffer {
    this.buffered -= n
    const first = this.chunks[0]!
    if (first.byteLength >= n) {
      if (first.byteLength === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.chunks[0]!
      const want = n - filled
      if (chunk.byteLength <= want) {
        chunk.copy(out, filled)
        filled += chunk.byteLength
        this.chunks.shift()
      } else {
        chunk.copy(out, filled, 0, want)
        this.chunks[0] = chunk.subarray(want)
        filled += want
      }
    }
    return out
  }
}

/** The 4-byte length prefix of a raw frame. */
export const lengthPrefix = (length: number): Buffer => {
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(length, 0)
  return head
}
