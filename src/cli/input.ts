/** Request messages from the command line or stdin: one JSON value, or a stream of JSON lines. */
import * as NodeStream from "@effect/platform-node/NodeStream"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import { UsageError } from "./exit.js"

const parse = (text: string, where: string): Effect.Effect<unknown, UsageError> =>
  Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: (error) => new UsageError({ detail: `${where} is not JSON: ${(error as Error).message}` })
  })

const stdinText: Stream.Stream<string, UsageError> = NodeStream.fromReadable(
  () => process.stdin,
  (error) => new UsageError({ detail: `cannot read stdin: ${String(error)}` })
).pipe(Stream.decodeText())

/** `-` or no argument means stdin, unless stdin is a terminal (nobody would type the payload there). */
const fromStdin = (arg: Option.Option<string>): boolean =>
  Option.match(arg, { onNone: () => !process.stdin.isTTY, onSome: (text) => text === "-" })

/**
 * One message: the argument, else all of stdin. Nothing at all (a payload-less endpoint called from a
 * terminal, or empty stdin) is `{}`.
 */
export const single = (arg: Option.Option<string>): Effect.Effect<unknown, UsageError> => {
  if (fromStdin(arg)) {
    return Effect.flatMap(
      Stream.mkString(stdinText),
      (text) => text.trim() === "" ? Effect.succeed({}) : parse(text, "stdin")
    )
  }
  return Option.match(arg, { onNone: () => Effect.succeed({}), onSome: (text) => parse(text, "the payload") })
}

/**
 * Many messages: the argument (a JSON array is its elements, any other value one message), else stdin as
 * JSON lines, read as they come (a bidi call answers each line before the next is typed). The stream itself
 * cannot fail, since the call would read that as a cancel: a bad line ends it and completes `invalid`, which
 * the caller checks once the call is over.
 */
export const many = (arg: Option.Option<string>): Effect.Effect<{
  readonly messages: Stream.Stream<unknown>
  readonly invalid: Deferred.Deferred<UsageError>
}> =>
  Effect.map(Deferred.make<UsageError>(), (invalid) => {
    const parsed: Stream.Stream<unknown, UsageError> = fromStdin(arg)
      ? stdinText.pipe(
        Stream.splitLines,
        Stream.filter((line) => line.trim() !== ""),
        Stream.zipWithIndex,
        Stream.mapEffect(([line, index]) => parse(line, `stdin line ${index + 1}`))
      )
      : Stream.unwrap(Effect.map(
        parse(Option.getOrElse(arg, () => "[]"), "the payload"),
        (value) => Stream.fromIterable(Array.isArray(value) ? value : [value])
      ))
    const messages = parsed.pipe(
      Stream.catchAll((error) => Stream.drain(Stream.fromEffect(Deferred.succeed(invalid, error))))
    )
    return { messages, invalid }
  })

/** Fails with the input error `many` recorded, if any. */
export const checkInput = (invalid: Deferred.Deferred<UsageError>): Effect.Effect<void, UsageError> =>
  Effect.flatMap(
    Deferred.poll(invalid),
    Option.match({ onNone: () => Effect.void, onSome: (awaited) => Effect.flatMap(awaited, Effect.fail) })
  )

/** Raw bytes: the argument as UTF-8, else all of stdin as it is (`-` or nothing, unless stdin is a terminal). */
export const bytes = (arg: Option.Option<string>): Effect.Effect<Uint8Array, UsageError> =>
  fromStdin(arg)
    ? NodeStream.fromReadable(
      () => process.stdin,
      (error) => new UsageError({ detail: `cannot read stdin: ${String(error)}` })
    ).pipe(
      Stream.runCollect,
      Effect.map((chunks) => Buffer.concat([...chunks]))
    )
    : Effect.succeed(new TextEncoder().encode(Option.getOrElse(arg, () => "")))
