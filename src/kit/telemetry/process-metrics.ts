// Process and runtime metrics under the names every Prometheus client library writes (prom-client's default
// metrics, which Grafana's Node.js dashboards read): process_* from /proc for this process and for the worker
// processes a bus runs here, and this process's runtime as nodejs_* (prom-client under Bun writes these names too,
// so a dashboard made for a Node or Bun app reads a slotbus front unchanged). Read when GET /metrics asks, never on
// a request's path. Without /proc (macOS) this process reports CPU, memory and start time from the runtime, no fds,
// and worker processes report nothing.
import { readdirSync, readFileSync } from "node:fs"
import { family, type MetricFamily, type MetricLabels } from "./metrics.ts"
import { httpServer } from "./http-server.ts"
import { nanoseconds } from "../../runtime/index.ts"

/** USER_HZ, the unit of /proc's CPU times: 100 on every Linux architecture (part of the kernel's ABI). */
const CLK_TCK = 100

/** What a process has used, as /proc (or, for this process without it, the runtime) says. */
export interface ProcessFigures {
  userSeconds: number
  systemSeconds: number
  residentBytes: number
  virtualBytes: number | null
  openFds: number | null
  maxFds: number | null
  /** Seconds since the epoch. */
  startTime: number
}

let bootTime: number | null | undefined

/** The host's boot time (seconds since the epoch), /proc/stat's btime; null without /proc. */
function boot(): number | null {
  if (bootTime === undefined) {
    try {
      bootTime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1])
    } catch {
      bootTime = null
    }
  }
  return bootTime
}

const tryRead = <T>(read: () => T): T | null => {
  try {
    return read()
  } catch {
    return null // not ours to read (another user's fds), or gone
  }
}

/** What /proc says of process `pid`, or null when it is gone or there is no /proc. */
export function readProcess(pid: number): ProcessFigures | null {
  const btime = boot()
  if (btime === null) return null
  const stat = tryRead(() => readFileSync(`/proc/${pid}/stat`, "utf8"))
  const status = tryRead(() => readFileSync(`/proc/${pid}/status`, "utf8"))
  if (stat === null || status === null) return null
  // the fields after the command's ")" (a command may hold spaces and parentheses); f[0] is field 3, the state
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  const limits = tryRead(() => readFileSync(`/proc/${pid}/limits`, "utf8"))
  const soft = limits && /^Max open files\s+(\S+)/m.exec(limits)?.[1]
  return {
    userSeconds: Number(f[11]) / CLK_TCK,
    systemSeconds: Number(f[12]) / CLK_TCK,
    residentBytes: Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? 0) * 1024,
    virtualBytes: Number(f[20]),
    openFds: tryRead(() => readdirSync(`/proc/${pid}/fd`).length),
    maxFds: soft == null ? null : soft === "unlimited" ? Infinity : Number(soft),
    startTime: btime + Number(f[19]) / CLK_TCK,
  }
}

/** This process's figures: /proc's, or without it what the runtime knows. */
function readSelf(): ProcessFigures {
  const own = readProcess(process.pid)
  if (own) return own
  const cpu = process.cpuUsage()
  return {
    userSeconds: cpu.user / 1e6,
    systemSeconds: cpu.system / 1e6,
    residentBytes: process.memoryUsage.rss(),
    virtualBytes: null,
    openFds: null,
    maxFds: null,
    startTime: performance.timeOrigin / 1000,
  }
}

/**
 * process_* families of `processes`, each sample with its labels (this process: none, as every client library
 * writes its own). A process that is gone or unreadable is left out.
 */
export function processFamilies(processes: readonly { labels: MetricLabels; figures: ProcessFigures | null }[]) {
  const user = family("process_cpu_user_seconds_total", "counter", "user CPU time spent, in seconds")
  const system = family("process_cpu_system_seconds_total", "counter", "system CPU time spent, in seconds")
  const cpu = family("process_cpu_seconds_total", "counter", "user and system CPU time spent, in seconds")
  const rss = family("process_resident_memory_bytes", "gauge", "resident memory size, in bytes")
  const vsz = family("process_virtual_memory_bytes", "gauge", "virtual memory size, in bytes")
  const open = family("process_open_fds", "gauge", "open file descriptors")
  const max = family("process_max_fds", "gauge", "the most file descriptors the process may open (its soft limit)")
  const start = family("process_start_time_seconds", "gauge", "when the process started, in seconds since the epoch")
  for (const { labels, figures: p } of processes) {
    if (p === null) continue
    user.add(labels, p.userSeconds)
    system.add(labels, p.systemSeconds)
    cpu.add(labels, p.userSeconds + p.systemSeconds)
    rss.add(labels, p.residentBytes)
    if (p.virtualBytes !== null) vsz.add(labels, p.virtualBytes)
    if (p.openFds !== null) open.add(labels, p.openFds)
    if (p.maxFds !== null) max.add(labels, p.maxFds)
    start.add(labels, p.startTime)
  }
  return [user, system, cpu, rss, vsz, open, max, start].filter((f) => f.samples.length > 0) as MetricFamily[]
}

/** The lag's help line: this process measures it as it is scraped; a worker, in its last once-a-second report. */
export const LAG_HELP =
  "how late a callback ran, in seconds: queued as this scrape began (this process), or due at a worker's last report (worker label)"

/** How late a callback queued now runs: prom-client's nodejs_eventloop_lag_seconds, measured as it is read. */
const eventLoopLag = () =>
  new Promise<number>((resolve) => {
    const at = nanoseconds()
    setImmediate(() => resolve((nanoseconds() - at) / 1e9))
  })

/**
 * This process's process_* and runtime families, and its HTTP server histogram once `instrument()` saw a request,
 * for the GET /metrics it serves. Bun has no GC events
 * (perf_hooks never emits "gc": BUN_QUIRKS.NO_GC_EVENTS), so prom-client's nodejs_gc_duration_seconds has no counterpart here.
 */
export async function selfFamilies(): Promise<MetricFamily[]> {
  const lag = family("nodejs_eventloop_lag_seconds", "gauge", LAG_HELP)
  lag.add({}, await eventLoopLag())
  const mem = process.memoryUsage()
  const heapTotal = family("nodejs_heap_size_total_bytes", "gauge", "the JavaScript heap's size, in bytes")
  heapTotal.add({}, mem.heapTotal)
  const heapUsed = family("nodejs_heap_size_used_bytes", "gauge", "the JavaScript heap's bytes in use")
  heapUsed.add({}, mem.heapUsed)
  const external = family("nodejs_external_memory_bytes", "gauge", "memory held outside the heap for it, in bytes")
  external.add({}, mem.external)
  const own = [...processFamilies([{ labels: {}, figures: readSelf() }]), lag, heapTotal, heapUsed, external]
  return [...own, ...httpServer.families()]
}
