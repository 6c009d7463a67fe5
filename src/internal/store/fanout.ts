/**
 * Changes delivered to `watch` streams, each with its own bounded buffer. A watcher that stops reading (or
 * reads slower than the store is written) must not make the store hold every change for it: past
 * `capacity` changes behind, its stream fails with StoreError reason Unavailable ("fell behind"), so it can
 * re-read and watch again, and the writers and other watchers never notice.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Stream from "effect/Stream"
import type { Change } from "../../Store.js"
import { StoreError } from "../../Store.js"
import type { Namespace } from "./common.js"

/** Changes a watcher may be behind before its stream fails. */
export const DEFAULT_WATCH_CAPACITY = 10_000

interface Watcher {
  readonly ns: Namespace
  readonly prefix: string
  readonly mailbox: Mailbox.Mailbox<Change, StoreError>
}

export class ChangeFanout {
  private readonly watchers = new Set<Watcher>()

  constructor(private readonly backend: string, private readonly capacity = DEFAULT_WATCH_CAPACITY) {}

  /** Delivers to every matching watcher at once (synchronous: the writer never waits for a watcher). */
  publish(change: Change): void {
    for (const watcher of this.watchers) {
      if (
        change.database !== watcher.ns.database || change.table !== watcher.ns.table ||
        !change.key.startsWith(watcher.prefix)
      ) continue
      if (!watcher.mailbox.unsafeOffer(change)) this.lagged(watcher)
    }
  }

  publishAll(changes: Iterable<Change>): void {
    for (const change of changes) this.publish(change)
  }

  get size(): number {
    return this.watchers.size
  }

  watch(ns: Namespace, prefix: string): Stream.Stream<Change, StoreError> {
    return Stream.unwrapScoped(
      Effect.map(
        Effect.acquireRelease(
          Effect.map(Mailbox.make<Change, StoreError>(this.capacity), (mailbox) => {
            const watcher: Watcher = { ns, prefix, mailbox }
            this.watchers.add(watcher)
            return watcher
          }),
          (watcher) => Effect.sync(() => this.watchers.delete(watcher))
        ),
        (watcher) => Mailbox.toStream(watcher.mailbox)
      )
    )
  }

  /** Ends every watcher's stream with `error`. */
  failAll(error: StoreError): void {
    for (const watcher of this.watchers) watcher.mailbox.unsafeDone(Exit.fail(error))
    this.watchers.clear()
  }

  private lagged(watcher: Watcher): void {
    this.watchers.delete(watcher)
    watcher.mailbox.unsafeDone(Exit.fail(
      new StoreError({
        reason: "Unavailable",
        detail: `${this.backend} store: the watcher fell more than ${this.capacity} changes behind; ` +
          `read the current state and watch again`
      })
    ))
  }
}
