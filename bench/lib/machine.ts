// What the report says about the machine, and whether something else was using it while the bench ran.
import { readFileSync } from "node:fs"
import { cpus, loadavg, release, type } from "node:os"
import { join } from "node:path"

export interface Machine {
  cpu: string
  cores: number
  kernel: string
  bun: string
  /** The version in slotbus's package.json. */
  slotbus: string
  /** 1-minute load average just before the run. */
  loadBefore: number
  date: string
}

export function describeMachine(): Machine {
  const list = cpus()
  return {
    cpu: list[0]?.model?.trim() || "unknown CPU",
    cores: list.length || navigator.hardwareConcurrency,
    kernel: `${type()} ${release()}`,
    bun: Bun.version,
    slotbus: packageVersion(),
    loadBefore: loadavg()[0] ?? 0,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  }
}

function packageVersion(): string {
  try {
    return String(JSON.parse(readFileSync(join(import.meta.dir, "..", "..", "package.json"), "utf8")).version)
  } catch {
    return "unknown"
  }
}

/** Warnings that belong in every report's header. */
export function busyWarnings(m: Machine, othersCpuS: number | null, wallS: number): string[] {
  const out: string[] = []
  if (m.loadBefore / m.cores > 0.5)
    out.push(
      `the system was busy before the start: load average ${m.loadBefore.toFixed(2)} on ${m.cores} cores (> 0.5 per core)`,
    )
  if (othersCpuS !== null && wallS > 0 && othersCpuS / (wallS * m.cores) > 0.1)
    out.push(
      `other processes used ${((100 * othersCpuS) / (wallS * m.cores)).toFixed(0)}% of the machine's CPU while the bench ran (${othersCpuS.toFixed(1)} CPU-s in ${wallS.toFixed(0)} s)`,
    )
  if (out.length > 0)
    out.push("figures from a busy machine are slower and noisier than the machine can do; rerun when it is quiet")
  return out
}

/**
 * busyWarnings for a run that began at `started` (performance.now) when machineBusySeconds() was `busyBefore`,
 * counting one core of it as the bench's own.
 */
export function busyWarningsSince(m: Machine, busyBefore: number | null, started: number): string[] {
  const wallS = (performance.now() - started) / 1000
  const busyAfter = machineBusySeconds()
  return busyWarnings(m, busyBefore !== null && busyAfter !== null ? busyAfter - busyBefore - wallS : null, wallS)
}

/** CPU seconds spent by everything on the machine (not idle, not iowait) since boot; null without /proc/stat. */
export function machineBusySeconds(): number | null {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!
    const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number)
    return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / 100
  } catch {
    return null
  }
}
