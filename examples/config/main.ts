/**
 * Run: npx tsx examples/config/main.ts [--config path] [--greeting.repeat=2]
 * then edit examples/config/config.yaml (or the file given) and watch the program react.
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { ConfigLive, program } from "./app.js"

const args = process.argv.slice(2)
const flag = args.indexOf("--config")
const file = flag >= 0 && args[flag + 1] !== undefined ? args[flag + 1]! : path.join(import.meta.dirname, "config.yaml")

program.pipe(Effect.provide(ConfigLive(file, args)), NodeRuntime.runMain)
