// `slotbus bench leases --waiters N`: what N claims waiting on one held subject cost while nothing happens
// (CPU-s per s of this process, its threads), and how fast a release reaches the next waiter, hand over
// after hand over (release → the first waiter in line holds it; holder and waiters in this process).
import { readdirSync, readFileSync } from "node:fs"
import { Contest } from "../../src/leases/index.ts"

export interface WaitersResult {
  waiters: number
  idleCpuPerS: number
  waiterThreads: number
  wakeP50Us: number
  wakeP99Us: number
  handovers: number
}

function sblWaiterThreads(): number {
  let n = 0
  for (const t of readdirSync("/proc/self/task"))
    try {
      if (readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "sbl-waiter") n++
    } catch {} // exited meanwhile
  return n
}

const cpuS = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

export async function waitersBench(n: number, idleMs = 2000, handovers = 100): Promise<WaitersResult> {
  using contest = await Contest.open(`bench-waiters-${process.pid}-${n}`)
  const subject = { kind: 1, label: "held" }
  const first = contest.tryClaim(subject, { owner: "holder" })
  if (!first.claimed) throw new Error("the bench subject is held by someone else")
  const stop = new AbortController()
  let releasedAt = 0
  const wakes: number[] = []
  const done = Promise.withResolvers<void>()
  const waits = Array.from({ length: n }, () =>
    contest.claim(subject, { signal: stop.signal }).then(
      async (lease) => {
        wakes.push(performance.now() - releasedAt)
        if (wakes.length >= Math.min(handovers, n)) done.resolve()
        await Bun.sleep(2) // hold it a moment, so the others are asleep again when it goes
        releasedAt = performance.now()
        lease.release()
      },
      () => {},
    ),
  )
  await Bun.sleep(200) // every waiter is asleep
  const threads = sblWaiterThreads()
  const t0 = performance.now()
  const c0 = cpuS()
  await Bun.sleep(idleMs)
  const idleCpuPerS = (cpuS() - c0) / ((performance.now() - t0) / 1000)
  releasedAt = performance.now()
  first.lease.release()
  await done.promise
  stop.abort()
  await Promise.all(waits)
  const us = wakes.map((ms) => ms * 1000).sort((a, b) => a - b)
  if (process.env.SLOTBUS_BENCH_DEBUG) console.error(wakes.map((w) => w.toFixed(2)).join(" "))
  const q = (p: number) => us[Math.min(us.length - 1, Math.floor(p * us.length))]!
  return {
    waiters: n,
    idleCpuPerS,
    waiterThreads: threads,
    wakeP50Us: q(0.5),
    wakeP99Us: q(0.99),
    handovers: us.length,
  }
}

export function renderWaiters(rs: WaitersResult[]): string {
  const rows = [["waiters", "idle CPU-s/s", "sbl-waiter threads", "wake p50 µs", "wake p99 µs", "handovers"]]
  for (const r of rs)
    rows.push([
      String(r.waiters),
      r.idleCpuPerS.toFixed(4),
      String(r.waiterThreads),
      r.wakeP50Us.toFixed(0),
      r.wakeP99Us.toFixed(0),
      String(r.handovers),
    ])
  const w = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => c.padStart(w[i]!)).join("  ")).join("\n")
}
