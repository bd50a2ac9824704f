// A worker's runtime as its front's GET /metrics shows it (docs/PROTOCOL.md §2, header line 8): each worker writes
// its event-loop lag and heap into its own connection's region about once a second, and the front reads them as it
// is scraped, without asking the worker. Real processes: a front with two workers, one of which stalls its event
// loop 300 ms every second and holds a large heap.
import { afterEach, expect, test } from "bun:test"
import { SlotBus } from "../../src/index.ts"
import { serveStatus } from "../../src/status/index.ts"
import { bunChild, busName, spawn, until, type Child } from "../support/helpers.ts"
import { promtool, sample } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const promtoolSkip = toolSkipReason("promtool")
sayWhySkipped("a stalling worker's runtime series", promtoolSkip)
const python = Bun.which("python3")

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

async function worker(name: string, ...flags: string[]): Promise<Child> {
  const w = bunChild("status/stall-worker.ts", [name, ...flags])
  cleanups.push(() => w.kill())
  await w.waitLine(/^ready$/, 30_000)
  return w
}

const RUNTIME = [
  "nodejs_eventloop_lag_seconds",
  "nodejs_heap_size_total_bytes",
  "nodejs_heap_size_used_bytes",
  "nodejs_external_memory_bytes",
]

test.skipIf(promtoolSkip !== null)(
  "each worker's event-loop lag and heap are series of its index, higher for the worker that stalls and holds memory, and promtool accepts them",
  async () => {
    const bus = await SlotBus.listen(busName("wruntime"))
    cleanups.push(() => bus.close({ drain: false }))
    const status = await serveStatus([bus], { port: 0 })
    cleanups.push(() => status.stop())
    await worker(bus.name) // index 0: idle
    await bus.waitForWorkers(1, 30_000)
    await worker(bus.name, "--stall") // index 1
    await bus.waitForWorkers(2, 30_000)
    const of = (text: string, f: string, index: number) => sample(text, `${f}{bus="${bus.name}",worker="${index}"}`)
    let text = ""
    await until(
      async () => {
        text = await (await fetch(`${status.url}/metrics`)).text()
        const lag = [0, 1].map((index) => of(text, "nodejs_eventloop_lag_seconds", index))
        return lag[0] !== undefined && lag[1] !== undefined && lag[1] > lag[0]
      },
      "a scrape shows the stalling worker's event loop later than the idle one's",
      60_000,
      200,
    )
    expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
    for (const f of RUNTIME) {
      expect(of(text, f, 0)).toBeGreaterThanOrEqual(0)
      expect(of(text, f, 1)).toBeGreaterThanOrEqual(0)
    }
    expect(of(text, "nodejs_heap_size_used_bytes", 1)).toBeGreaterThan(of(text, "nodejs_heap_size_used_bytes", 0)!)
    expect(of(text, "nodejs_heap_size_total_bytes", 1)).toBeGreaterThan(of(text, "nodejs_heap_size_total_bytes", 0)!)
    expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0) // the front's own goes on, unlabelled
  },
  120_000,
)

test.skipIf(python === null)(
  "a worker that writes no vitals report (the Python one) has its process series and no runtime series",
  async () => {
    const bus = await SlotBus.listen(busName("wruntime"))
    cleanups.push(() => bus.close({ drain: false }))
    const status = await serveStatus([bus], { port: 0 })
    cleanups.push(() => status.stop())
    const py = spawn([python!, `${import.meta.dir}/../../examples/python-worker/echo.py`, bus.name])
    cleanups.push(() => py.kill())
    await py.waitLine(/^ready$/, 30_000)
    await bus.waitForWorkers(1, 30_000) // index 0: Python
    await worker(bus.name) // index 1: Bun
    await bus.waitForWorkers(2, 30_000)
    const labels = (i: number) => `{bus="${bus.name}",worker="${i}"}`
    let text = ""
    await until(
      async () => {
        text = await (await fetch(`${status.url}/metrics`)).text()
        return sample(text, `nodejs_heap_size_used_bytes${labels(1)}`) !== undefined
      },
      "the Bun worker's first report arrives",
      30_000,
      100,
    )
    expect(sample(text, `process_resident_memory_bytes${labels(0)}`)).toBeGreaterThan(0)
    for (const f of RUNTIME) {
      expect(sample(text, `${f}${labels(0)}`)).toBeUndefined()
      expect(sample(text, `${f}${labels(1)}`)).toBeGreaterThanOrEqual(0)
    }
  },
  60_000,
)

test("the report's timer keeps no worker alive: a worker whose hub closed exits by itself", async () => {
  const bus = await SlotBus.listen(busName("wruntime"))
  let open = true
  cleanups.push(() => (open ? bus.close({ drain: false }) : Promise.resolve()))
  const status = await serveStatus([bus], { port: 0 })
  cleanups.push(() => status.stop())
  const w = await worker(bus.name)
  await bus.waitForWorkers(1, 30_000)
  await until(
    async () =>
      sample(
        await (await fetch(`${status.url}/metrics`)).text(),
        `nodejs_heap_size_used_bytes{bus="${bus.name}",worker="0"}`,
      ) !== undefined,
    "the worker's first report arrives",
    30_000,
    100,
  )
  open = false
  await bus.close({ drain: false })
  expect(await w.proc.exited).toBe(0) // nothing but the closed worker was left to keep it running
}, 60_000)
