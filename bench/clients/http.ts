/**
 * HTTP client of the gateway scenarios: an undici `Pool` of keep-alive connections to the gateway, one
 * connection per call in flight (HTTP/1.1 without pipelining), each call `POST <path>` with the JSON item and
 * its JSON reply read and parsed; any status but 200 is an error.
 */
import { Pool } from "undici"
import { payload } from "../payload.js"
import type { ClientFactory } from "./types.js"

export const make = (path: string, connections = 64): ClientFactory => async (address) => {
  const pool = new Pool(`http://${address}`, { connections, pipelining: 1, keepAliveTimeout: 60_000 })
  const body = JSON.stringify(payload)
  const headers = { "content-type": "application/json" }
  const once = async () => {
    const response = await pool.request({ method: "POST", path, headers, body })
    const text = await response.body.text()
    if (response.statusCode !== 200) throw new Error(`HTTP ${response.statusCode}: ${text.slice(0, 200)}`)
    JSON.parse(text)
  }
  await once()
  return {
    call: (done) => {
      once().then(() => done(undefined), done)
    },
    close: () => pool.close()
  }
}
