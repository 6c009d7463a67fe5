/** The request side of client-streaming and bidi calls: DATA frames within the server's credit, then END. */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import { BadRequest } from "../../Errors.js"
import type { CallConnection } from "./clientConnection.js"
import type { CompiledEndpoint } from "./endpoint.js"
import { DEFAULT_WINDOW, FRAME_HEADER } from "./wire.js"

/** Sends a request Stream as DATA frames within the server's credit, then END (half-close). */
export class Sender {
  id = 0
  private credit = DEFAULT_WINDOW
  private waiter: (() => void) | undefined

  constructor(
    private readonly connection: CallConnection,
    /** Largest DATA frame the peer accepts. */
    private readonly maxFrameSize: number,
    /** The call fails with this when a request message cannot be encoded or sent, or the input stream fails. */
    private readonly onFail: (cause: Cause.Cause<unknown>) => void
  ) {}

  /** Encodes and sends one message; false when the call failed instead (cancelled, `onFail` called). */
  private send(item: unknown, compiled: CompiledEndpoint): boolean {
    const encoded = compiled.request.encode(item)
    if (Either.isRight(encoded) && FRAME_HEADER - 4 + encoded.right.byteLength > this.maxFrameSize) {
      this.connection.cancel(this.id)
      this.onFail(Cause.fail(BadRequest.of(
        `stream message of ${encoded.right.byteLength} bytes exceeds the frame limit of ${this.maxFrameSize}`,
        "effect-micro.client"
      )))
      return false
    }
    if (Either.isLeft(encoded)) {
      this.connection.cancel(this.id)
      this.onFail(Cause.fail(encoded.left))
      return false
    }
    this.credit--
    this.connection.data(this.id, encoded.right)
    return true
  }

  grant(credit: number): void {
    this.credit += credit
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  /**
   * Sends the messages of each chunk in one synchronous loop while there is credit (an Effect per chunk, not
   * per message: a chunk holds what the caller offered since the last one, e.g. a Mailbox's backlog).
   */
  run(input: Stream.Stream<unknown>, compiled: CompiledEndpoint): Effect.Effect<void, unknown> {
    const waitForCredit = Effect.async<void>((resume) => {
      if (this.credit > 0) return resume(Effect.void)
      this.waiter = () => resume(Effect.void)
    })
    return Stream.runForEachChunk(input, (chunk) => {
      const items = Chunk.toReadonlyArray(chunk)
      let index = 0
      const loop: Effect.Effect<void> = Effect.suspend(() => {
        while (index < items.length) {
          if (this.credit <= 0) return Effect.zipRight(waitForCredit, loop)
          if (!this.send(items[index++], compiled)) return Effect.interrupt
        }
        return Effect.void
      })
      return loop
    }).pipe(
      Effect.zipRight(Effect.sync(() => this.connection.end(this.id))),
      // The caller's input stream failed or died: cancel the call and fail it with that cause (the
      // server would otherwise wait for DATA and the caller for a reply, forever).
      Effect.catchAllCause((cause) =>
        Cause.isInterruptedOnly(cause) ? Effect.void : Effect.sync(() => {
          this.connection.cancel(this.id)
          this.onFail(cause)
        })
      )
    )
  }
}
