// Child processes of a bench run (every one is killed when the run ends, however it ends) and CPU accounting.
import { readdirSync, readFileSync } from "node:fs"
import type { Subprocess } from "bun"

const live = new Set<Subprocess>()
let reapedCpuS = 0

/** CPU seconds used by every child that has exited so far (with their own reaped children). */
export function reapedChildrenCpuSeconds(): number {
  return reapedCpuS
}

export interface Child {
  proc: Subprocess<"ignore", "pipe", "pipe">
  /** Sends a message over the IPC channel (children spawned with `ipc` only). */
  send: (message: unknown) => void
  /** Everything the child wrote to stderr, once it has exited. */
  stderr: Promise<string>
  /** Resolves with the first line the child prints on stdout. */
  firstLine: () => Promise<string>
}

/** Spawns a child whose stdout and stderr are collected and which `killAll` will stop. */
export function spawnChild(cmd: string[], opts: { ipc?: (message: unknown) => void } = {}): Child {
  const proc = Bun.spawn(cmd, {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    ...(opts.ipc ? { ipc: (m: unknown) => opts.ipc!(m), serialization: "advanced" as const } : {}),
  })
  live.add(proc)
  proc.exited.finally(() => {
    live.delete(proc)
    const u = proc.resourceUsage()
    if (u) reapedCpuS += Number(u.cpuTime.total) / 1e6
  })
  const stderr = new Response(proc.stderr).text().catch(() => "")
  let line: Promise<string> | null = null
  const firstLine = () =>
    (line ??= (async () => {
      const decoder = new TextDecoder()
      let text = ""
      for await (const chunk of proc.stdout) {
        text += decoder.decode(chunk, { stream: true })
        const nl = text.indexOf("\n")
        if (nl >= 0) return text.slice(0, nl)
      }
      throw new Error(`${cmd[0]} exited (${await proc.exited}) before printing a line: ${(await stderr).trim()}`)
    })())
  return { proc, stderr, firstLine, send: (m) => proc.send(m) }
}

/** SIGKILLs a child and waits for it to be reaped. */
export async function stopChild(child: Child | null | undefined) {
  if (!child) return
  child.proc.kill("SIGKILL")
  await child.proc.exited
}

/** Kills every child still running; safe to call from an exit handler. */
export function killAll() {
  for (const p of live) p.kill("SIGKILL")
  live.clear()
}

/** Rejects with the child's stderr if it exits before `work` settles. */
export async function whileAlive<T>(child: Child, what: string, work: Promise<T>): Promise<T> {
  const died = child.proc.exited.then(async (code) => {
    throw new Error(`${what} exited with ${code}: ${(await child.stderr).trim().split("\n").slice(-3).join(" | ")}`)
  })
  return Promise.race([work, died])
}

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
