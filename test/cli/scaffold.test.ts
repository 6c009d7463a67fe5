/**
 * `micro new`'s generator, in process: the files it writes, the versions in the generated package.json, name
 * validation, the refusal to write into a non-empty directory, and the generated contract and handlers run
 * against these sources on `Defaults.layerTest`. scripts/pack-check.sh goes further: it generates a project
 * with the packed tarball's `micro`, installs it, typechecks it, runs its tests and `npm start`.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import type * as Rpc from "@effect/rpc/Rpc"
import type * as RpcGroup from "@effect/rpc/RpcGroup"
import { describe, expect, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { newProject, readManifest } from "../../src/cli/commands/new.js"
import { classify, ExitCode, UsageError } from "../../src/cli/exit.js"
import { invalidName, names } from "../../src/cli/scaffold/names.js"
import * as project from "../../src/cli/scaffold/project.js"
import { Client, Defaults, Server } from "../../src/index.js"

const root = path.resolve(import.meta.dirname, "../..")
const manifest = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as project.Manifest

/** The generated client's shape, for the modules imported from the generated project (typed `unknown`). */
interface GeneratedClient {
  readonly Hello: (payload: { readonly name: string }) => Effect.Effect<{ readonly message: string }, unknown>
  readonly Countdown: (payload: { readonly from: number }) => Stream.Stream<{ readonly remaining: number }, unknown>
}

const expectedFiles = [
  ".gitignore",
  "README.md",
  "package.json",
  "src/client.ts",
  "src/contract.ts",
  "src/demo.ts",
  "src/handlers.ts",
  "src/server.ts",
  "test/service.test.ts",
  "tsconfig.json"
]

/** A fresh temporary directory, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "micro-new-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** Every file under `dir`, relative, sorted. */
const listFiles = (dir: string) =>
  Effect.promise(async () =>
    (await fs.readdir(dir, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)).split(path.sep).join("/"))
      .sort()
  )

const write = (name: string, directory: string) =>
  project.write({ name, directory, manifest }).pipe(Effect.provide(NodeContext.layer))

