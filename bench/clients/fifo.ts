/** Completion callbacks of messages in flight on one ordered stream, oldest first. */
export class Fifo {
  private items: Array<(error: unknown) => void> = []
  private head = 0
  get size(): number {
    return this.items.length - this.head
  }
  push(done: (error: unknown) => void): void {
    this.items.push(done)
  }
  /** Completes the oldest; false if none was waiting. */
  complete(): boolean {
    if (this.head === this.items.length) return false
    const done = this.items[this.head]!
    this.items[this.head++] = undefined as any
    if (this.head > 4096) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    done(undefined)
    return true
  }
  failAll(error: unknown): void {
    const waiting = this.items.slice(this.head)
    this.items = []
    this.head = 0
    for (const done of waiting) done(error)
  }
}
