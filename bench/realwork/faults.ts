// Where one worker's CPU and page faults per request go, by thread: a hub sends /page/<id> (render.ts), or with the
// route `cached` /cached/<id> (the same pages kept: the answering alone), to one worker with 16 in flight, and reads
// /proc for the worker's threads (the main thread, the JSC collector, JIT workers) before and after. The worker
// answers in one of these ways:
//   noop   renders the page and answers "ok" (the render's own garbage, no answer to write)
//   str    answers the page as a string          rpc    bus.remote().renderPage(id)
//   fetch  { fetch: true }, a Response around the page (render.ts's answer())
// Usage: bun bench/realwork/faults.ts <mode> [requests=2000] [idle] [page|cached]
//   e.g. BUN_GC_TIMER_DISABLE=1 bun … noop 2000 park; bun … fetch 20000 park cached
import { readdirSync, readFileSync } from "node:fs"
import { SlotBus, SlotWorker, type IdleStrategy } from "../../src/index.ts"
import { answer, cachedPage, renderPage } from "./render.ts"

const MODES = ["noop", "str", "rpc", "fetch"]
const ROUTES = ["page", "cached"]
const [mode = "", count = "2000", idleArg, routeArg, role, busArg] = process.argv.slice(2)
const idle = (idleArg || undefined) as IdleStrategy | undefined
const route = routeArg || "page"
const pageOf = (path: string) => Number(path.split("/")[2])
const page = route === "cached" ? cachedPage : renderPage

if (role === "worker") {
  const opts = idle ? { idle } : {}
  if (mode === "rpc") await SlotWorker.expose(busArg!, { renderPage: page }, opts)
  else if (mode === "fetch")
    await SlotWorker.connect(busArg!, (req: Request) => answer(new URL(req.url).pathname), { ...opts, fetch: true })
  else
    await SlotWorker.connect(
      busArg!,
      (req) => (mode === "noop" ? (page(pageOf(req.path)), "ok") : page(pageOf(req.path))),
      opts,
    )
} else {
  if (!MODES.includes(mode) || !/^\d+$/.test(count) || !ROUTES.includes(route)) {
    console.error(
      `usage: bun bench/realwork/faults.ts ${MODES.join("|")} [requests] [spin|adaptive|park] [${ROUTES.join("|")}]`,
    )
    process.exit(2)
  }
  const n = Number(count)
  const bus = await SlotBus.listen(`faults-${process.pid}`, { slots: 16, ...(idle ? { idle } : {}) })
  const child = Bun.spawn([process.execPath, import.meta.path, mode, count, idleArg ?? "", route, "worker", bus.name], {
    stdio: ["ignore", "inherit", "inherit"],
  })
  try {
    await bus.waitForWorkers(1, { timeoutMs: 20_000 })
    const remote = bus.remote<{ renderPage: typeof renderPage }>()
    const one = async (i: number) => {
      const path = `/${route}/${i % 64}`
      if (mode === "rpc") return (await remote.renderPage(i % 64)).length
      if (mode === "fetch") return (await (await bus.fetch(new Request(`http://x${path}`))).text()).length
      return (await bus.request({ path })).body.length
    }
    const run = async (total: number) => {
      let i = 0
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (i < total) await one(i++)
        }),
      )
    }
    await run(1000) // warm-up
    const s0 = threads(child.pid)
    const h0 = process.resourceUsage()
    const t0 = performance.now()
    await run(n)
    const t1 = performance.now()
    const h1 = process.resourceUsage()
    const s1 = threads(child.pid)
    let faults = 0
    let ticks = 0
    const parts: string[] = []
    for (const [name, [f, t]] of s1) {
      const [f0, t0_] = s0.get(name) ?? [0, 0]
      faults += f - f0
      ticks += t - t0_
      if (f - f0 > n / 100 || t - t0_ > 0)
        parts.push(`${name} ${((f - f0) / n).toFixed(1)} / ${(((t - t0_) * 10) / n).toFixed(2)} ms`)
    }
    const hubFaults = (h1.minorPageFault - h0.minorPageFault) / n
    const hubMs = (h1.userCPUTime + h1.systemCPUTime - h0.userCPUTime - h0.systemCPUTime) / 1000 / n
    console.log(
      `${mode} ${route}${idle ? ` (${idle})` : ""}: ${((n / (t1 - t0)) * 1000).toFixed(0)} req/s; worker ${(faults / n).toFixed(1)} faults and ${((ticks * 10) / n).toFixed(3)} ms CPU per request [${parts.join("; ")}]; hub ${hubFaults.toFixed(1)} faults, ${hubMs.toFixed(3)} ms`,
    )
  } finally {
    child.kill()
    await child.exited
    await bus.close({ drain: false })
  }
}

/** Minor faults and CPU ticks (10 ms) of each thread of `pid`, summed by thread name. */
function threads(pid: number): Map<string, [number, number]> {
  const out = new Map<string, [number, number]>()
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8")
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim()
      const [a, b] = out.get(name) ?? [0, 0]
      out.set(name, [a + Number(f[7]), b + Number(f[11]) + Number(f[12])])
    } catch {} // a thread that ended meanwhile
  }
  return out
}
