/**
 * The request every scenario echoes: six fields, ≈110 bytes of JSON. Plain data (no Effect import), so
 * the raw scenarios load nothing they do not need.
 */
export interface Item {
  readonly id: number
  readonly name: string
  readonly tags: ReadonlyArray<string>
  readonly active: boolean
  readonly score: number
  readonly created: string
}

export const payload: Item = {
  id: 4242,
  name: "bench",
  tags: ["alpha", "beta", "gamma"],
  active: true,
  score: 98.25,
  created: "2024-05-01"
}

/** Length of the payload's JSON (109 bytes). */
export const payloadJsonBytes = Buffer.byteLength(JSON.stringify(payload))
