/**
 * `micro new`'s generator: the files of a service project, and writing them into a directory that does not
 * exist yet or is empty. The templates are TypeScript modules beside this one, so they ship in `dist` as code.
 */
import type { PlatformError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import { UsageError } from "../exit.js"
import { client } from "./client.js"
import { gitignore, tsconfig } from "./config.js"
import { contract } from "./contract.js"
import { demo } from "./demo.js"
import { handlers } from "./handlers.js"
import { invalidName, names } from "./names.js"
import { packageJson, type Versions } from "./packageJson.js"
import { readme } from "./readme.js"
import { server } from "./server.js"
import { serviceTest } from "./serviceTest.js"

/** The parts of effect-micro's own package.json the versions come from. */
export interface Manifest {
  readonly version: string
  readonly engines?: { readonly node?: string | undefined } | undefined
  readonly peerDependencies?: Readonly<Record<string, string>> | undefined
  readonly devDependencies?: Readonly<Record<string, string>> | undefined
}

/** One generated file; `path` is relative to the project's directory, with `/` separators. */
export interface File {
  readonly path: string
  readonly contents: string
}

/** Peers of effect-micro a project imports. */
export const runtimePackages = ["effect", "@effect/platform", "@effect/platform-node", "@effect/rpc"] as const

/** What a project builds, runs and tests with. */
export const toolPackages = ["typescript", "tsx", "vitest", "@effect/vitest", "@types/node"] as const

/** `version` is inside `range`, for caret ranges (`^3.22.2`, `^0.97.2`) and exact versions; false otherwise. */
export const inCaretRange = (version: string, range: string): boolean => {
  const parse = (text: string) => {
    const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(text)
    return match === null ? undefined : [Number(match[1]), Number(match[2]), Number(match[3])] as const
  }
  const have = parse(version)
  if (have === undefined) return false
  if (!range.startsWith("^")) return range === version
  const low = parse(range.slice(1))
  if (low === undefined) return false
  const [major, minor, patch] = have
  const [lowMajor, lowMinor, lowPatch] = low
  const atLeast = major > lowMajor ||
    (major === lowMajor && (minor > lowMinor || (minor === lowMinor && patch >= lowPatch)))
  // ^1.2.3 allows 1.x; ^0.2.3 allows 0.2.x; ^0.0.3 allows 0.0.3 only.
  const sameLine = lowMajor > 0
    ? major === lowMajor
    : lowMinor > 0
    ? major === 0 && minor === lowMinor
    : major === 0 && minor === 0 && patch === lowPatch
  return atLeast && sameLine
}

/**
 * The versions of a project, read from effect-micro's package.json so they follow each release: the peers at
 * the exact version effect-micro was tested with (its devDependencies) when that is inside its peer range, the
 * peer range itself otherwise; the tools at effect-micro's own versions.
 */
export const versions = (manifest: Manifest): Effect.Effect<Versions> =>
  Effect.suspend(() => {
    const peers = manifest.peerDependencies ?? {}
    const dev = manifest.devDependencies ?? {}
    const missing: Array<string> = []
    const dependencies: Record<string, string> = {}
    for (const name of runtimePackages) {
      const range = peers[name]
      const tested = dev[name]
      if (range === undefined) missing.push(`peerDependencies.${name}`)
      else dependencies[name] = tested !== undefined && inCaretRange(tested, range) ? tested : range
    }
    const devDependencies: Record<string, string> = {}
    for (const name of toolPackages) {
      const tested = dev[name]
      if (tested === undefined) missing.push(`devDependencies.${name}`)
      else devDependencies[name] = tested
    }
    // A packaging bug, not bad input: a defect.
    if (missing.length > 0) return Effect.dieMessage(`effect-micro's package.json lacks ${missing.join(", ")}`)
    return Effect.succeed({
      effectMicro: manifest.version,
      dependencies,
      devDependencies,
      node: manifest.engines?.node
    })
  })

/** The files of a project named `name`, or why the name cannot be used. */
export const files = (name: string, manifest: Manifest): Effect.Effect<ReadonlyArray<File>, UsageError> => {
  const problem = invalidName(name)
  if (problem !== undefined) return Effect.fail(new UsageError({ detail: problem }))
  const project = names(name)
  return Effect.map(versions(manifest), (versions): ReadonlyArray<File> => [
    { path: "package.json", contents: packageJson(project, versions) },
    { path: "tsconfig.json", contents: tsconfig() },
    { path: ".gitignore", contents: gitignore() },
    { path: "README.md", contents: readme(project) },
    { path: "src/contract.ts", contents: contract(project) },
    { path: "src/handlers.ts", contents: handlers(project) },
    { path: "src/server.ts", contents: server(project) },
    { path: "src/client.ts", contents: client(project) },
    { path: "src/demo.ts", contents: demo(project) },
    { path: "test/service.test.ts", contents: serviceTest(project) }
  ])
}

/**
 * Writes a project named `name` into `directory`, which must not exist or be empty (it is never overwritten,
 * not even in part: each file is created exclusively). Returns the files written.
 */
export const write = (options: {
  readonly name: string
  readonly directory: string
  readonly manifest: Manifest
}): Effect.Effect<ReadonlyArray<File>, UsageError | PlatformError, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const project = yield* files(options.name, options.manifest)
    const directory = options.directory
    if (yield* fs.exists(directory)) {
      const info = yield* fs.stat(directory)
      if (info.type !== "Directory") {
        return yield* new UsageError({ detail: `${directory} exists and is not a directory` })
      }
      const entries = yield* fs.readDirectory(directory)
      if (entries.length > 0) {
        return yield* new UsageError({
          detail: `${directory} is not empty (${entries.length} entries); choose another name or --dir`
        })
      }
    }
    for (const file of project) {
      const target = path.join(directory, ...file.path.split("/"))
      yield* fs.makeDirectory(path.dirname(target), { recursive: true })
      yield* fs.writeFileString(target, file.contents, { flag: "wx" })
    }
    return project
  })
