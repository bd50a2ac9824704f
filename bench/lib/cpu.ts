// CPU accounting of the bench: what a process, a thread or this process has used, and the worker's CPU report.
import { readdirSync, readFileSync } from "node:fs"

// /proc/<pid>/task/<tid>/sched carries the exact runtime in ms when the kernel has CONFIG_SCHED_DEBUG;
// /proc/<pid>/stat always has utime + stime, but only in clock ticks (10 ms).
const CLOCK_TICKS = 100

function schedSeconds(path: string): number | null {
  try {
    const m = /se\.sum_exec_runtime\s*:\s*([\d.]+)/.exec(readFileSync(path, "utf8"))
    return m ? Number(m[1]) / 1000 : null
  } catch {
    return null
  }
}

function statSeconds(path: string): number {
  const stat = readFileSync(path, "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS // utime, stime: fields 14 and 15 of stat(5)
}

/** CPU seconds a process has used so far (all its live threads), read from /proc: for children that cannot report. */
export function processCpuSeconds(pid: number): number {
  let sum = 0
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const s = schedSeconds(`/proc/${pid}/task/${tid}/sched`)
      if (s === null) return statSeconds(`/proc/${pid}/stat`)
      sum += s
    }
  } catch {
    return NaN
  }
  return sum
}

/** Minor page faults a process (all its threads) has taken so far (/proc/<pid>/stat), NaN once it ended. */
export function processMinorFaults(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7]) // minflt: field 10 of stat(5)
  } catch {
    return NaN
  }
}

/** Minor page faults thread `tid` of process `pid` has taken so far, NaN once it ended. */
export function taskMinorFaults(pid: number, tid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[7])
  } catch {
    return NaN
  }
}

/** CPU seconds thread `tid` of process `pid` has used so far (a Worker thread, say); NaN once it ended. */
export function taskCpuSeconds(pid: number, tid: number): number {
  try {
    return schedSeconds(`/proc/${pid}/task/${tid}/sched`) ?? statSeconds(`/proc/${pid}/task/${tid}/stat`)
  } catch {
    return NaN
  }
}

/** CPU seconds the calling thread has used so far. */
export function threadCpuSeconds(): number {
  return schedSeconds("/proc/thread-self/sched") ?? statSeconds("/proc/thread-self/stat")
}

/** CPU seconds this process has used so far, all threads: what process.cpuUsage() reports. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

/** The payload a worker answers to an empty request: its own CPU seconds so far. */
export function cpuReport(): Uint8Array {
  return new TextEncoder().encode(String(selfCpuSeconds()))
}

export function parseCpuReport(bytes: Uint8Array | string): number {
  const s = typeof bytes === "string" ? bytes : new TextDecoder().decode(bytes)
  const v = Number(s)
  if (!Number.isFinite(v)) throw new Error(`worker sent a bad CPU report: ${JSON.stringify(s.slice(0, 40))}`)
  return v
}

/**
 * Threads that run a runtime's compiler, by name: JavaScriptCore's (Bun: JITWorker; JSCWarmUp while a fresh process
 * compiles) and V8's (Node: node-V8Worker, which also marks for the collector).
 */
const COMPILER_THREADS = new Set(["JITWorker", "JSCWarmUp", "node-V8Worker"])

/**
 * ns the compiler threads of `pids` have run so far, from /proc/<pid>/task/<tid>/schedstat (ns; taskCpuSeconds's
 * sources are 10 ms ticks where the kernel has no /proc/…/sched, as here, too coarse for a 25 ms window); a process
 * or thread gone counts 0.
 */
export function compilerNs(pids: readonly number[]): number {
  let ns = 0
  for (const pid of pids) {
    let tids: string[]
    try {
      tids = readdirSync(`/proc/${pid}/task`)
    } catch {
      continue
    }
    for (const tid of tids) {
      try {
        if (!COMPILER_THREADS.has(readFileSync(`/proc/${pid}/task/${tid}/comm`, "latin1").trimEnd())) continue
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "latin1").split(" ", 1)[0])
      } catch {} // the thread ended
    }
  }
  return ns
}

/** `root` and every live process descended from it (from /proc/<pid>/stat); [root] where there is no /proc. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  let entries: string[]
  try {
    entries = readdirSync("/proc")
  } catch {
    return [root]
  }
  for (const e of entries) {
    if (!/^\d+$/.test(e)) continue
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "latin1")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ", 2)[1])
      const siblings = children.get(ppid)
      if (siblings) siblings.push(Number(e))
      else children.set(ppid, [Number(e)])
    } catch {} // it ended
  }
  const tree = [root]
  for (let i = 0; i < tree.length; i++) tree.push(...(children.get(tree[i]!) ?? []))
  return tree
}
