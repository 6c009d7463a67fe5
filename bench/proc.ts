/** Linux /proc readers for a child process's CPU time and peak memory. */
import { execFileSync } from "node:child_process"
import { readFileSync } from "node:fs"

let clockTicks: number | undefined

/** Clock ticks per second (`getconf CLK_TCK`, 100 on almost every Linux). */
export const clkTck = (): number => {
  if (clockTicks === undefined) {
    const value = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    clockTicks = Number.isFinite(value) && value > 0 ? value : 100
  }
  return clockTicks
}

/** utime + stime of `pid` in clock ticks (fields 14 and 15 of /proc/<pid>/stat). */
export const cpuTicks = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  // The command name (field 2) may contain spaces; fields after it start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  // fields[0] is field 3 (state), so utime (14) is fields[11] and stime (15) fields[12].
  return Number(fields[11]) + Number(fields[12])
}

/** A `Vm*` line of /proc/<pid>/status in KiB (VmHWM = peak RSS, VmRSS = current). */
export const statusKib = (pid: number, key: "VmHWM" | "VmRSS"): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)
  return match === null ? NaN : Number(match[1])
}
