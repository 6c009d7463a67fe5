/**
 * Calls from Promise code (`Client.makePromise`): how an Effect's outcome becomes a Promise's, and streams
 * as async iterables. A unary call's common case settles its Promise from the exchange's callback, without
 * a fiber (client.ts `Caller.promiseUnary`); everything else runs on the captured runtime.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberRefs from "effect/FiberRefs"
import * as Runtime from "effect/Runtime"
import * as Stream from "effect/Stream"
import { empty as emptyMetadata, outgoingRef } from "../../Metadata.js"

/** The runtime Promise calls fall back to, and how their outcomes settle. */
export class PromiseRunner {
  private readonly runExit: (
    effect: Effect.Effect<unknown, unknown>,
    options?: { readonly signal?: AbortSignal }
  ) => Promise<Exit.Exit<unknown, unknown>>
  /** The runtime adds no outgoing metadata: calls without options may share one prepared call. */
  readonly plain: boolean

  constructor(readonly runtime: Runtime.Runtime<never>) {
    this.runExit = Runtime.runPromiseExit(runtime)
    this.plain = FiberRefs.getOrDefault(runtime.fiberRefs, outgoingRef) === emptyMetadata
  }

  /** Runs `effect` on the runtime (interrupted when `signal` aborts) and settles like `settle`. */
  run(effect: Effect.Effect<unknown, unknown>, signal: AbortSignal | undefined): Promise<unknown> {
    return this.runExit(effect, signal === undefined ? undefined : { signal }).then((exit) => {
      if (Exit.isSuccess(exit)) return exit.value
      throw rejection(exit.cause, signal)
    })
  }

  /** `stream` as an async iterable: each element in turn, the stream's failure thrown as it is. */
  iterable<A>(stream: Stream.Stream<A, unknown>, signal: AbortSignal | undefined): AsyncIterable<A> {
    return Stream.toAsyncIterableRuntime(
      signal === undefined ? stream : Stream.interruptWhen(stream, aborted(signal)),
      this.runtime
    )
  }
}

/** What a failed call rejects with: its error as the Effect API fails with it, the defect, or the abort reason. */
export const rejection = (cause: Cause.Cause<unknown>, signal: AbortSignal | undefined): unknown => {
  const failure = Cause.failureOption(cause)
  if (failure._tag === "Some") return failure.value
  if (signal?.aborted && Cause.isInterruptedOnly(cause)) return signal.reason
  return Cause.squash(cause)
}

/** Fails with the signal's reason once it aborts. */
const aborted = (signal: AbortSignal): Effect.Effect<never, unknown> =>
  Effect.async<never, unknown>((resume) => {
    const onAbort = () => resume(Effect.fail(signal.reason))
    if (signal.aborted) return onAbort()
    signal.addEventListener("abort", onAbort, { once: true })
    return Effect.sync(() => signal.removeEventListener("abort", onAbort))
  })

/** A request stream from Promise code: an iterable or async iterable; a throw from it is a defect of the call. */
export const inputStream = <A>(input: AsyncIterable<A> | Iterable<A>): Stream.Stream<A> =>
  Symbol.asyncIterator in input
    ? Stream.orDie(Stream.fromAsyncIterable(input as AsyncIterable<A>, (error) => error))
    : Stream.fromIterable(input as Iterable<A>)
