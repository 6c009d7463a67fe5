/**
 * The typed topics this process subscribes to, for `Debug.Describe`. `Topic.subscribe` adds an entry for
 * as long as its subscription lives; a server reads the directory when it is asked to describe itself, so a
 * subscriber started after the server still shows. Process-wide by default (the subscribers and the server
 * of one service are sibling layers that share nothing else); provide `TopicDirectory` to scope it.
 */
import * as Context from "effect/Context"
import type { TopicDescription } from "../../Debug.js"

export class Directory {
  private readonly entries = new Map<number, TopicDescription>()
  private next = 0

  /** Adds an entry; the returned function removes it. */
  add(entry: TopicDescription): () => void {
    const id = this.next++
    this.entries.set(id, entry)
    return () => {
      this.entries.delete(id)
    }
  }

  /** One entry per topic and queue (two subscriptions of one queue are one line), sorted. */
  list(): ReadonlyArray<TopicDescription> {
    const unique = new Map<string, TopicDescription>()
    for (const entry of this.entries.values()) unique.set(`${entry.topic}\u0000${entry.queue ?? ""}`, entry)
    return [...unique.values()].sort((a, b) =>
      a.topic === b.topic ? (a.queue ?? "").localeCompare(b.queue ?? "") : a.topic.localeCompare(b.topic)
    )
  }
}

export class TopicDirectory extends Context.Reference<TopicDirectory>()("effect-micro/Debug/TopicDirectory", {
  defaultValue: () => new Directory()
}) {}
