/**
 * A one-line progress indicator on stderr for long commands (bench, subscribe, watch): redrawn a few times a
 * second while the command runs, erased when it ends. Only on a terminal: piped output stays clean.
 */
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"

const frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]
const clearLine = "\r\u001b[2K"

/** Shows `render()` (one short line) until the scope closes. */
export const show = (render: () => string): Effect.Effect<void, never, Scope.Scope> => {
  if (process.stderr.isTTY !== true) return Effect.void
  let frame = 0
  const draw = Effect.sync(() => {
    const columns = process.stderr.columns ?? 80
    const line = `${frames[frame++ % frames.length]} ${render()}`
    process.stderr.write(clearLine + line.slice(0, Math.max(columns - 1, 10)))
  })
  return Effect.asVoid(Effect.acquireRelease(
    Effect.forkDaemon(Effect.repeat(draw, Schedule.spaced("125 millis"))),
    (fiber) => Effect.zipRight(Fiber.interrupt(fiber), Effect.sync(() => process.stderr.write(clearLine)))
  ))
}

/** Writes a line on stderr above the indicator (it is redrawn on its next tick). */
export const note = (text: string): Effect.Effect<void> =>
  Effect.sync(() => process.stderr.write(process.stderr.isTTY === true ? `${clearLine}${text}\n` : `${text}\n`))
