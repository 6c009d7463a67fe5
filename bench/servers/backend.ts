/**
 * For the gateway scenarios: the service behind a gateway runs in a child process of the gateway's process
 * (so `/proc/<pid>` of the measured "server" is the gateway alone). It is started with the same node and
 * loader as this process (transpiled JS or tsx), inherits its CPU pinning, and is killed when this process
 * exits.
 */
import { spawn } from "node:child_process"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/** Starts the sibling server script `name` (e.g. "effectMicro") with `args`; resolves with its READY value. */
export const startBackend = (name: string, args: ReadonlyArray<string> = []): Promise<string> =>
  new Promise((resolve, reject) => {
    const here = fileURLToPath(import.meta.url)
    const script = path.join(path.dirname(here), `${name}${path.extname(here)}`)
    const child = spawn(process.execPath, [...process.execArgv, script, ...args], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    process.on("exit", () => child.kill("SIGKILL"))
    let buffered = ""
    child.stdout!.on("data", (data) => {
      buffered += data
      const line = buffered.split("\n").find((line) => line.startsWith("READY "))
      if (line !== undefined) resolve(line.slice("READY ".length).trim())
    })
    child.once("exit", (code) => reject(new Error(`backend ${name} exited (${code})`)))
  })
