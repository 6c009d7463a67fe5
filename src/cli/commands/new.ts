/** `micro new <name> [--dir path]`: writes a ready service project (templates in ../scaffold). */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { fileURLToPath } from "node:url"
import * as options from "../options.js"
import * as output from "../output.js"
import * as project from "../scaffold/project.js"

// src/cli/commands/new.ts and dist/cli/commands/new.js are both three levels below the package root.
const manifestPath = fileURLToPath(new URL("../../../package.json", import.meta.url))

/** effect-micro's own package.json, where the generated project's versions come from. */
export const readManifest: Effect.Effect<project.Manifest, never, FileSystem.FileSystem> = Effect.flatMap(
  FileSystem.FileSystem,
  (fs) => fs.readFileString(manifestPath)
).pipe(Effect.map((text) => JSON.parse(text) as project.Manifest), Effect.orDie)

export const newProject = Command.make(
  "new",
  {
    ...options.output,
    name: Args.text({ name: "name" }).pipe(
      Args.withDescription("The project's name: its package name and the service name it registers.")
    ),
    dir: Options.text("dir").pipe(
      Options.optional,
      Options.withDescription("Directory to write the project into (default ./<name>); must not exist or be empty.")
    )
  },
  (config) =>
    Effect.gen(function*() {
      const path = yield* Path.Path
      const directory = Option.getOrElse(config.dir, () => config.name)
      const written = yield* project.write({ name: config.name, directory, manifest: yield* readManifest })
      const files = written.map((file) => file.path)
      if (config.asJson) return yield* output.json({ name: config.name, directory: path.resolve(directory), files })
      const relative = path.relative(process.cwd(), path.resolve(directory))
      const cd = relative === "" ? "." : relative.startsWith("..") ? path.resolve(directory) : relative
      yield* output.text(
        [
          `created ${config.name} in ${cd}:`,
          ...files.map((file) => `  ${file}`),
          "",
          "next steps:",
          `  cd ${cd.includes(" ") ? JSON.stringify(cd) : cd}`,
          "  npm install",
          "  npm start      # the server and a client calling it",
          "  npm test       # the service tested in memory"
        ].join("\n")
      )
    })
).pipe(Command.withDescription("Create a service project: contract, handlers, server, client, tests."))
