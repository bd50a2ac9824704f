// `slotbus bench fronts`: one front against several on one port (docs/PROTOCOL.md §15). Each setup runs N fronts
// (front.ts: Bun.serve({ reusePort: true }) + bus.fetch on a bus listened to with { shared: true }) over one pool of
// W workers (worker.ts: 1 KiB per request, after --work-us of CPU) that serves every front, and loads the port with wrk
// (-t1 -c64; else an in-repo fetch client). The kernel spreads the connections over the fronts. Rounds alternate
// the setups, each set up fresh; figures are medians.
import { join } from "node:path"
import { killAll, spawn, type Child } from "../lib/child.ts"
import { hasWrk, httpLoad, type HttpCell } from "../lib/http-load.ts"
import { busyWarnings, describeMachine } from "../lib/machine.ts"
import { median } from "../lib/samples.ts"

const USAGE = `usage: slotbus bench fronts [--fronts 1,2] [--workers 2] [--seconds 5] [--rounds 3] [--clients 64]
                            [--client wrk|fetch] [--json]

Many fronts, one pool: N processes serving one port with Bun.serve({ reusePort: true }), each handing requests to
bus.fetch on SlotBus.listen(name, { shared: true }), over one pool of workers (superviseWorkers, run by the fronts'
leader) that serves every front over shared memory. Each worker answers 1 KiB after --work-us of CPU: by default
none, so the fronts (HTTP, bus.fetch) are what limits. req/s, p50 and p99 per number of fronts.

  --fronts <list>   the numbers of fronts to compare (default 1,2)
  --workers <n>     workers in the pool (default 2)
  --seconds <n>     measured seconds per setup and round, after 1 s of warm-up (default 5)
  --rounds <n>      rounds, the setups alternating, each set up fresh; figures are medians (default 3)
  --clients <n>     connections (default 64)
  --client <c>      wrk (the default when installed: apt-get install wrk) or fetch (in this process)
  --work-us <n>     CPU each request costs its worker, in µs (default 0)
  --idle <s>        park, adaptive or spin: the fronts' and workers' idle strategy (default: the library's)
  --json            one JSON object per line instead of the table`

const FRONT = join(import.meta.dir, "front.ts")

async function freePort(): Promise<number> {
  const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("") })
  const port = s.port!
  s.stop(true)
  return port
}

async function setup(
  fronts: number,
  workers: number,
  idle: string | undefined,
  workUs: number,
): Promise<{ port: number; procs: Child[] }> {
  const name = `bench-fronts-${process.pid}-${fronts}-${Math.random().toString(36).slice(2, 8)}`
  const port = await freePort()
  const procs: Child[] = []
  for (let i = 0; i < fronts; i++) {
    const args = [process.execPath, FRONT, name, String(port), String(workers), ...(i === 0 ? ["--pool"] : [])]
    const p = spawn(args, {
      stdin: "pipe",
      env: { ...process.env, SLOTBUS_FRONTS_IDLE: idle, SLOTBUS_FRONTS_WORK_US: String(workUs) },
    })
    procs.push(p)
    await p.whileAlive(p.waitLine(/^ready/, 60_000), "a front")
  }
  return { port, procs }
}

export interface FrontsRow {
  fronts: number
  rps: number
  p50us: number
  p99us: number
  errors: number
  /** req/s of each round, in order: how far apart they are says how noisy the machine was. */
  each: number[]
}

export async function main(argv: string[]): Promise<number> {
  const o = {
    fronts: [1, 2],
    workers: 2,
    seconds: 5,
    rounds: 3,
    clients: 64,
    client: undefined as string | undefined,
    idle: process.env.SLOTBUS_FRONTS_IDLE || undefined,
    workUs: 0,
    json: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const v = () => argv[++i] ?? ""
    if (a === "-h" || a === "--help") return (console.log(USAGE), 0)
    else if (a === "--fronts") o.fronts = v().split(",").map(Number)
    else if (a === "--workers") o.workers = Number(v())
    else if (a === "--seconds") o.seconds = Number(v())
    else if (a === "--rounds") o.rounds = Number(v())
    else if (a === "--clients") o.clients = Number(v())
    else if (a === "--client") o.client = v()
    else if (a === "--json") o.json = true
    else if (a === "--idle") o.idle = v()
    else if (a === "--work-us") o.workUs = Number(v())
    else return (console.error(`unknown option ${a}\n${USAGE}`), 2)
  }
  const bad =
    !(Number.isInteger(o.workUs) && o.workUs >= 0) ||
    [o.workers, o.seconds, o.rounds, o.clients, ...o.fronts].some((n) => !Number.isInteger(n) || n < 1)
  if (bad || o.fronts.some((n) => n > 64))
    return (
      console.error(`--fronts (1..64), --workers, --seconds, --rounds, --clients take whole numbers ≥ 1\n${USAGE}`), 2
    )
  if (o.client !== undefined && o.client !== "wrk" && o.client !== "fetch")
    return (console.error(`--client takes wrk or fetch, got ${o.client}\n${USAGE}`), 2)
  if (o.idle !== undefined && !["park", "adaptive", "spin"].includes(o.idle))
    return (console.error(`--idle takes park, adaptive or spin, got ${o.idle}\n${USAGE}`), 2)
  const load = httpLoad(o.client)
  const machine = describeMachine()
  process.on("exit", killAll)
  const cells = new Map<number, HttpCell[]>(o.fronts.map((n) => [n, []]))
  for (let r = 0; r < o.rounds; r++) {
    const order = r % 2 === 0 ? o.fronts : [...o.fronts].reverse()
    for (const n of order) {
      const { port, procs } = await setup(n, o.workers, o.idle, o.workUs)
      try {
        const url = `http://127.0.0.1:${port}/`
        await load(url, o.clients, 1)
        cells.get(n)!.push(await load(url, o.clients, o.seconds))
      } finally {
        await Promise.all(procs.map((p) => p.stop(3000)))
      }
    }
  }
  const rows = o.fronts.map((n): FrontsRow => {
    const c = cells.get(n)!
    return {
      fronts: n,
      rps: median(c.map((x) => x.rps)),
      p50us: median(c.map((x) => x.p50)),
      p99us: median(c.map((x) => x.p99)),
      errors: c.reduce((s, x) => s + x.errors, 0),
      each: c.map((x) => Math.round(x.rps)),
    }
  })
  if (o.json) {
    console.log(JSON.stringify({ machine }))
    for (const row of rows) console.log(JSON.stringify(row))
    return 0
  }
  console.log(
    `${machine.cpu}, ${machine.cores} cores, ${machine.kernel}, bun ${machine.bun}; ${o.workers} workers (${o.workUs} µs of work each request), ${o.clients} connections (${hasWrk() && o.client !== "fetch" ? "wrk -t1" : "fetch client"}), ${o.seconds} s × ${o.rounds} rounds, medians`,
  )
  console.log("fronts      req/s     p50 ms    p99 ms   socket errors   ratio   each round's req/s")
  const base = rows[0]!.rps
  for (const row of rows)
    console.log(
      `${String(row.fronts).padStart(6)} ${row.rps.toFixed(0).padStart(10)} ${(row.p50us / 1000).toFixed(2).padStart(10)} ${(row.p99us / 1000).toFixed(2).padStart(9)} ${String(row.errors).padStart(9)}   ${(row.rps / base).toFixed(2).padStart(5)}×   ${row.each.join(" ")}`,
    )
  for (const w of busyWarnings(machine, null, 0)) console.log(`warning: ${w}`)
  return 0
}
