// `slotbus bench buses`: one front with 1, 2, 4 and 8 buses, each served by a worker of its own (Bun and Node taking
// turns), and each bus's sequential 64 B round trip while the others sit idle, against one bus alone of the same
// worker runtime. A second bus's idle worker should cost nothing; where it did (a startup poll that held a CPU,
// the crowd word counting every bus), the busy bus's pair ended up on one CPU or parked on every request.
// Setups are fresh each round, in alternating order; each bus is measured in turn after --settle-ms.
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"
import { killAll, spawn, type Child } from "../lib/child.ts"
import { busyWarnings, describeMachine } from "../lib/machine.ts"
import { benchNode, buildForNode, nodeFlags } from "../lib/node.ts"
import { median, range, Samples } from "../lib/samples.ts"

const USAGE = `usage: slotbus bench buses [--buses 1,2,4,8] [--workers bun,node] [--rounds 3] [--requests 2000]
                           [--settle-ms 500] [--json]

One front (this process) with N buses open, each with one echo worker of its own, the workers' runtimes taken in
turn from --workers. Each bus in turn gets --requests sequential 64 B bus.request round trips (after a quarter as
many unmeasured) while the other buses sit idle: p50 and p99 per bus, and p50 ÷ the p50 of one bus alone with a
worker of the same runtime (the 1-bus setups, one per runtime, measured in the same rounds). Goal: every ratio
≤ 1.25 and no round's p50 in the tens of µs.

  --buses <list>     the numbers of buses to compare (default 1,2,4,8; 1 is always measured, as "alone")
  --workers <list>   bun, node or both, taken in turn by the buses (default bun,node; bun without a Node >= 26.1)
  --rounds <n>       rounds, the setups in alternating order, each set up fresh; figures are medians (default 3)
  --requests <n>     measured round trips per bus and round (default 2000)
  --settle-ms <n>    wait after the last worker connected, before measuring (default 500): fresh processes' JIT
  --json             one JSON object per line: the machine, then one per bus and setup`

type Kind = "bun" | "node"

export interface BusesRow {
  buses: number
  bus: number
  worker: Kind
  p50us: number
  p99us: number
  /** p50 ÷ the p50 of one bus alone with a worker of the same runtime. */
  ratio: number
  /** Each round's p50, in order. */
  each: number[]
}

interface NodeBuild {
  cmd: string[]
  env: Record<string, string | undefined>
  remove(): void
}

const WORKER = join(import.meta.dir, "worker.ts")
const body = new Uint8Array(64).fill(7)

function startWorker(kind: Kind, name: string, node: NodeBuild | null): Child {
  if (kind === "bun") return spawn([process.execPath, WORKER, name])
  return spawn([...node!.cmd, name], { env: node!.env })
}

/** `n` sequential round trips through `bus`, after n/4 unmeasured. */
async function sequential(bus: SlotBus, n: number): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < n >> 2; i++) await bus.request({ method: "POST", path: "/", body })
  const s = new Samples()
  for (let i = 0; i < n; i++) {
    const t = Bun.nanoseconds()
    await bus.request({ method: "POST", path: "/", body })
    s.record(Bun.nanoseconds() - t)
  }
  return { p50: s.percentile(50) / 1e3, p99: s.percentile(99) / 1e3 }
}

/** One setup: `kinds.length` buses, one worker each; every bus measured in turn, the others idle. */
async function measureSetup(
  kinds: Kind[],
  o: { requests: number; settleMs: number },
  node: NodeBuild | null,
): Promise<{ p50: number; p99: number }[]> {
  const buses: SlotBus[] = []
  const procs: Child[] = []
  try {
    for (const [i, kind] of kinds.entries()) {
      const bus = await SlotBus.listen(`bench-buses-${process.pid}-${kinds.length}-${i}`, { slots: 32 })
      buses.push(bus)
      const p = startWorker(kind, bus.name, node)
      procs.push(p)
      await p.whileAlive(bus.waitForWorkers(1, { timeoutMs: 30_000 }), `the ${kind} worker of bus ${i}`)
    }
    await Bun.sleep(o.settleMs)
    const out: { p50: number; p99: number }[] = []
    for (const bus of buses) out.push(await sequential(bus, o.requests))
    return out
  } finally {
    for (const bus of buses) await bus.close({ drain: false })
    await Promise.all(procs.map((p) => p.stop(3000)))
  }
}

