#!/usr/bin/env node
/**
 * `micro`: the command line of effect-micro (docs/cli.md). Lists, describes, calls and probes services
 * through the same registry and client runtime services use, with plain JSON in and out.
 *
 * Exit codes: 0 success, 1 the endpoint's typed error, 2 framework error, 3 unknown service or endpoint,
 * 64 bad usage (arguments, JSON). Failures are printed on stderr as one JSON line.
 */
import * as Command from "@effect/cli/Command"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { readFileSync } from "node:fs"
import { bench } from "./commands/bench.js"
import { call } from "./commands/call.js"
import { config } from "./commands/config.js"
import { describe } from "./commands/describe.js"
import { gateway } from "./commands/gateway.js"
import { health } from "./commands/health.js"
import { newProject } from "./commands/new.js"
import { publish } from "./commands/publish.js"
import { services } from "./commands/services.js"
import { stats } from "./commands/stats.js"
import { store } from "./commands/store.js"
import { subscribe } from "./commands/subscribe.js"
import { classify, ExitCode } from "./exit.js"

const micro = Command.make("micro").pipe(
  Command.withDescription("Inspect and call effect-micro services."),
  Command.withSubcommands([
    services,
    describe,
    call,
    bench,
    health,
    stats,
    publish,
    subscribe,
    store,
    config,
    newProject,
    gateway
  ])
)

// src/cli/main.ts and dist/cli/main.js are both two levels below the package root.
const { version } = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  readonly version: string
}

const cli = Command.run(micro, { name: "micro", version })

/** Prints a failure on stderr and returns its exit code (the CLI already printed its own usage errors). */
const report = (cause: Cause.Cause<unknown>): Effect.Effect<number> => {
  if (Cause.isInterruptedOnly(cause)) return Effect.succeed(130)
  return Option.match(Cause.failureOption(cause), {
    onNone: () => Effect.as(Console.error(Cause.pretty(cause)), ExitCode.frameworkError),
    onSome: (error) => {
      if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.usage)
      const { code, json } = classify(error)
      return Effect.as(Console.error(JSON.stringify(json)), code)
    }
  })
}

cli(process.argv).pipe(
  Effect.matchCauseEffect({ onSuccess: () => Effect.succeed(ExitCode.success), onFailure: report }),
  // Set, not `process.exit`: stdout may still be flushing into a pipe; the process ends once it drained.
  Effect.flatMap((code) => Effect.sync(() => (process.exitCode = code))),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
