/**
 * A Mailbox as a Stream that reports each chunk as the consumer takes it: how streaming calls grant
 * flow-control credit (or resume a paused source) as their messages are consumed.
 */
import * as Channel from "effect/Channel"
import type * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import type * as Mailbox from "effect/Mailbox"
import * as Stream from "effect/Stream"

/**
 * `Mailbox.toStream` with `onTake(size)` called for every chunk taken. One channel instead of
 * `toStream(…).pipe(Stream.mapChunks(…))`: each Stream layer costs a channel step and its garbage per chunk,
 * and a busy bidi call moves chunks of 2–4 messages.
 */
export const takenStream = <A, E>(
  mailbox: Mailbox.ReadonlyMailbox<A, E>,
  onTake: (size: number) => void
): Stream.Stream<A, E> => {
  const take = Effect.map(mailbox.takeAll, (taken) => {
    onTake(taken[0].length)
    return taken
  })
  const loop: Channel.Channel<Chunk.Chunk<A>, unknown, E, unknown, void, unknown> = Channel.flatMap(
    take,
    ([messages, done]) =>
      done
        ? messages.length === 0 ? Channel.void : Channel.write(messages)
        : Channel.zipRight(Channel.write(messages), loop)
  )
  return Stream.fromChannel(loop)
}
