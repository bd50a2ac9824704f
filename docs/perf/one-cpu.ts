// Two processes on one CPU: what a round trip costs when the scheduler puts both sides of a pair on one CPU (the
// ~6 µs mode of docs/perf/round-nine-cliffs.md). Each row free (the scheduler decides) and pinned to CPU 0
// (taskset -c 0): the C floor (bench/slots/floor.c) yielding after every empty poll and sleeping on a futex, and a
// slotbus pair (a Bun front and a Bun worker, default options) with the context switches of each side's main thread
// per round trip. Run from the project root: bun docs/perf/one-cpu.ts [round trips, default 20000]
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROOT = join(import.meta.dir, "..", "..")
const [n = "20000", role] = process.argv.slice(2)
const N = Number(n)
const pct = (sorted: ArrayLike<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!
const us = (ns: number) => (ns / 1000).toFixed(2)

/** voluntary and involuntary context switches of a process's main thread so far. */
function switches(pid: number): [number, number] {
  const s = readFileSync(`/proc/${pid}/task/${pid}/status`, "latin1")
  return [
    Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(s)![1]),
    Number(/nonvoluntary_ctxt_switches:\s+(\d+)/.exec(s)![1]),
  ]
}

if (role === "pair") {
  const { SlotBus } = await import(join(ROOT, "src/index.ts"))
  const bus = await SlotBus.listen(`one-cpu-${process.pid}`, { slots: 32 })
  const worker = Bun.spawn([process.execPath, join(ROOT, "bench/buses/worker.ts"), bus.name], { stdout: "ignore" })
  try {
    await bus.waitForWorkers(1, { timeoutMs: 20_000 })
    const body = new Uint8Array(64)
    for (let i = 0; i < N; i++) await bus.request({ method: "POST", path: "/", body }) // warm-up
    const f0 = switches(process.pid)
    const w0 = switches(worker.pid)
    const t = new Float64Array(N)
    for (let i = 0; i < N; i++) {
      const s = Bun.nanoseconds()
      await bus.request({ method: "POST", path: "/", body })
      t[i] = Bun.nanoseconds() - s
    }
    const [f1, w1] = [switches(process.pid), switches(worker.pid)]
    t.sort()
    const per = (a: number[], b: number[]) =>
      `${((b[0]! - a[0]!) / N).toFixed(2)} vol + ${((b[1]! - a[1]!) / N).toFixed(2)} invol`
    console.log(
      `p50 ${us(pct(t, 0.5))} µs, p99 ${us(pct(t, 0.99))} µs; switches a round trip: front ${per(f0, f1)}, worker ${per(w0, w1)}`,
    )
  } finally {
    worker.kill()
    await bus.close({ drain: false })
  }
} else {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-one-cpu-"))
  try {
    const floor = join(dir, "floor")
    execFileSync("cc", ["-O2", "-o", floor, join(ROOT, "bench/slots/floor.c")])
    const load = readFileSync("/proc/loadavg", "latin1").split(" ").slice(0, 3).join(" ")
    console.log(`load average ${load}; ${N} sequential 64 B round trips each`)
    for (const pin of [[], ["taskset", "-c", "0"]]) {
      const where = pin.length ? "pinned to CPU 0" : "free"
      for (const mode of ["yield", "futex"]) {
        const file = join(dir, "samples")
        execFileSync(pin[0] ?? floor, [...pin.slice(1), ...(pin.length ? [floor] : []), mode, "64", "1", "300", file])
        const b = readFileSync(file)
        const s = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >> 2).slice().sort()
        console.log(`C floor ${mode}, ${where}: p50 ${us(pct(s, 0.5))} µs, p99 ${us(pct(s, 0.99))} µs`)
      }
      const out = execFileSync(pin[0] ?? process.execPath, [
        ...pin.slice(1),
        ...(pin.length ? [process.execPath] : []),
        import.meta.path,
        n,
        "pair",
      ])
      console.log(`slotbus adaptive, ${where}: ${String(out).trim()}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
