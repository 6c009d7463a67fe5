import { describe, expect, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { Selector } from "../src/index.js"
import type { Service } from "../src/Registry.js"

const service = (version: string, ids: ReadonlyArray<string>, metadata: Record<string, string> = {}): Service => ({
  name: "svc",
  version,
  metadata: {},
  endpoints: [],
  nodes: ids.map((id) => ({ id, address: `${id}:1`, metadata }))
})

describe("Selector", () => {
  it.effect("round-robin walks nodes in id order", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRoundRobin()
      const picks = []
      for (let i = 0; i < 6; i++) picks.push((yield* selector.select({ service: "svc", versions: [service("1", ["c", "a", "b"])] })).id)
      expect(picks).toEqual(["a", "b", "c", "a", "b", "c"])
    }))

  it.effect("random covers every node", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRandom()
      const seen = new Set<string>()
      for (let i = 0; i < 200; i++) seen.add((yield* selector.select({ service: "svc", versions: [service("1", ["a", "b", "c"])] })).id)
      expect(seen).toEqual(new Set(["a", "b", "c"]))
    }))

  it.effect("filters by version and metadata; nothing left → NoAvailableNodes", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRandom()
      const versions = [service("1", ["a"], { zone: "x" }), service("2", ["b"], { zone: "y" })]
      expect((yield* selector.select({ service: "svc", versions, filter: { version: "2" } })).id).toBe("b")
      expect((yield* selector.select({ service: "svc", versions, filter: { metadata: { zone: "x" } } })).id).toBe("a")
      const error = yield* Effect.flip(selector.select({ service: "svc", versions, filter: { version: "3" } }))
      expect(error._tag).toBe("NoAvailableNodes")
    }))

  it.effect("nodes already tried are avoided while another remains", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRandom()
      const versions = [service("1", ["a", "b"])]
      for (let i = 0; i < 20; i++) {
        expect((yield* selector.select({ service: "svc", versions, tried: new Set(["a"]) })).id).toBe("b")
      }
      // all tried: fall back to every node rather than failing
      expect(["a", "b"]).toContain((yield* selector.select({ service: "svc", versions, tried: new Set(["a", "b"]) })).id)
    }))

  it.effect("a node that failed is avoided for the cooldown, then used again", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRoundRobin({ cooldown: "5 seconds" })
      const versions = [service("1", ["a", "b"])]
      yield* selector.mark("svc", versions[0]!.nodes[0]!, "failure")
      const during = []
      for (let i = 0; i < 4; i++) during.push((yield* selector.select({ service: "svc", versions })).id)
      expect(during).toEqual(["b", "b", "b", "b"])
      yield* TestClock.adjust("6 seconds")
      const after = new Set<string>()
      for (let i = 0; i < 4; i++) after.add((yield* selector.select({ service: "svc", versions })).id)
      expect(after).toEqual(new Set(["a", "b"]))
    }))

  it.effect("when every node is cooling down, they are still used", () =>
    Effect.gen(function*() {
      const selector = Selector.makeRandom()
      const versions = [service("1", ["a", "b"])]
      for (const node of versions[0]!.nodes) yield* selector.mark("svc", node, "failure")
      expect(["a", "b"]).toContain((yield* selector.select({ service: "svc", versions })).id)
    }))
})
