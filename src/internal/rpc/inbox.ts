/**
 * The queue between a connection's callbacks and the Stream a streaming call's consumer reads: the request
 * stream a server handler gets, the reply stream a caller gets.
 *
 * Not an Effect `Mailbox`, for two measured reasons. `Mailbox` keeps its messages in arrays created by an
 * array literal, and V8 tracks survival per literal site: on a busy bidi stream that site was switched to
 * allocating in the old generation, after which every message queued in such an array survived young
 * collections until a full one (2 MB promoted per scavenge, 10 ms pauses, 15 % of the server's time in GC,
 * a third more RSS). Here the arrays come from `slice()`, which V8 does not track. And a call needs no more
 * than one reader and a credit count, so each chunk costs one wake-up and one channel step.
 */
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Stream from "effect/Stream"

const NO_ITEMS: ReadonlyArray<never> = []

/** When a waiting reader is woken: in this turn's microtasks, or after the event loop's I/O phase. */
export type WakeAt = "microtask" | "immediate"

export class Inbox<A, E = never> {
  private items: Array<A> = NO_ITEMS.slice()
  private ended: Exit.Exit<void, E> | undefined = undefined
  /** Readers waiting for a message: one in practice, more if a handler reads its request stream twice. */
  private readonly waiters: Array<(resumed: Effect.Effect<void>) => void> = NO_ITEMS.slice()
  private wakeScheduled = false

  /**
   * @param wakeAt "immediate" gathers what arrives over a whole I/O phase into one chunk (grpc-js hands
   *   over request messages one per tick); "microtask" wakes the reader once the current callback is done.
   */
  constructor(private readonly wakeAt: WakeAt = "microtask") {}

  /** Queues a message for the reader; false once the inbox is done. */
  offer(item: A): boolean {
    if (this.ended !== undefined) return false
    this.items.push(item)
    this.wake()
    return true
  }

  /** Ends the stream with `exit` once the reader has taken the messages queued before it. */
  done(exit: Exit.Exit<void, E>): void {
    if (this.ended !== undefined) return
    this.ended = exit
    this.wake()
  }

  /**
   * The messages as a Stream (read it once); `onTake(size)` is called for each chunk as it is taken, which
   * is when a call grants flow-control credit or resumes a paused source.
   */
  stream(onTake: (size: number) => void): Stream.Stream<A, E> {
    const loop: Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown> = Channel.suspend(() => {
      const items = this.items
      if (items.length > 0) {
        this.items = NO_ITEMS.slice()
        onTake(items.length)
        return Channel.zipRight(Channel.write(Chunk.unsafeFromArray(items)), loop)
      }
      const ended = this.ended
      if (ended !== undefined) return Exit.isSuccess(ended) ? Channel.void : Channel.failCause(ended.cause)
      return Channel.zipRight(this.waitForItems, loop)
    })
    return Stream.fromChannel(loop)
  }

  private readonly waitForItems: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.items.length > 0 || this.ended !== undefined) return resume(Effect.void)
    this.waiters.push(resume)
    return Effect.sync(() => {
      const index = this.waiters.indexOf(resume)
      if (index !== -1) this.waiters.splice(index, 1)
    })
  })

  private wake(): void {
    if (this.waiters.length === 0) return
    if (this.wakeAt === "microtask") return this.wakeNow()
    if (this.wakeScheduled) return
    this.wakeScheduled = true
    setImmediate(this.wakeNow)
  }

  /** Wakes every waiting reader (one interrupted in between has removed itself); each looks again. */
  private readonly wakeNow = (): void => {
    this.wakeScheduled = false
    const waiters = this.waiters
    if (waiters.length === 1) {
      const waiter = waiters[0]!
      waiters.length = 0
      return waiter(Effect.void)
    }
    const all = waiters.slice()
    waiters.length = 0
    for (const waiter of all) waiter(Effect.void)
  }
}
