// Context switches and syscalls of running processes or threads over a window, counted by `perf stat` where it is
// installed and allowed to attach: the counts a bench divides by its requests.
import { run } from "./child.ts"
import { findTool } from "./tools.ts"

export interface PerfCounts {
  contextSwitches: number
  syscalls: number
}

export const PERF_EVENTS = ["context-switches", "raw_syscalls:sys_enter"] as const

/**
 * Why `perf stat` cannot count here (not installed, or not allowed: not root and perf_event_paranoid too high, or
 * no tracepoints), as a line that says what to do; null when it can. Tried once, on this process.
 */
export async function perfUnavailable(): Promise<string | null> {
  const perf = findTool("perf")
  if (!perf)
    return "perf is not installed: apt-get install -y linux-perf (Debian; linux-tools-$(uname -r) on Ubuntu), as root or with kernel.perf_event_paranoid ≤ 1"
  const cmd = [perf, "stat", "-x,", "-e", PERF_EVENTS.join(","), "-p", String(process.pid), "--", "sleep", "0.05"]
  const r = await run(cmd)
  if (r.code === 0 && parse(r.stderr)) return null
  const why = r.stderr.trim().split("\n").slice(0, 2).join(" ")
  return `perf stat cannot count here (${why || `exit ${r.code}`}): run as root, or sysctl kernel.perf_event_paranoid=-1`
}

function parse(text: string): PerfCounts | null {
  const count = (event: string) => {
    const value = text
      .split("\n")
      .find((l) => l.split(",")[2] === event)
      ?.split(",")[0]
    if (value === "<not counted>") return 0 // the process did not run in the window
    const v = Number(value)
    return value && Number.isFinite(v) ? v : null
  }
  const contextSwitches = count(PERF_EVENTS[0])
  const syscalls = count(PERF_EVENTS[1])
  return contextSwitches === null || syscalls === null ? null : { contextSwitches, syscalls }
}

/**
 * Counts for `seconds` over processes `pids` (all their threads), or threads `tids` when given; resolves once the
 * window ended. Attaching takes a few milliseconds of the window: start it with the load it is divided by.
 */
export async function perfStat(seconds: number, target: { pids: number[] } | { tids: number[] }): Promise<PerfCounts> {
  const [flag, ids] = "pids" in target ? ["-p", target.pids] : ["-t", target.tids]
  if (ids.length === 0) return { contextSwitches: 0, syscalls: 0 }
  const cmd = [findTool("perf")!, "stat", "-x,", "-e", PERF_EVENTS.join(","), flag, ids.join(","), "--"]
  const r = await run([...cmd, "sleep", String(seconds)])
  const counts = parse(r.stderr)
  if (r.code !== 0 || !counts) throw new Error(`perf stat ${flag} ${ids.join(",")} failed: ${r.stderr.trim()}`)
  return counts
}
