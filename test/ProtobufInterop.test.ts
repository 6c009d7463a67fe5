import { describe, expect, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as os from "node:os"
import * as path from "node:path"
import protobuf from "protobufjs"
import { BadRequest, MicroError, Timeout, TransportError } from "../src/Errors.js"
import { planContract } from "../src/internal/codec/protobuf/contract.js"
import { fileDescriptor } from "../src/internal/codec/protobuf/descriptor.js"
import * as Protobuf from "../src/Protobuf.js"
import { Account, Circle, Contract, Level, NotFound, Point, Shape, Square } from "./support/protobufSchemas.js"

const require = createRequire(import.meta.url)
const proto = Protobuf.toProto(Contract, { package: "interop", serviceName: "Demo" })
const root = protobuf.parse(proto, { keepCase: true }).root
root.resolveAll()
const type = (name: string) => root.lookupType(`interop.${name}`)

const ours = <A, I>(schema: Schema.Schema<A, I, never>) => {
  const codec = Protobuf.compile(schema)
  return {
    encode: (a: A) => Either.getOrThrow(codec.encode(a)),
    decode: (bytes: Uint8Array) => {
      const result = codec.decode(bytes)
      if (Either.isLeft(result)) throw new Error(result.left.detail)
      return result.right
    }
  }
}

const account = Account.make({
  id: -9007199254740993n,
  name: "Ada Lovelace ✓",
  balance: -12.5,
  visits: 2 ** 40,
  signed: -(2 ** 50),
  small: -7,
  unsigned: 2n ** 64n - 1n,
  fixed: -(2n ** 63n),
  active: true,
  avatar: Uint8Array.from([0, 1, 254, 255]),
  address: { street: "1 Main St", zip: "12345" },
  previous: [{ street: "2 Side St", zip: "" }, { street: "", zip: "9" }],
  tags: ["a", "", "ü"],
  ratings: [1.5, -0.25, 1e300],
  counts: [0, -1, 300, 2 ** 31],
  labels: { en: "hello", fr: "bonjour" },
  scores: { x: -1, y: 2 ** 33 },
  homes: { main: { street: "3 Home Rd", zip: "0" } },
  shape: new Square({ corner: new Point({ x: 1, y: -1 }), side: 2 }),
  level: Level.High,
  mood: "sad",
  nickname: "ada",
  createdAt: new Date(Date.UTC(2024, 1, 29, 12, 0, 0, 345))
})

describe("Protobuf interop with protobufjs (emitted .proto)", () => {
  it("the emitted .proto parses and declares the service with stream keywords", () => {
    const service = root.lookupService("interop.Demo")
    expect(Object.keys(service.methods)).toEqual(["Hello", "Countdown", "Upload", "Save", "Draw"])
    expect(service.methods.Countdown!.responseStream).toBe(true)
    expect(service.methods.Countdown!.requestStream).toBeFalsy()
    expect(service.methods.Upload!.requestStream).toBe(true)
    expect(service.methods.Upload!.responseType).toBe("UploadResponse")
    expect(service.methods.Hello!.requestType).toBe("HelloRequest")
    expect(proto).toContain("// errors: SaveError")
    expect(proto).toContain("message MicroError {")
    // deterministic
    expect(Protobuf.toProto(Contract, { package: "interop", serviceName: "Demo" })).toBe(proto)
  })

  it("ours → protobufjs: nested, repeated, map, oneof, enum and 64-bit fields", () => {
    const bytes = ours(Account).encode(account)
    const T = type("SaveRequest")
    const decoded = T.toObject(T.decode(bytes), { longs: String, enums: Number, bytes: Array, oneofs: false })
    expect(decoded).toEqual({
      id: "-9007199254740993",
      name: "Ada Lovelace ✓",
      balance: -12.5,
      visits: String(2 ** 40),
      signed: String(-(2 ** 50)),
      small: -7,
      unsigned: "18446744073709551615",
      fixed: "-9223372036854775808",
      active: true,
      avatar: [0, 1, 254, 255],
      address: { street: "1 Main St", zip: "12345" },
      previous: [{ street: "2 Side St" }, { zip: "9" }],
      tags: ["a", "", "ü"],
      ratings: [1.5, -0.25, 1e300],
      counts: ["0", "-1", "300", String(2 ** 31)],
      labels: { en: "hello", fr: "bonjour" },
      scores: { x: "-1", y: String(2 ** 33) },
      homes: { main: { street: "3 Home Rd", zip: "0" } },
      shape: { square: { corner: { x: 1, y: -1 }, side: 2 } },
      level: 1,
      mood: 1,
      nickname: "ada",
      createdAt: { seconds: String(Math.floor(account.createdAt.getTime() / 1000)), nanos: 345_000_000 }
    })
  })

  it("protobufjs → ours", () => {
    const T = type("SaveRequest")
    const message = T.fromObject({
      id: "-9007199254740993",
      name: "Ada Lovelace ✓",
      balance: -12.5,
      visits: 2 ** 40,
      signed: -(2 ** 50),
      small: -7,
      unsigned: "18446744073709551615",
      fixed: "-9223372036854775808",
      active: true,
      avatar: [0, 1, 254, 255],
      address: { street: "1 Main St", zip: "12345" },
      previous: [{ street: "2 Side St" }, { zip: "9" }],
      tags: ["a", "", "ü"],
      ratings: [1.5, -0.25, 1e300],
      counts: [0, -1, 300, 2 ** 31],
      labels: { en: "hello", fr: "bonjour" },
      scores: { x: -1, y: 2 ** 33 },
      homes: { main: { street: "3 Home Rd", zip: "0" } },
      shape: { square: { corner: { x: 1, y: -1 }, side: 2 } },
      level: 1,
      mood: 1,
      nickname: "ada",
      createdAt: { seconds: Math.floor(account.createdAt.getTime() / 1000), nanos: 345_000_000 }
    })
    const decoded = ours(Account).decode(T.encode(message).finish())
    expect(decoded).toEqual(account)
    expect(decoded.shape).toBeInstanceOf(Square)
  })

  it("arbitrary values survive ours → protobufjs → ours (property-based)", () => {
    const T = type("SaveRequest")
    const codec = ours(Account)
    const encode = Schema.encodeSync(Account)
    FastCheck.assert(
      FastCheck.property(Arbitrary.make(Account), (a) => {
        const viaProtobufjs = T.encode(T.decode(codec.encode(a))).finish()
        expect(encode(codec.decode(viaProtobufjs))).toEqual(encode(a))
      }),
      { numRuns: 200 }
    )
  })

  it("oneof in repeated wrappers (Draw) both ways", () => {
    const Draw = Contract.requests.get("Draw")!.payloadSchema as unknown as Schema.Schema<
      { readonly shapes: ReadonlyArray<Circle | Square> },
      any,
      never
    >
    const value = {
      shapes: [
        new Circle({ center: new Point({ x: 0, y: 0 }), radius: 1 }),
        new Square({ corner: new Point({ x: 2, y: 3 }), side: 4 })
      ]
    }
    const T = type("DrawRequest")
    const plain = T.toObject(T.decode(ours(Draw).encode(value)))
    expect(plain).toEqual({
      shapes: [{ circle: { center: {}, radius: 1 } }, { square: { corner: { x: 2, y: 3 }, side: 4 } }]
    })
    expect(ours(Draw).decode(T.encode(T.fromObject(plain)).finish())).toEqual(value)
    expect(ours(Shape).decode(ours(Shape).encode(value.shapes[0]!))).toEqual(value.shapes[0])
  })

  it("error unions: an endpoint's errors and MicroError", () => {
    const SaveError = Schema.Union(NotFound, BadRequest)
    const T = type("SaveError")
    expect(T.toObject(T.decode(ours(SaveError).encode(new NotFound({ name: "x" }))))).toEqual({
      notFound: { name: "x" }
    })
    const fromJs = ours(SaveError).decode(
      T.encode(T.fromObject({ badRequest: { id: "svc", code: 400, detail: "d", status: "s" } })).finish()
    )
    expect(fromJs).toEqual(new BadRequest({ id: "svc", code: 400, detail: "d", status: "s" }))
    expect(fromJs).toBeInstanceOf(BadRequest)

    const M = type("MicroError")
    const transport = TransportError.of("refused", "10.0.0.1:80", "no", true)
    const plain = M.toObject(M.decode(ours(MicroError).encode(transport)), { enums: String })
    expect(plain).toEqual({
      transportError: {
        id: "effect-micro.transport",
        code: 503,
        detail: "no",
        status: "Transport Error",
        reason: "TRANSPORT_ERROR_REASON_REFUSED",
        address: "10.0.0.1:80",
        notDelivered: true
      }
    })
    expect(ours(MicroError).decode(M.encode(M.fromObject(plain)).finish())).toEqual(transport)
  })

  it("framework error code is an int32 both ways (go-micro's errors.proto)", () => {
    const B = type("BadRequest")
    expect(B.fields.code!.type).toBe("int32")
    const js = B.encode(B.fromObject({ id: "go.micro", code: -7, detail: "d", status: "s" })).finish()
    expect(ours(BadRequest).decode(js)).toEqual(new BadRequest({ id: "go.micro", code: -7, detail: "d", status: "s" }))
    expect(B.toObject(B.decode(ours(BadRequest).encode(BadRequest.of("bad", "svc"))))).toEqual({
      id: "svc",
      code: 400,
      detail: "bad",
      status: "Bad Request"
    })
  })

  it("an enum value added by a newer peer decodes as the first value (open enums)", () => {
    // The newer peer's .proto: one more value in SaveRequest's `mood` enum.
    const newer = proto.replace(
      `SAVE_REQUEST_MOOD_MEH = 2; // "meh"\n`,
      `SAVE_REQUEST_MOOD_MEH = 2; // "meh"\n  SAVE_REQUEST_MOOD_GRUMPY = 3;\n`
    )
    expect(newer).not.toBe(proto)
    const T = protobuf.parse(newer, { keepCase: true }).root.lookupType("interop.SaveRequest")
    const plain = T.toObject(T.decode(ours(Account).encode(account)), { enums: Number })
    const bytes = T.encode(T.fromObject({ ...plain, mood: 3 })).finish()
    const decoded = ours(Account).decode(bytes)
    expect(decoded.mood).toBe("happy")
    expect({ ...decoded, mood: account.mood }).toEqual(account)
  })

  it("top-level wrappers: scalar responses and stream elements", () => {
    const Hello = type("HelloResponse")
    expect(Hello.toObject(Hello.decode(ours(Schema.String).encode("hi")))).toEqual({ value: "hi" })
    const Countdown = type("CountdownResponse")
    expect(ours(Schema.Int).decode(Countdown.encode(Countdown.fromObject({ value: -5 })).finish())).toBe(-5)
    const Upload = type("UploadRequest")
    const chunk = Schema.Struct({ chunk: Schema.Uint8ArrayFromSelf })
    expect(ours(chunk).decode(Upload.encode(Upload.fromObject({ chunk: [1, 2, 3] })).finish())).toEqual({
      chunk: Uint8Array.from([1, 2, 3])
    })
  })

  it("unpacked repeated scalars from other encoders are accepted", () => {
    const text =
      `syntax = "proto3"; message L { repeated int64 v = 1 [packed = false]; repeated double d = 2 [packed = false]; }`
    const L = protobuf.parse(text, { keepCase: true }).root.lookupType("L")
    const bytes = L.encode(L.fromObject({ v: [1, -2, 3], d: [0.5] })).finish()
    expect(ours(Schema.Struct({ v: Schema.Array(Schema.Int), d: Schema.Array(Schema.Number) })).decode(bytes)).toEqual({
      v: [1, -2, 3],
      d: [0.5]
    })
  })

  it("unsupported contracts throw ProtobufSchemaError from toProto", async () => {
    const Rpc = await import("@effect/rpc/Rpc")
    const RpcGroup = await import("@effect/rpc/RpcGroup")
    const bad = RpcGroup.make(Rpc.make("Bad", { payload: { data: Schema.Unknown } }))
    expect(() => Protobuf.toProto(bad)).toThrow(/data: UnknownKeyword/)
  })

  // `scripts/engines.sh install` (default list) installs protoc: required in CI, optional on a dev machine.
  const hasProtoc = spawnSync("protoc", ["--version"], { timeout: 10_000 }).status === 0
  const runProtoc = hasProtoc || process.env.CI === "true"
  it.skipIf(!runProtoc)("protoc accepts the .proto and decodes/encodes our bytes (framework errors included)", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-protoc-"))
    try {
      fs.writeFileSync(path.join(dir, "contract.proto"), proto)
      const protoc = (args: ReadonlyArray<string>, input: Uint8Array | string) =>
        spawnSync("protoc", [`--proto_path=${dir}`, ...args, "contract.proto"], { input, timeout: 20_000, cwd: dir })
      const decoded = protoc(["--decode=interop.SaveRequest"], ours(Account).encode(account))
      expect(decoded.status, decoded.stderr.toString()).toBe(0)
      const text = decoded.stdout.toString()
      expect(text).toContain("id: -9007199254740993")
      expect(text).toContain("unsigned: 18446744073709551615")
      expect(text).toContain("homes {\n  key: \"main\"")
      expect(text).toMatch(/shape \{\n\s+square \{/)
      const encoded = protoc(["--encode=interop.SaveRequest"], text)
      expect(encoded.status, encoded.stderr.toString()).toBe(0)
      expect(ours(Account).decode(new Uint8Array(encoded.stdout))).toEqual(account)

      // Framework errors: MicroError's `code` is an int32 (go-micro's errors.proto), both ways.
      const error = protoc(["--decode=interop.MicroError"], ours(MicroError).encode(BadRequest.of("bad input", "svc")))
      expect(error.status, error.stderr.toString()).toBe(0)
      expect(error.stdout.toString()).toBe(
        `badRequest {\n  id: "svc"\n  code: 400\n  detail: "bad input"\n  status: "Bad Request"\n}\n`
      )
      const fromProtoc = protoc(
        ["--encode=interop.MicroError"],
        `timeout { id: "go.micro.client" code: -7 detail: "d" status: "s" }`
      )
      expect(fromProtoc.status, fromProtoc.stderr.toString()).toBe(0)
      // code -7 as an int32 varint: field 2, wire type 0, ten bytes (sign-extended), as protoc writes it.
      expect([...new Uint8Array(fromProtoc.stdout)]).toContain(0x10)
      expect(ours(MicroError).decode(new Uint8Array(fromProtoc.stdout))).toEqual(
        new Timeout({ id: "go.micro.client", code: -7, detail: "d", status: "s" })
      )
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  // Server reflection (gRPC plugin) serves this descriptor: it must be what protoc makes of the same .proto.
  it.skipIf(!runProtoc)(
    "the FileDescriptorProto encoded from the contract equals protoc's for the emitted .proto",
    () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-descriptor-"))
      try {
        fs.writeFileSync(path.join(dir, "contract.proto"), proto)
        const result = spawnSync("protoc", [`--proto_path=${dir}`, "--descriptor_set_out=set.pb", "contract.proto"], {
          cwd: dir,
          timeout: 20_000
        })
        expect(result.stderr.toString()).toBe("")
        const descriptorRoot = protobuf.Root.fromJSON(
          JSON.parse(fs.readFileSync(require.resolve("protobufjs/google/protobuf/descriptor.json"), "utf8"))
        )
        const FileDescriptorSet = descriptorRoot.lookupType("google.protobuf.FileDescriptorSet")
        const FileDescriptorProto = descriptorRoot.lookupType("google.protobuf.FileDescriptorProto")
        const fromProtoc =
          FileDescriptorSet.toObject(FileDescriptorSet.decode(fs.readFileSync(path.join(dir, "set.pb"))))
            .file[0]
        const plan = planContract(Contract, { package: "interop", serviceName: "Demo" })
        const ours = FileDescriptorProto.toObject(FileDescriptorProto.decode(fileDescriptor(plan, "contract.proto")))
        expect(ours).toEqual(fromProtoc)
        // Not trivially equal: the contract has messages, enums, maps, proto3 optionals, oneofs and streams.
        const text = JSON.stringify(ours)
        for (const feature of ["mapEntry", "proto3Optional", "oneofDecl", "enumType", "serverStreaming"]) {
          expect(text).toContain(feature)
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true })
      }
    }
  )
})