describe("micro new", () => {
  it.scoped("writes the project's files, named after it", () =>
    Effect.gen(function*() {
      const dir = path.join(yield* tempDir, "order-service")
      const written = yield* write("order-service", dir)
      expect(written.map((file) => file.path).sort()).toEqual(expectedFiles)
      expect(yield* listFiles(dir)).toEqual(expectedFiles)
      const read = (file: string) => Effect.promise(() => fs.readFile(path.join(dir, file), "utf8"))
      expect(yield* read("src/contract.ts")).toContain("export const OrderServiceApi = RpcGroup.make(")
      expect(yield* read("src/server.ts")).toContain(`name: "order-service"`)
      expect(yield* read("src/client.ts")).toContain(`Client.make(OrderServiceApi, { service: "order-service" })`)
      expect(yield* read("test/service.test.ts")).toContain("Defaults.layerTest")
      const readme = yield* read("README.md")
      expect(readme).toContain("npm start")
      expect(readme).toContain("npm test")
      const tsconfig = JSON.parse(yield* read("tsconfig.json"))
      expect(tsconfig.compilerOptions).toMatchObject({ module: "NodeNext", moduleResolution: "NodeNext", strict: true })
    }))

  it.effect("package.json: effect-micro ^<its version>, peers at tested versions inside its peer ranges", () =>
    Effect.gen(function*() {
      const files = yield* project.files("demo-svc", manifest)
      const pkg = JSON.parse(files.find((file) => file.path === "package.json")!.contents)
      expect(pkg).toMatchObject({ name: "demo-svc", private: true, type: "module" })
      expect(pkg.scripts).toMatchObject({ start: "tsx src/demo.ts", test: "vitest run", typecheck: "tsc --noEmit" })
      expect(pkg.dependencies["effect-micro"]).toBe(`^${manifest.version}`)
      for (const name of project.runtimePackages) {
        const range = manifest.peerDependencies![name]!
        expect(pkg.dependencies[name], name).toBe(manifest.devDependencies![name])
        expect(project.inCaretRange(pkg.dependencies[name], range), `${name} ${pkg.dependencies[name]} in ${range}`)
          .toBe(true)
      }
      for (const name of project.toolPackages) {
        expect(pkg.devDependencies[name], name).toBe(manifest.devDependencies![name])
      }
    }))

  it.effect("a tested version outside the peer range gives way to the range; a missing one is a defect", () =>
    Effect.gen(function*() {
      const drifted = {
        ...manifest,
        devDependencies: { ...manifest.devDependencies, effect: "4.0.0" }
      }
      const versions = yield* project.versions(drifted)
      expect(versions.dependencies.effect).toBe(manifest.peerDependencies!.effect)
      const { vitest: _, ...withoutVitest } = manifest.devDependencies!
      const exit = yield* Effect.exit(project.versions({ ...manifest, devDependencies: withoutVitest }))
      expect(String(exit)).toContain("devDependencies.vitest")
    }))

  it("caret ranges", () => {
    expect(project.inCaretRange("3.22.4", "^3.22.2")).toBe(true)
    expect(project.inCaretRange("3.23.0", "^3.22.2")).toBe(true)
    expect(project.inCaretRange("3.22.1", "^3.22.2")).toBe(false)
    expect(project.inCaretRange("4.0.0", "^3.22.2")).toBe(false)
    expect(project.inCaretRange("0.97.9", "^0.97.2")).toBe(true)
    expect(project.inCaretRange("0.98.0", "^0.97.2")).toBe(false)
    expect(project.inCaretRange("0.0.4", "^0.0.3")).toBe(false)
    expect(project.inCaretRange("1.2.3", "1.2.3")).toBe(true)
    expect(project.inCaretRange("1.2.3-beta.1", "^1.2.0")).toBe(false)
    expect(project.inCaretRange("1.2.3", ">=1.0.0")).toBe(false)
  })

  it("names: npm package, directory, DNS label and identifier at once", () => {
    for (const good of ["a", "greeter", "order-service", "svc2", "a-1-b", "x".repeat(63)]) {
      expect(invalidName(good), good).toBeUndefined()
    }
    for (
      const bad of ["", "Greeter", "order_service", "-svc", "svc-", "a--b", "2svc", "my svc", "@s/x", "x".repeat(64)]
    ) {
      expect(invalidName(bad), bad).toBeTypeOf("string")
    }
    expect(names("order-service").contract).toBe("OrderServiceApi")
    expect(names("a-1-b").contract).toBe("A1BApi")
  })

  it.scoped("an invalid name is a usage error (exit 64) and writes nothing", () =>
    Effect.gen(function*() {
      const dir = path.join(yield* tempDir, "Bad_Name")
      const error = yield* Effect.flip(write("Bad_Name", dir))
      expect(error).toBeInstanceOf(UsageError)
      expect((error as UsageError).detail).toContain(`invalid project name "Bad_Name"`)
      expect(classify(error).code).toBe(ExitCode.usage)
      expect(yield* Effect.promise(() => fs.access(dir).then(() => true, () => false))).toBe(false)
    }))

  it.scoped("refuses a non-empty directory (exit 64) and leaves it as it was; an empty one is fine", () =>
    Effect.gen(function*() {
      const base = yield* tempDir
      const full = path.join(base, "full")
      yield* Effect.promise(() => fs.mkdir(full))
      yield* Effect.promise(() => fs.writeFile(path.join(full, "package.json"), "mine"))
      const error = yield* Effect.flip(write("demo-svc", full))
      expect(error).toBeInstanceOf(UsageError)
      expect((error as UsageError).detail).toContain("is not empty")
      expect(classify(error).code).toBe(ExitCode.usage)
      expect(yield* listFiles(full)).toEqual(["package.json"])
      expect(yield* Effect.promise(() => fs.readFile(path.join(full, "package.json"), "utf8"))).toBe("mine")

      const file = path.join(base, "a-file")
      yield* Effect.promise(() => fs.writeFile(file, ""))
      const notDirectory = yield* Effect.flip(write("demo-svc", file))
      expect((notDirectory as UsageError).detail).toContain("is not a directory")

      const empty = path.join(base, "empty")
      yield* Effect.promise(() => fs.mkdir(empty))
      yield* write("demo-svc", empty)
      expect(yield* listFiles(empty)).toEqual(expectedFiles)
    }))

  it.scoped("the command: `micro new <name> --dir <path>`, versions from effect-micro's package.json", () =>
    Effect.gen(function*() {
      expect(yield* readManifest.pipe(Effect.provide(NodeContext.layer))).toEqual(manifest)
      const dir = path.join(yield* tempDir, "elsewhere")
      const run = Command.run(newProject, { name: "micro", version: manifest.version })
      yield* run(["node", "micro", "--json", "--dir", dir, "greeter"]).pipe(Effect.provide(NodeContext.layer))
      expect(yield* listFiles(dir)).toEqual(expectedFiles)
      const pkg = JSON.parse(yield* Effect.promise(() => fs.readFile(path.join(dir, "package.json"), "utf8")))
      expect(pkg.name).toBe("greeter")
    }))

  it.scoped("the generated contract and handlers serve calls (on these sources, in memory)", () =>
    Effect.gen(function*() {
      const dir = path.join(yield* tempDir, "demo-svc")
      yield* write("demo-svc", dir)
      // The generated modules import effect, @effect/rpc ... from the project's node_modules: this repository's.
      yield* Effect.promise(() => fs.symlink(path.join(root, "node_modules"), path.join(dir, "node_modules"), "dir"))
      const contract = yield* Effect.promise(() => import(path.join(dir, "src/contract.ts")))
      const { HandlersLive } = yield* Effect.promise(() => import(path.join(dir, "src/handlers.ts")))
      const Api = contract.DemoSvcApi as RpcGroup.RpcGroup<Rpc.Any>
      const system = Server.layer(Api, { name: "demo-svc" }).pipe(
        Layer.provide(HandlersLive as Layer.Layer<never>),
        Layer.provideMerge(Defaults.layerTest)
      )
      yield* Effect.gen(function*() {
        const client = (yield* Client.make(Api, { service: "demo-svc" })) as unknown as GeneratedClient
        expect((yield* client.Hello({ name: "Ada" })).message).toBe("Hello, Ada!")
        const rejected = yield* Effect.flip(client.Hello({ name: "" }))
        expect(rejected).toBeInstanceOf(contract.NameRejected)
        const ticks = yield* Stream.runCollect(client.Countdown({ from: 2 }))
        expect(Chunk.toReadonlyArray(ticks).map((tick) => tick.remaining)).toEqual([2, 1, 0])
      }).pipe(Effect.provide(system))
    }))
})
