/**
 * Typechecks every ```ts block of README.md, docs/*.md and examples/*\/README.md against the sources, so that
 * documented APIs cannot drift from the real ones. Run by scripts/test.sh: `npx tsx scripts/check-docs.ts`.
 *
 * Blocks are fragments, so each is compiled as its own module with:
 * - the public modules and the usual `effect` modules in scope (unless the block imports the name itself);
 * - its top level inside `Effect.gen(function*() { ... })` when it uses `yield*` outside any generator;
 * - the README's `Greeter`/`GreeterLive` and an `AuthLive` (scripts/docs-fixtures.ts) when it uses them;
 * - names it only refers to (a contract from an earlier block, a `bill` function) declared `any`,
 *   found by a first compile (TS2304). Everything else must typecheck: wrong argument orders, renamed options,
 *   missing members are errors.
 * A block preceded by `<!-- docs-check: skip -->` is not checked (say why next to it).
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.join(root, ".docs-check")

const effectNames = [
  "Cause",
  "Chunk",
  "Clock",
  "Config",
  "Console",
  "Context",
  "Data",
  "Duration",
  "Effect",
  "Either",
  "Exit",
  "Fiber",
  "Layer",
  "Option",
  "Redacted",
  "Ref",
  "Schedule",
  "Schema",
  "Scope",
  "Stream",
  "TestClock"
]
/** Exported by scripts/docs-fixtures.ts. */
const fixtureNames = [
  "AuthLive",
  "Greeter",
  "GreeterLive",
  "NameRejected",
  "HungInventorySystem",
  "Inventory",
  "InventoryDown",
  "InventoryLive",
  "Item",
  "Orders",
  "OrdersLive",
  "System",
  "UnknownSku"
]
const publicNames = readdirSync(path.join(root, "src"))
  .filter((file) => file.endsWith(".ts") && file !== "index.ts")
  .map((file) => file.slice(0, -3))

interface Block {
  readonly source: string
  readonly line: number
  readonly code: string
}

const markdownFiles = [
  "README.md",
  ...readdirSync(path.join(root, "docs")).filter((f) => f.endsWith(".md")).map((f) => `docs/${f}`),
  ...readdirSync(path.join(root, "examples")).map((d) => `examples/${d}/README.md`).filter((f) => {
    try {
      readFileSync(path.join(root, f))
      return true
    } catch {
      return false
    }
  })
]

const blocks: Array<Block> = []
for (const file of markdownFiles) {
  const lines = readFileSync(path.join(root, file), "utf8").split("\n")
  for (let i = 0; i < lines.length; i++) {
    if (!/^```(ts|typescript)\s*$/.test(lines[i]!)) continue
    const skip = i > 0 && lines[i - 1]!.includes("docs-check: skip")
    const start = i
    const body: Array<string> = []
    for (i++; i < lines.length && !lines[i]!.startsWith("```"); i++) body.push(lines[i]!)
    if (!skip) blocks.push({ source: file, line: start + 1, code: body.join("\n") })
  }
}

/** The module for one block; `declared`: names to declare `any`. */
const moduleOf = (block: Block, declared: ReadonlySet<string>): string => {
  const lines = block.code.split("\n")
  const imports = lines.filter((l) => /^import\s/.test(l))
  const body = lines.filter((l) => !/^import\s/.test(l)).join("\n")
  const imported = new Set(imports.flatMap((l) => [...l.matchAll(/\b([A-Za-z_$][\w$]*)\b/g)].map((m) => m[1]!)))
  const prelude = [
    `import { ${effectNames.filter((n) => !imported.has(n)).join(", ")} } from "effect"`,
    `import { ${publicNames.filter((n) => !imported.has(n)).join(", ")} } from "effect-micro"`
  ]
  const defined = (name: string) => new RegExp(`\\b(const|let|class|function|interface|type)\\s+${name}\\b`).test(body)
  const fixtures = fixtureNames.filter((n) => !imported.has(n) && !defined(n) && new RegExp(`\\b${n}\\b`).test(body))
  if (fixtures.length > 0) prelude.push(`import { ${fixtures.join(", ")} } from "../scripts/docs-fixtures.js"`)
  if (!imported.has("Rpc")) prelude.push(`import * as Rpc from "@effect/rpc/Rpc"`)
  if (!imported.has("RpcGroup")) prelude.push(`import * as RpcGroup from "@effect/rpc/RpcGroup"`)
  const declarations = [...declared].map((name) => `declare const ${name}: any\ntype ${name} = any`)
  const wrap = /\byield\*/.test(body) && !/function\s*\*/.test(body)
  return [
    `// ${block.source}:${block.line}`,
    ...imports,
    ...prelude,
    ...declarations,
    wrap ? `export const __block = Effect.gen(function*() {\n${body}\n})` : body,
    "export {}"
  ].join("\n")
}

const tsconfig = {
  extends: "../tsconfig.json",
  compilerOptions: { noUnusedLocals: false, noImplicitAny: false, noEmit: true, baseUrl: "..", isolatedModules: false },
  include: ["./*.ts"]
}

/** Runs tsc; returns its diagnostics grouped by block file. */
const compile = (): Map<string, Array<string>> => {
  let text = ""
  try {
    execFileSync(process.execPath, [path.join(root, "node_modules/typescript/bin/tsc"), "-p", out], {
      encoding: "utf8"
    })
  } catch (error) {
    text = String((error as { stdout?: string }).stdout ?? error)
  }
  const byFile = new Map<string, Array<string>>()
  for (const line of text.split("\n")) {
    const match = line.match(/^\.docs-check\/(block-\d+\.ts)\((\d+),\d+\): (.*)$/) ??
      line.match(/^(block-\d+\.ts)\((\d+),\d+\): (.*)$/)
    if (match === null) continue
    const list = byFile.get(match[1]!) ?? []
    list.push(`${match[3]}`)
    byFile.set(match[1]!, list)
  }
  return byFile
}

rmSync(out, { recursive: true, force: true })
mkdirSync(out)
writeFileSync(path.join(out, "tsconfig.json"), JSON.stringify(tsconfig, null, 2))
const declared = blocks.map(() => new Set<string>())
const write = () =>
  blocks.forEach((block, i) => writeFileSync(path.join(out, `block-${i}.ts`), moduleOf(block, declared[i]!)))

write()
for (const [file, messages] of compile()) {
  const index = Number(file.match(/\d+/)![0])
  for (const message of messages) {
    const name = message.match(/Cannot find name '([\w$]+)'/)?.[1] ??
      message.match(/shorthand property '([\w$]+)'/)?.[1]
    if (name !== undefined) declared[index]!.add(name)
  }
}
write()
const errors = compile()
let failed = 0
for (const [file, messages] of errors) {
  const block = blocks[Number(file.match(/\d+/)![0])]!
  failed++
  console.error(`${block.source}:${block.line}: ${messages.length} error(s) in this block:\n  ${messages.join("\n  ")}`)
}
if (failed === 0) {
  rmSync(out, { recursive: true, force: true })
  console.log(`docs-check: ${blocks.length} code blocks typecheck (${markdownFiles.length} files)`)
} else {
  console.error(`docs-check: ${failed} of ${blocks.length} blocks fail (modules kept in .docs-check/)`)
  process.exitCode = 1
}
