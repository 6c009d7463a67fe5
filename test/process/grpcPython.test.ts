/**
 * A Python gRPC client (Debian's python3-grpcio, stubs compiled from our emitted `.proto` by
 * python3-grpc-tools: `scripts/engines.sh install grpcpy`) calls a `GrpcServer` in this process: the four
 * call shapes, metadata, a typed error decoded from `grpc-status-details-bin`, a framework error's status
 * code, and a deadline.
 *
 * Debian's `grpc_tools` bundles protoc 3.5, which predates proto3 `optional`: the file it compiles is emitted
 * without the framework error messages (`frameworkErrors: false`, whose optional fields it would reject);
 * the contract's own messages are unchanged.
 */
import { describe, expect, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Protobuf, Registry } from "../../src/index.js"
import * as GrpcServer from "../../src/plugins/grpc/GrpcServer.js"
import { eventually } from "../support/eventually.js"
import { failByMetadata, handlers, Interop, interrupted } from "../support/grpcContract.js"

// Debian's interpreter, where the packages are installed (not a pyenv shim on PATH).
const PYTHON = "/usr/bin/python3"
const fixture = path.resolve(import.meta.dirname, "fixtures/grpcClient.py")

const STATUS_PROTO = `syntax = "proto3";
package google.rpc;
// Wire-compatible with google.protobuf.Any and google.rpc.Status.
message Any { string type_url = 1; bytes value = 2; }
message Status { int32 code = 1; string message = 2; repeated Any details = 3; }
`

/** Compiles the stubs into a temp dir (removed with the scope). */
const compileStubs = Effect.acquireRelease(
  Effect.sync(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-grpcpy-"))
    fs.writeFileSync(
      path.join(dir, "contract.proto"),
      Protobuf.toProto(Interop, { package: "interop.v1", serviceName: "Interop", frameworkErrors: false })
    )
    fs.writeFileSync(path.join(dir, "status.proto"), STATUS_PROTO)
    const result = spawnSync(
      PYTHON,
      [
        "-m",
        "grpc_tools.protoc",
        `-I${dir}`,
        `--python_out=${dir}`,
        `--grpc_python_out=${dir}`,
        "contract.proto",
        "status.proto"
      ],
      { cwd: dir, encoding: "utf8", timeout: 30_000 }
    )
    if (result.status !== 0) throw new Error(`grpc_tools.protoc failed: ${result.stderr}`)
    return dir
  }),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

/** Runs the client script (asynchronously: the server answers from this process), killed with the scope. */
const runClient = (dir: string, address: string) =>
  Effect.acquireRelease(
    Effect.sync(() => spawn(PYTHON, [fixture, dir, address], { stdio: ["ignore", "pipe", "pipe"] })),
    (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL"))
  ).pipe(
    Effect.flatMap((child) =>
      Effect.async<string, Error>((resume) => {
        let stdout = ""
        let stderr = ""
        child.stdout.on("data", (data) => (stdout += data))
        child.stderr.on("data", (data) => (stderr += data))
        child.once(
          "exit",
          (code) =>
            resume(
              code === 0 ? Effect.succeed(stdout) : Effect.fail(new Error(`python client exited ${code}: ${stderr}`))
            )
        )
      })
    ),
    Effect.timeoutFail({ duration: "60 seconds", onTimeout: () => new Error("python client did not finish in 60 s") })
  )

const hasPython = fs.existsSync("/usr/lib/python3/dist-packages/grpc/__init__.py") &&
  fs.existsSync("/usr/lib/python3/dist-packages/grpc_tools")

const Served = GrpcServer.layer(Interop, {
  name: "interop",
  package: "interop.v1",
  serviceName: "Interop",
  address: "127.0.0.1:0",
  register: false
}).pipe(Layer.provide(handlers), Layer.provide(failByMetadata), Layer.provide(Registry.layerMemory))

describe.skipIf(!hasPython && process.env.CI !== "true")("GrpcServer ← Python grpcio client", () => {
  layer(Served, { timeout: 90_000, excludeTestServices: true })((it) => {
    it.scoped("four shapes, metadata, typed and framework errors, deadline", () =>
      Effect.gen(function*() {
        const server = yield* GrpcServer.GrpcServer
        const dir = yield* compileStubs
        const result = JSON.parse(yield* runClient(dir, server.listenAddress))
        expect(result.hello).toEqual({ greeting: "Hello Grace", caller: "python" })
        expect(result.count).toEqual([1, 2, 3, 4])
        expect(result.sum).toEqual({ total: 5050, count: 100 })
        expect(result.chat).toEqual(["PING", "PONG"])
        expect(result.typed).toEqual({
          code: "UNKNOWN",
          details: "UserNotFound",
          type_url: "type.googleapis.com/interop.v1.UserNotFound",
          error: { id: "nobody", reason: "no such user" }
        })
        expect(result.framework).toEqual({ code: "NOT_FOUND", details: "rejected by middleware (NotFound)" })
        expect(result.deadline).toEqual({ code: "DEADLINE_EXCEEDED" })
        yield* eventually(Effect.sync(() => interrupted.has("python-deadline")), (done) => done)
      }))
  })
})
