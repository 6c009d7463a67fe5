/**
 * Generates docs/options.md: one table per exported `...Options` interface of the public modules (`src/*.ts`
 * except index.ts, `src/plugins/<name>/*.ts` except internal.ts and backend.ts), with each property's name,
 * declared type, default and description, all taken from the sources and their doc comments.
 *
 * A property's default is read from its doc comment: a sentence "Default: X." / "Default X." / "Defaults to X.",
 * or "(default X)" inside a sentence, or "`X` (default)". Properties without one show "—" (or "required").
 *
 * `npx tsx scripts/options-reference.ts` (npm run docs:options) writes the file; `--check` only compares it with
 * what would be written and exits 1 when it is stale (run by scripts/test.sh).
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const outFile = path.join(root, "docs", "options.md")
const maxTypeLength = 60

// The public modules, as module names relative to src/ ("Client", "plugins/etcd/EtcdRegistry").
const publicModules = (): Array<string> => {
  const src = path.join(root, "src")
  const top = readdirSync(src)
    .filter((file) => file.endsWith(".ts") && file !== "index.ts")
    .map((file) => file.slice(0, -3))
  const plugins = readdirSync(path.join(src, "plugins"), { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .flatMap((dir) =>
      readdirSync(path.join(src, "plugins", dir.name))
        .filter((file) => file.endsWith(".ts") && file !== "internal.ts" && file !== "backend.ts")
        .map((file) => `plugins/${dir.name}/${file.slice(0, -3)}`)
    )
  return [...top, ...plugins].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
}

const makeProgram = (files: ReadonlyArray<string>): ts.Program => {
  const configPath = path.join(root, "tsconfig.json")
  const config = ts.readConfigFile(configPath, (file) => ts.sys.readFile(file))
  if (config.error) {
    throw new Error(ts.flattenDiagnosticMessageText(config.error.messageText, "\n"))
  }
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root, undefined, configPath)
  return ts.createProgram({ rootNames: files, options: parsed.options })
}

interface Property {
  readonly name: string
  readonly optional: boolean
  readonly type: string
  readonly defaultValue: string | undefined
  readonly description: string
}

interface OptionsInterface {
  readonly module: string
  readonly name: string
  readonly description: string
  readonly extendsList: ReadonlyArray<{ readonly text: string; readonly target: string | undefined }>
  readonly properties: ReadonlyArray<Property>
}

const anchor = (module: string, name: string): string =>
  `${module}-${name}`.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/-$/, "")

const oneLine = (text: string): string => text.replace(/\s+/g, " ").trim()

const docText = (node: ts.Node): string =>
  oneLine(
    ts.getJSDocCommentsAndTags(node)
      .filter(ts.isJSDoc)
      .map((doc) => ts.getTextOfJSDocComment(doc.comment) ?? "")
      .join(" ")
  )

// The declared type as written, without `| undefined` (every optional property carries it for
// exactOptionalPropertyTypes), on one line and shortened when long.
const typeText = (node: ts.TypeNode | undefined, sourceFile: ts.SourceFile): string => {
  if (node === undefined) return "—"
  const members = ts.isUnionTypeNode(node)
    ? node.types.filter((member) => member.kind !== ts.SyntaxKind.UndefinedKeyword)
    : [node]
  const text = oneLine(members.map((member) => member.getText(sourceFile)).join(" | "))
  return text.length > maxTypeLength ? `${text.slice(0, maxTypeLength - 1).trimEnd()}…` : text
}

const memberType = (member: ts.TypeElement, sourceFile: ts.SourceFile): string => {
  if (ts.isPropertySignature(member)) return typeText(member.type, sourceFile)
  if (ts.isMethodSignature(member)) {
    const params = member.parameters.map((p) => p.getText(sourceFile)).join(", ")
    const text = oneLine(`(${params}) => ${member.type ? member.type.getText(sourceFile) : "void"}`)
    return text.length > maxTypeLength ? `${text.slice(0, maxTypeLength - 1).trimEnd()}…` : text
  }
  return oneLine(member.getText(sourceFile))
}

// Sentences of a doc comment: split after `.`, `!` or `?` followed by a space and a capital, a backtick,
// a quote or an opening parenthesis ("e.g. a" and "0.5" stay whole).
const sentences = (text: string): Array<string> =>
  text.length === 0 ? [] : text.split(/(?<=[.!?])\s+(?=[A-Z`"'(])/).map((s) => s.trim())

const stripPeriod = (text: string): string => text.replace(/\.$/, "").trim()

/**
 * The default documented in a property's doc comment, and the description without the sentence (or clause, or
 * parenthesis) that states it. Tried in this order over all sentences: a sentence "Default X." (a sentence
 * "Default X: what that means." stays in the description), a clause "; default X", "X by default", "(default X)"
 * (not after another option's name: "`seed` (default 1)" is the default of `seed`), "`X` (default)".
 */
