import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import { Codec, Errors } from "../src/index.js"

const Person = Schema.Struct({
  id: Schema.Int,
  name: Schema.String,
  tags: Schema.Array(Schema.String),
  score: Schema.optional(Schema.Finite),
  kind: Schema.Literal("user", "service"),
  attributes: Schema.Record({ key: Schema.String, value: Schema.String }),
  at: Schema.DateFromString
})

describe("Codec", () => {
  for (const codec of [Codec.json, Codec.msgpack]) {
    it(`${codec.contentType}: property-based round trip`, () => {
      const compiled = codec.compile(Person)
      // -0 becomes 0 in both formats (JSON has no negative zero; msgpack packs it as the integer 0), and
      // Schema's Record decoding treats a "__proto__" key as the prototype (the key is dropped, nothing leaks).
      const arbitrary = Arbitrary.make(Person).filter((p) =>
        !Object.is(p.score, -0) && !Object.hasOwn(p.attributes, "__proto__")
      )
      FastCheck.assert(
        FastCheck.property(arbitrary, (person) => {
          const bytes = Either.getOrThrow(compiled.encode(person))
          expect(Either.getOrThrow(compiled.decode(bytes))).toEqual(person)
        }),
        { numRuns: 200 }
      )
    })

    it(`${codec.contentType}: framework errors round trip into their classes`, () => {
      const compiled = codec.compile(Errors.MicroError)
      for (const error of [Errors.NotFound.of("x", "svc"), Errors.TransportError.of("reset", "1.2.3.4:5", "boom")]) {
        const decoded = Either.getOrThrow(compiled.decode(Either.getOrThrow(compiled.encode(error))))
        expect(decoded).toBeInstanceOf(error.constructor)
        expect(decoded).toEqual(error)
      }
    })

    it(`${codec.contentType}: garbage and schema mismatches are CodecErrors`, () => {
      const compiled = codec.compile(Person)
      for (
        const bytes of [new Uint8Array([0xc1, 0xff, 0x00]), Buffer.from("{\"id\": \"nope\"}"), new Uint8Array([0x93])]
      ) {
        const result = compiled.decode(bytes)
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left).toBeInstanceOf(Errors.CodecError)
      }
    })
  }

  it("compile is memoised per Schema", () => {
    expect(Codec.json.compile(Person)).toBe(Codec.json.compile(Person))
  })

  it("json: Void travels as an empty body", () => {
    const compiled = Codec.json.compile(Schema.Void)
    expect(Either.getOrThrow(compiled.encode(undefined)).byteLength).toBe(0)
    expect(Either.getOrThrow(compiled.decode(new Uint8Array(0)))).toBeUndefined()
  })

  it("octet-stream carries bytes as-is and rejects anything else", () => {
    const bytes = Codec.bytes.compile(Schema.Uint8ArrayFromSelf)
    const all = Uint8Array.from({ length: 256 }, (_, i) => i)
    expect([...Either.getOrThrow(bytes.decode(Either.getOrThrow(bytes.encode(all))))]).toEqual([...all])
    const text = Codec.bytes.compile(Schema.String)
    expect(Either.isLeft(text.encode("no"))).toBe(true)
  })

  it("Codecs: lookup by content-type, parameters and case ignored; unknown → BadRequest naming the supported ones", () => {
    const codecs = Codec.makeCodecs([Codec.json, Codec.msgpack])
    expect(Either.getOrThrow(codecs.get("Application/JSON; charset=utf-8"))).toBe(Codec.json)
    const missing = codecs.get("application/xml")
    expect(Either.isLeft(missing)).toBe(true)
    if (Either.isLeft(missing)) {
      expect(missing.left).toBeInstanceOf(Errors.BadRequest)
      expect(missing.left.detail).toContain("application/msgpack")
    }
  })
})
