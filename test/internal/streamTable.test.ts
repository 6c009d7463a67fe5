import { describe, expect, it } from "@effect/vitest"
import { StreamTable } from "../../src/internal/rpc/streamTable.js"

const sorted = <V>(entries: Iterable<[number, V]>) => [...entries].sort((a, b) => a[0] - b[0])

describe("StreamTable", () => {
  it("behaves as a Map under random calls opening and closing, with long-lived streams and ids past 2^31", () => {
    const table = new StreamTable<string>()
    const map = new Map<number, string>()
    let next = 2 ** 31 - 5000
    let seed = 42
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    // A few streams stay open throughout: ids after them collide with their slots.
    for (let i = 0; i < 3; i++) {
      table.set(next, `long${i}`)
      map.set(next, `long${i}`)
      next += 2
    }
    for (let step = 0; step < 20_000; step++) {
      if (random() < 0.52 || map.size < 4) {
        table.set(next, `v${next}`)
        map.set(next, `v${next}`)
        next += 2
      } else {
        const open = [...map.keys()].filter((id) => !String(map.get(id)).startsWith("long"))
        const id = open[Math.floor(random() * open.length)]!
        expect(table.delete(id)).toBe(true)
        map.delete(id)
      }
      if (step % 997 === 0) {
        expect(table.size).toBe(map.size)
        expect(sorted(table)).toEqual(sorted(map))
      }
    }
    for (const [id, value] of map) expect(table.get(id)).toBe(value)
    expect(table.get(next + 2)).toBeUndefined()
    expect(table.has(next + 2)).toBe(false)
    expect(table.delete(next + 2)).toBe(false)
  })

  it("replacing keeps the size; deleting while iterating visits every other entry once; clear empties", () => {
    const table = new StreamTable<number>(4)
    for (let id = 1; id <= 40; id += 2) table.set(id, id)
    table.set(3, 33)
    expect(table.size).toBe(20)
    expect(table.get(3)).toBe(33)
    const seen: Array<number> = []
    for (const [id] of table) {
      seen.push(id)
      table.delete(id)
    }
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => 2 * i + 1))
    expect(table.size).toBe(0)
    table.set(1, 1)
    table.clear()
    expect([...table.values()]).toEqual([])
    expect(table.size).toBe(0)
  })
})