const parseDefault = (text: string): { readonly defaultValue: string | undefined; readonly rest: string } => {
  const parts = sentences(text)
  const replacing = (i: number, sentence: string | undefined): string =>
    parts.flatMap((s, j) => (j !== i ? [s] : sentence === undefined || sentence.length === 0 ? [] : [sentence]))
      .join(" ")
  for (let i = 0; i < parts.length; i++) {
    const leading = /^Defaults?(?:\s*:|\s+to\b|\s+is\b)?\s+(.+)$/.exec(parts[i]!)
    if (leading === null) continue
    const value = stripPeriod(leading[1]!)
    // "Default true: the message is acknowledged ..." — a short value, then what it means.
    const explained = /^([^;:`]{1,30}?):\s+(\S.*)$/.exec(value)
    if (explained !== null) return { defaultValue: explained[1]!.trim(), rest: parts.join(" ") }
    return { defaultValue: value, rest: replacing(i, undefined) }
  }
  for (let i = 0; i < parts.length; i++) {
    const clause = /;\s+defaults?(?::|\s+to\b|\s+is\b)?\s+([^;]+?)\.?$/.exec(parts[i]!)
    if (clause === null) continue
    return { defaultValue: clause[1]!.trim(), rest: replacing(i, `${parts[i]!.slice(0, clause.index)}.`) }
  }
  for (let i = 0; i < parts.length; i++) {
    const byDefault = /(?:^|;\s+)((?:[\w`"'.-]+\s+){0,2}?[\w`"'.-]+)\s+by default\b/.exec(parts[i]!)
    if (byDefault === null) continue
    const value = byDefault[1]!
    // "`package` line; none by default." loses the clause; "Off by default: ..." stays.
    const clause = /;\s+[^;]+ by default\.?$/.exec(parts[i]!)
    const rest = clause === null ? parts.join(" ") : replacing(i, `${parts[i]!.slice(0, clause.index)}.`)
    return { defaultValue: value.charAt(0).toLowerCase() + value.slice(1), rest }
  }
  for (let i = 0; i < parts.length; i++) {
    const sentence = parts[i]!
    const parenthesised = /(`[^`]*`)?\s*\(defaults?(?::|\s+to)?\s+([^()]+)\)/.exec(sentence)
    if (parenthesised === null || parenthesised[1] !== undefined) continue
    const value = parenthesised[2]!.split(/,\s/)[0]!.trim()
    const remaining = sentence.replace(parenthesised[0], "").replace(/\s+([.,;:])/g, "$1")
    return { defaultValue: value, rest: replacing(i, parenthesised[2]!.includes(",") ? sentence : remaining) }
  }
  for (const sentence of parts) {
    const marked = /(`[^`]+`)\s+\(default\)/.exec(sentence)
    if (marked !== null) return { defaultValue: marked[1]!, rest: parts.join(" ") }
  }
  return { defaultValue: undefined, rest: text }
}

const collect = (program: ts.Program, modules: ReadonlyArray<string>): Array<OptionsInterface> => {
  const checker = program.getTypeChecker()
  const moduleOf = new Map<string, string>()
  for (const module of modules) moduleOf.set(path.join(root, "src", `${module}.ts`), module)
  const result: Array<OptionsInterface> = []
  for (const module of modules) {
    const sourceFile = program.getSourceFile(path.join(root, "src", `${module}.ts`))
    if (sourceFile === undefined) throw new Error(`not in the program: src/${module}.ts`)
    for (const statement of sourceFile.statements) {
      if (!ts.isInterfaceDeclaration(statement) || !statement.name.text.endsWith("Options")) continue
      if (!statement.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword)) continue
      const extendsList = (statement.heritageClauses ?? []).flatMap((clause) =>
        clause.types.map((heritage) => {
          let symbol = checker.getSymbolAtLocation(heritage.expression)
          if (symbol !== undefined && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol)
          const declaration = symbol?.declarations?.find(ts.isInterfaceDeclaration)
          const target = declaration === undefined
            ? undefined
            : moduleOf.get(path.resolve(declaration.getSourceFile().fileName))
          return {
            text: oneLine(heritage.getText(sourceFile)),
            target: target === undefined ? undefined : anchor(target, declaration!.name.text)
          }
        })
      )
      const properties = statement.members.flatMap((member): Array<Property> => {
        if (member.name === undefined) return []
        const { defaultValue, rest } = parseDefault(docText(member))
        return [{
          name: member.name.getText(sourceFile),
          optional: member.questionToken !== undefined,
          type: memberType(member, sourceFile),
          defaultValue,
          description: rest
        }]
      })
      result.push({ module, name: statement.name.text, description: docText(statement), extendsList, properties })
    }
  }
  return result
}

const cell = (text: string): string => text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|")

const code = (text: string): string => (text.includes("`") ? `\`\` ${text} \`\`` : `\`${text}\``)

const render = (interfaces: ReadonlyArray<OptionsInterface>): string => {
  const modules = [...new Set(interfaces.map((i) => i.module))]
  const lines: Array<string> = [
    "# Options reference",
    "",
    "<!-- Generated by scripts/options-reference.ts from the doc comments of src/: do not edit. -->",
    "",
    "Every options type a user passes (client, server, defaults, each layer), one table each: the option, its",
    "declared type, its default and what it does. Generated from the sources and their doc comments by",
    "`npm run docs:options` (`npx tsx scripts/options-reference.ts`); do not edit it by hand: fix the doc",
    "comment and regenerate. `scripts/test.sh` fails when this file is stale.",
    "",
    "\"required\" marks an option that must be given; \"—\" an option whose default is not documented (off, or",
    "decided by the layer: see the module's API reference in `api/`). An interface that extends another lists",
    "only its own options.",
    "",
    "## Contents",
    ""
  ]
  for (const module of modules) {
    const own = interfaces.filter((i) => i.module === module)
    lines.push(
      `- [${module}](#${anchor(module, "")}): ${own.map((i) => `[${i.name}](#${anchor(module, i.name)})`).join(", ")}`
    )
  }
  for (const module of modules) {
    lines.push("", `<a id="${anchor(module, "")}"></a>`, "", `## ${module}`)
    for (const options of interfaces.filter((i) => i.module === module)) {
      lines.push("", `<a id="${anchor(module, options.name)}"></a>`, "", `### ${options.name}`, "")
      if (options.description.length > 0) lines.push(options.description, "")
      if (options.extendsList.length > 0) {
        const parents = options.extendsList.map((parent) =>
          parent.target === undefined ? code(parent.text) : `[${code(parent.text)}](#${parent.target})`
        )
        lines.push(`Extends ${parents.join(", ")}.`, "")
      }
      if (options.properties.length === 0) {
        lines.push("No options of its own.")
        continue
      }
      lines.push("| option | type | default | what it does |", "| --- | --- | --- | --- |")
      for (const property of options.properties) {
        const defaultValue = property.defaultValue !== undefined
          ? cell(property.defaultValue)
          : property.optional
          ? "—"
          : "required"
        const description = property.description.length > 0 ? cell(property.description) : "—"
        lines.push(`| \`${property.name}\` | ${cell(code(property.type))} | ${defaultValue} | ${description} |`)
      }
    }
  }
  return `${lines.join("\n")}\n`
}

const main = (): void => {
  const modules = publicModules()
  const program = makeProgram(modules.map((module) => path.join(root, "src", `${module}.ts`)))
  const interfaces = collect(program, modules)
  const markdown = render(interfaces)
  const properties = interfaces.reduce((n, i) => n + i.properties.length, 0)
  const missingDefault = interfaces.reduce(
    (n, i) => n + i.properties.filter((p) => p.optional && p.defaultValue === undefined).length,
    0
  )
  const missingDescription = interfaces.reduce(
    (n, i) => n + i.properties.filter((p) => p.description.length === 0).length,
    0
  )
  const relative = path.relative(root, outFile)
  if (process.argv.includes("--check")) {
    let current: string | undefined
    try {
      current = readFileSync(outFile, "utf8")
    } catch {
      current = undefined
    }
    if (current !== markdown) {
      console.error(
        `${relative} is ${
          current === undefined ? "missing" : "stale"
        }: run npm run docs:options (npx tsx scripts/options-reference.ts) and commit it`
      )
      process.exit(1)
    }
    console.log(`${relative} is up to date (${interfaces.length} options interfaces, ${properties} options)`)
    return
  }
  writeFileSync(outFile, markdown)
  console.log(
    `wrote ${relative}: ${interfaces.length} options interfaces, ${properties} options ` +
      `(${missingDefault} optional without a documented default, ${missingDescription} without a description)`
  )
}

main()