export async function main(argv: string[]): Promise<number> {
  const o = {
    buses: [1, 2, 4, 8],
    workers: null as Kind[] | null,
    rounds: 3,
    requests: 2000,
    settleMs: 500,
    json: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = () => argv[++i] ?? ""
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    else if (a === "--buses") o.buses = v().split(",").map(Number)
    else if (a === "--workers") o.workers = v().split(",") as Kind[]
    else if (a === "--rounds") o.rounds = Number(v())
    else if (a === "--requests") o.requests = Number(v())
    else if (a === "--settle-ms") o.settleMs = Number(v())
    else if (a === "--json") o.json = true
    else return (console.error(`unknown option ${a}\n${USAGE}`), 2)
  }
  const whole = (n: number, min: number) => Number.isInteger(n) && n >= min
  if (!o.buses.every((n) => whole(n, 1) && n <= 64) || !whole(o.rounds, 1) || !whole(o.requests, 10))
    return (console.error(`--buses takes 1..64, --rounds ≥ 1, --requests ≥ 10 (whole numbers)\n${USAGE}`), 2)
  if (!whole(o.settleMs, 0)) return (console.error(`--settle-ms takes whole milliseconds ≥ 0\n${USAGE}`), 2)
  if (o.workers && (o.workers.length === 0 || o.workers.some((k) => k !== "bun" && k !== "node")))
    return (console.error(`--workers takes bun, node or both, got ${o.workers.join(",")}\n${USAGE}`), 2)

  const found = benchNode()
  const notes: string[] = []
  let kinds: Kind[] = o.workers ?? ["bun", "node"]
  if ("skip" in found && kinds.includes("node")) {
    if (o.workers) return (console.error(`--workers node needs Node: ${found.skip}`), 2)
    kinds = ["bun"]
    notes.push(`Node workers skipped: ${found.skip}`)
  }
  let node: NodeBuild | null = null
  if (kinds.includes("node") && "node" in found) {
    const b = buildForNode([WORKER])
    const platform = detectPlatform()
    const lib = join(import.meta.dir, "..", "..", "prebuilds", platform, libraryFile(platform))
    node = {
      cmd: [found.node, ...nodeFlags(found.node), b.entries[0]!],
      // node:ffi's ExperimentalWarning off; the built worker lives in a temporary folder, away from prebuilds/
      env: { ...process.env, NODE_NO_WARNINGS: "1", SLOTBUS_LIB: process.env.SLOTBUS_LIB ?? lib },
      remove: b.remove,
    }
  }
  const machine = describeMachine()
  process.on("exit", killAll)
  // setups: one bus alone per runtime, then each N > 1 with the runtimes in turn
  const runtimes = [...new Set(kinds)]
  const setups: Kind[][] = [
    ...runtimes.map((k) => [k]),
    ...o.buses.filter((n) => n > 1).map((n) => Array.from({ length: n }, (_, i) => kinds[i % kinds.length]!)),
  ]
  const got = setups.map((kinds) => kinds.map(() => [] as { p50: number; p99: number }[]))
  try {
    for (let r = 0; r < o.rounds; r++) {
      const order = setups.map((_, i) => i)
      if (r % 2 === 1) order.reverse()
      for (const i of order) {
        const res = await measureSetup(setups[i]!, o, node)
        res.forEach((x, b) => got[i]![b]!.push(x))
      }
    }
  } finally {
    node?.remove()
  }
  const alone = new Map(runtimes.map((k, i) => [k, median(got[i]![0]!.map((x) => x.p50))]))
  const rows: BusesRow[] = setups.flatMap((ks, i) =>
    ks.map((k, b) => {
      const p50 = median(got[i]![b]!.map((x) => x.p50))
      return {
        buses: ks.length,
        bus: b,
        worker: k,
        p50us: p50,
        p99us: median(got[i]![b]!.map((x) => x.p99)),
        ratio: p50 / alone.get(k)!,
        each: got[i]![b]!.map((x) => Math.round(x.p50 * 100) / 100),
      }
    }),
  )
  if (o.json) {
    console.log(JSON.stringify({ machine, notes }))
    for (const row of rows) console.log(JSON.stringify(row))
    return 0
  }
  console.log(
    `${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, bun ${machine.bun}, load ${machine.loadBefore.toFixed(2)} before; 64 B sequential, ${o.requests} round trips per bus and round, ${o.rounds} rounds, medians`,
  )
  console.log("buses  bus  worker   p50 µs   p99 µs   p50 ÷ alone   each round's p50")
  for (const row of rows)
    console.log(
      `${String(row.buses).padStart(5)} ${String(row.bus).padStart(4)}  ${row.worker.padEnd(6)} ${row.p50us.toFixed(2).padStart(8)} ${row.p99us.toFixed(2).padStart(8)}   ${row.ratio.toFixed(2).padStart(9)}×   ${row.each.join(" ")}`,
    )
  for (const n of [...new Set(rows.map((r) => r.buses))].filter((n) => n > 1)) {
    const mine = rows.filter((r) => r.buses === n)
    const [lo, hi] = range(mine.map((r) => r.ratio))
    const slow = mine.flatMap((r) => r.each).filter((p) => p >= 20).length
    console.log(
      `${n} buses: p50 ÷ alone ${lo.toFixed(2)}–${hi.toFixed(2)}×${hi > 1.25 ? " (over 1.25×)" : ""}; ${slow} bus-rounds with a p50 ≥ 20 µs`,
    )
  }
  for (const w of [...notes, ...busyWarnings(machine, null, 0)]) console.log(`note: ${w}`)
  return 0
}
