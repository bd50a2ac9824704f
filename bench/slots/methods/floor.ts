// The machine's floor: bench/slots/floor.c, two C processes ping-ponging over shared memory (spin or futex).
// It measures itself; this side only builds it, runs it and reads back its round-trip times.
import { readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { buildWithZig, NoCompilerError } from "../cc.ts"
import { spawn } from "../../lib/child.ts"
import { SkipMethod } from "../transport.ts"

export interface FloorRun {
  /** Round-trip times in ns, one per measured request. */
  samples: Uint32Array
  elapsedS: number
  hubCpuS: number
  workerCpuS: number
  parts: number[]
}

let built: Promise<string> | null = null

function binary(): Promise<string> {
  return (built ??= buildWithZig("floor", "floor").catch((e) => {
    throw e instanceof NoCompilerError ? new SkipMethod(`cannot build bench/slots/floor.c: ${e.message}`) : e
  }))
}

/** Builds the floor now, so a missing compiler is reported before any measuring starts. */
export async function prepare(): Promise<void> {
  await binary()
}

export async function measure(mode: "spin" | "futex", size: number, inflight: number, ms: number): Promise<FloorRun> {
  const bin = await binary()
  const file = join(tmpdir(), `slotbus-floor-${process.pid}-${mode}-${size}-${inflight}.bin`)
  const child = spawn([bin, mode, String(size), String(inflight), String(Math.max(1, Math.round(ms))), file])
  // It runs for `ms` plus a warm-up of ms/8; far longer means it is stuck: kill it (its worker dies with it).
  const stuck = setTimeout(() => child.signal("SIGKILL"), ms * 2 + 10_000)
  try {
    const code = await child.exited
    const out = child.lines.join("\n")
    if (code !== 0) throw new Error(`floor ${mode} exited with ${code}: ${child.stderr.trim()}`)
    const r = JSON.parse(out) as {
      count: number
      elapsed_s: number
      hub_cpu_s: number
      worker_cpu_s: number
      parts: number[]
    }
    const bytes = readFileSync(file)
    const samples = new Uint32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
    return { samples, elapsedS: r.elapsed_s, hubCpuS: r.hub_cpu_s, workerCpuS: r.worker_cpu_s, parts: r.parts }
  } finally {
    clearTimeout(stuck)
    rmSync(file, { force: true })
  }
}
