/**
 * Non-interactive tour: runs the example program against a temp copy of config.yaml, then edits that
 * file the way an editor would (rename-over), including a broken edit, and exits.
 * Run: npx tsx examples/config/demo.ts
 */
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { ConfigLive, program } from "./app.js"

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "effect-micro-config-example-"))
const file = path.join(dir, "config.yaml")
fs.copyFileSync(path.join(import.meta.dirname, "config.yaml"), file)

const edit = (description: string, content: string) =>
  Effect.gen(function*() {
    yield* Effect.sleep("300 millis") // let the previous change print first (this is a demo, not a test)
    yield* Effect.log(`--- ${description}`)
    fs.writeFileSync(`${file}.tmp`, content)
    fs.renameSync(`${file}.tmp`, file)
  })

const script = Effect.gen(function*() {
  yield* edit("repeat: 2", "greeting:\n  message: Hi\n  repeat: 2\nserver:\n  host: 127.0.0.1\n  port: 8080\n")
  yield* edit("broken YAML (the last good config stays)", "greeting: [unclosed\n")
  yield* edit("repeat: 9 (fails the schema: 1..5)", "greeting:\n  message: Hi\n  repeat: 9\n")
  yield* edit("fixed", "greeting:\n  message: Bonjour\n  repeat: 3\n")
  yield* Effect.sleep("300 millis")
})

Effect.raceFirst(program, script).pipe(
  Effect.provide(ConfigLive(file, [])),
  Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))),
  Effect.runPromise
).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
