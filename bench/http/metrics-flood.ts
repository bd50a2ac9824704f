// What a client scraping /metrics in a loop costs an app's own route (docs/api.md, "What a scrape costs"):
//   bun bench/http/metrics-flood.ts [--rounds 6] [--seconds 5] [--workers 4]
// One Bun.serve front (a child process) with `workers` bus.fetch workers (processes of this file) serves
// /small/<id> through the bus, /hello itself, /metrics (metricsHandler, its default 1 s text) and /metrics-every
// (maxAgeMs 0: only scrapes during a computation share it). Each round floods /small/<id> with wrk -t1 -c8 beside
// wrk -t1 -c4 on /hello, /metrics and /metrics-every in turn; a row is /small's req/s beside a flood as a share of
// it beside /hello in the same round, and the front's CPU µs per flood request.
import { parseArgs } from "node:util"
import { processCpuSeconds } from "../lib/cpu.ts"
import { type Front, startFront, stopFront } from "../lib/front.ts"
import { httpLoad } from "../lib/http-load.ts"
import { describeMachine } from "../lib/machine.ts"
import { median, range } from "../lib/samples.ts"

const FLOODS = ["/hello", "/metrics", "/metrics-every"] as const
const IDS = 64

/** A bus.fetch worker: /small/<id> answers a small JSON object. */
async function worker(bus: string) {
  const { SlotWorker } = await import("../../src/index.ts")
  const small = (req: Request) => {
    const id = Number(new URL(req.url).pathname.slice("/small/".length))
    return Response.json({ id, name: `item ${id}`, inStock: id % 3 !== 0 })
  }
  await (await SlotWorker.connect(bus, small, { fetch: true })).closed
}

async function front(workers: number) {
  const { SlotBus, superviseWorkers } = await import("../../src/index.ts")
  const { metricsHandler } = await import("../../src/status/index.ts")
  const bus = await SlotBus.listen(`metrics-flood-${process.pid}`)
  const pool = superviseWorkers(bus, {
    command: [process.execPath, import.meta.path, "--worker", bus.name],
    instances: workers,
    stdout: "ignore",
    stderr: "inherit",
  })
  await bus.waitForWorkers(workers, { timeoutMs: 30_000 })
  const shared = metricsHandler([bus])
  const every = metricsHandler([bus], { maxAgeMs: 0 })
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const path = new URL(req.url).pathname
      if (path.startsWith("/small/")) return bus.fetch(req)
      if (path === "/hello") return Response.json({ hello: "world" })
      if (path === "/metrics") return shared(req)
      if (path === "/metrics-every") return every(req)
      return new Response("not found", { status: 404 })
    },
  })
  console.log(`ready port=${server.port} workers=${pool.instances.map((i) => i.pid).join(",")} threads=`)
  const end = async () => {
    await server.stop(true)
    await pool.stop({ drainTimeoutMs: 2000, killGraceMs: 1000 })
    await bus.close({ drain: false })
    process.exit(0)
  }
  process.once("SIGTERM", end)
  for await (const _ of Bun.stdin.stream());
  await end()
}

async function bench() {
  const { values } = parseArgs({
    options: {
      rounds: { type: "string", default: "6" },
      seconds: { type: "string", default: "5" },
      workers: { type: "string", default: "4" },
    },
  })
  const [rounds, seconds, workers] = [values.rounds, values.seconds, values.workers].map(Number) as [
    number,
    number,
    number,
  ]
  const m = describeMachine()
  console.log(
    `# /metrics flooded beside an app route\n${m.cpu} × ${m.cores}, ${m.kernel}, bun ${m.bun}; load average ${m.loadBefore.toFixed(2)} before; ${m.date}`,
  )
  const load = httpLoad("wrk")
  const f: Front = await startFront([process.execPath, import.meta.path, "--front", String(workers)])
  const share = new Map(FLOODS.map((p) => [p, [] as number[]]))
  const cpuUs = new Map(FLOODS.map((p) => [p, [] as number[]]))
  try {
    await load(`${f.base}/small`, 8, 1, IDS) // warm-up
    for (let r = 0; r < rounds; r++) {
      const rps = new Map<string, number>()
      for (const flood of FLOODS) {
        const cpu0 = processCpuSeconds(f.front.pid)
        const [route, beside] = await Promise.all([
          load(`${f.base}/small`, 8, seconds, IDS),
          load(`${f.base}${flood}`, 4, seconds),
        ])
        const cpu = processCpuSeconds(f.front.pid) - cpu0
        rps.set(flood, route.rps)
        // the front's CPU a request it served, both floods' requests counted
        cpuUs.get(flood)!.push((cpu * 1e6) / (route.count + beside.count))
        console.log(
          `round ${r + 1} ${flood}: /small ${route.rps.toFixed(0)} req/s, flood ${beside.rps.toFixed(0)} req/s`,
        )
      }
      for (const flood of FLOODS) share.get(flood)!.push(rps.get(flood)! / rps.get("/hello")!)
    }
  } finally {
    await stopFront(f)
  }
  console.log(
    "\n| beside wrk -c4 on | /small req/s as a share of beside /hello: median (range) | front CPU µs a request |",
  )
  console.log("|---|---:|---:|")
  for (const flood of FLOODS) {
    const [lo, hi] = range(share.get(flood)!)
    const s = median(share.get(flood)!).toFixed(2)
    console.log(`| ${flood} | ${s} (${lo.toFixed(2)}–${hi.toFixed(2)}) | ${median(cpuUs.get(flood)!).toFixed(1)} |`)
  }
  console.log(`load average after: ${describeMachine().loadBefore.toFixed(2)}`)
}

if (process.argv[2] === "--front") await front(Number(process.argv[3]))
else if (process.argv[2] === "--worker") await worker(process.argv[3]!)
else await bench()
