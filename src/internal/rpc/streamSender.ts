/** The request side of client-streaming and bidi calls: DATA frames within the server's credit, then END. */
import * as Cause from "effect/Cause"
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

  grant(credit: number): void {
    this.credit += credit
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.()
  }

  run(input: Stream.Stream<unknown>, compiled: CompiledEndpoint): Effect.Effect<void, unknown> {
    const waitForCredit = Effect.async<void>((resume) => {
      if (this.credit > 0) return resume(Effect.void)
      this.waiter = () => resume(Effect.void)
    })
    return Stream.runForEach(input, (item) => {
      const send = Effect.suspend(() => {
        const encoded = compiled.request.encode(item)
        if (Either.isRight(encoded) && FRAME_HEADER - 4 + encoded.right.byteLength > this.maxFrameSize) {
          this.connection.cancel(this.id)
          this.onFail(Cause.fail(BadRequest.of(
            `stream message of ${encoded.right.byteLength} bytes exceeds the frame limit of ${this.maxFrameSize}`,
            "effect-micro.client"
          )))
          return Effect.interrupt
        }
        if (Either.isLeft(encoded)) {
          this.connection.cancel(this.id)
          this.onFail(Cause.fail(encoded.left))
          return Effect.interrupt
        }
        this.credit--
        this.connection.data(this.id, encoded.right)
        return Effect.void
      })
      return this.credit > 0 ? send : Effect.zipRight(waitForCredit, send)
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
