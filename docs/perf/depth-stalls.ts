// Stalls at 32 in flight (docs/perf/depth-stalls.md). Two uses, run from the project root:
//
//   bun docs/perf/depth-stalls.ts [pairs, default 10] [idle, default adaptive]
//     Starts a Bun hub ↔ Bun worker pair (bench/slots/methods/slotbus.ts) at a time, warms it until its compilers are
//     done (bench/slots/settle.ts), then measures 15 windows of 40 ms at 32 in flight, 64 B. A window whose rate is
//     under half the pair's median is a stall: printed with its CLOCK_MONOTONIC span (perf's `-k CLOCK_MONOTONIC`
//     clock), its max and p99, and the two main threads' ids. Then the count of stalled windows and pairs.
//
//   bun docs/perf/depth-stalls.ts gaps <perf script output> <from s> <to s> <hub tid> <worker tid>
//     Reads `perf script -F tid,cpu,time,event,trace` of `perf record -k CLOCK_MONOTONIC -a -e sched:sched_switch
//     -e sched:sched_wakeup` and prints each spell of 0.5 ms or more in [from, to] when neither main thread ran: how
//     it began (which one left its CPU, sleeping or preempted), what each CPU ran meanwhile, and who ran first after.
import { readFileSync } from "node:fs"
import { join } from "node:path"

const ROOT = join(import.meta.dir, "..", "..")
const [first, ...rest] = process.argv.slice(2)

if (first === "gaps") gaps(rest)
else await stalls(Number(first ?? 10), rest[0] ?? "adaptive")

async function stalls(pairs: number, idle: string) {
  const { open } = await import(join(ROOT, "bench/slots/methods/slotbus.ts"))
  const { measureTransport, payload, transportDriver } = await import(join(ROOT, "bench/slots/measure.ts"))
  const { settle, pairProcesses } = await import(join(ROOT, "bench/slots/settle.ts"))
  const { median } = await import(join(ROOT, "bench/lib/samples.ts"))
  const { loadNative } = await import(join(ROOT, "src/native/ffi.ts"))
  const native = await loadNative()
  const mono = () => (native.sb_rec_now() / 1e9).toFixed(6)
  let stalled = 0
  let windows = 0
  let pairsStalled = 0
  const rates: number[] = []
  for (let n = 0; n < pairs; n++) {
    const t = await open(idle)
    const children = readFileSync(`/proc/${process.pid}/task/${process.pid}/children`, "latin1").trim().split(" ")
    const worker = children.at(-1)
    try {
      const d = transportDriver(t)
      await settle((ms: number) => d.warm(64, 32, ms), 0, pairProcesses(new Set()))
      const seen: { from: string; to: string; rate: number; maxMs: number; p99Ms: number }[] = []
      for (let w = 0; w < 15; w++) {
        const from = mono()
        const s = await measureTransport(t, payload(64), 32, 40, 10)
        const to = mono()
        const ms = (q: number) => s.times.percentile(q) / 1e6
        seen.push({ from, to, rate: median(s.parts), maxMs: ms(100), p99Ms: ms(99) })
      }
      const mid = median(seen.map((s) => s.rate))
      let any = false
      for (const s of seen) {
        windows++
        rates.push(s.rate)
        if (s.rate >= mid / 2) continue
        stalled++
        any = true
        console.log(
          `pair ${n} (hub ${process.pid}, worker ${worker}) ${s.from}–${s.to} s: ${Math.round(s.rate / 1e3)} k msg/s against the pair's ${Math.round(mid / 1e3)} k, max ${s.maxMs.toFixed(1)} ms, p99 ${s.p99Ms.toFixed(1)} ms`,
        )
      }
      if (any) pairsStalled++
    } finally {
      await t.close()
    }
  }
  console.log(
    `${idle}: ${stalled} of ${windows} windows stalled, in ${pairsStalled} of ${pairs} pairs; median window ${Math.round(median(rates) / 1e3)} k msg/s`,
  )
}

function gaps([file, from, to, hub, worker]: string[]) {
  if (!file || !from || !to || !hub || !worker)
    throw new Error("usage: depth-stalls.ts gaps <perf script output> <from s> <to s> <hub tid> <worker tid>")
  const a = Number(from)
  const b = Number(to)
  const names = new Map([
    [hub, "hub"],
    [worker, "worker"],
  ])
  const running = new Map<string, boolean>([
    [hub, false],
    [worker, false],
  ])
  const onCpu = new Map<string, { name: string; since: number }>()
  let gap: { at: number; how: string; ran: Map<string, number> } | null = null
  const line = /^\s*(\d+)\s+\[(\d+)\]\s+([\d.]+):\s+sched:sched_switch:\s+(.*)$/
  const sw = /prev_comm=(.*?) prev_pid=(\d+) .*prev_state=(\S+) ==> next_comm=(.*?) next_pid=(\d+)/
  for (const text of readFileSync(file, "latin1").split("\n")) {
    const m = line.exec(text)
    if (!m) continue
    const cpu = m[2]!
    const t = Number(m[3])
    if (t > b) break
    const s = sw.exec(m[4]!)
    if (!s) continue
    const [, prevComm, prevPid, prevState, nextComm, nextPid] = s as unknown as string[]
    const before = [...running.values()].some(Boolean)
    const was = onCpu.get(cpu!)
    if (gap && was) gap.ran.set(was.name, (gap.ran.get(was.name) ?? 0) + t - Math.max(was.since, gap.at))
    onCpu.set(cpu!, { name: names.get(nextPid!) ?? `${nextComm}:${nextPid}@${cpu}`, since: t })
    if (running.has(prevPid!)) running.set(prevPid!, false)
    if (running.has(nextPid!)) running.set(nextPid!, true)
    const after = [...running.values()].some(Boolean)
    if (t < a) continue
    if (before && !after) {
      const left = names.get(prevPid!) ?? prevComm
      const how = prevState!.startsWith("R") ? "was preempted or yielded" : `slept (${prevState})`
      gap = { at: t, how: `the ${left} ${how} on CPU ${Number(cpu)}`, ran: new Map() }
    } else if (!before && after && gap) {
      const ms = (t - gap.at) * 1e3
      if (ms >= 0.5) {
        const ran = [...gap.ran].sort((x, y) => y[1] - x[1]).slice(0, 4)
        const list = ran.map(([n, s]) => `${n} ${(s * 1e3).toFixed(2)} ms`).join(", ")
        console.log(
          `${((gap.at - a) * 1e3).toFixed(3)} ms: ${ms.toFixed(2)} ms with neither running: ${gap.how}; meanwhile ${list}; then the ${names.get(nextPid!)} on CPU ${Number(cpu)}`,
        )
      }
      gap = null
    }
  }
}
