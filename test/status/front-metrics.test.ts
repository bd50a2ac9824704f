// GET /metrics as a Prometheus user reads it, from fronts behind Bun.serve (test/support/status/metrics-front.ts: a shared
// name, a pool of two echo workers): process and runtime series under the conventional names for the front and
// each worker, route labels that are patterns, a client that goes away counted apart from errors, and two fronts
// of one name that report each worker once. promtool and a real Prometheus server read it; both skip where Debian's
// prometheus package is missing (with the apt-get command), unless SLOTBUS_REQUIRE_TOOLS=1.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { METRICS } from "../../src/status/index.ts"
import { bunChild, busName, stopAll, until, withHub, type Child } from "../support/helpers.ts"
import { promtool, sample, startPrometheus } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const promtoolSkip = toolSkipReason("promtool")
const prometheusSkip = toolSkipReason("prometheus")
sayWhySkipped("promtool check metrics of a front", promtoolSkip)
sayWhySkipped("a Prometheus server scraping two fronts", prometheusSkip)

const children: Child[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.stop()))
})
afterAll(async () => {
  await stopAll()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Front {
  child: Child
  http: string
  metrics: string
  index: number
  /** The pids of the pool's two workers, once both serve it. */
  workers(): Promise<number[]>
}

async function front(name: string): Promise<Front> {
  const child = bunChild("status/metrics-front.ts", [name])
  children.push(child)
  const [, http, metrics, index] = await child.waitLine(/^ready (\S+) (\S+) (\d+)$/, 20_000)
  const workers = async () => {
    const [, pids] = await child.waitLine(/^workers (\S+)$/, 30_000)
    return pids!.split(",").map(Number).sort()
  }
  return { child, http: http!, metrics: metrics!, index: Number(index), workers }
}

const scrape = async (f: Front) => (await fetch(`${f.metrics}/metrics`)).text()

/** The samples of family `name` in `text` whose label text matches `labels`, as [labels, value]. */
function samples(text: string, name: string): [string, number][] {
  const out: [string, number][] = []
  for (const m of text.matchAll(new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`, "gm")))
    out.push([m[1] ?? "", Number(m[2])])
  return out
}

/** When process `pid` started (seconds since the epoch), from /proc/<pid>/stat's starttime and /proc/stat's btime. */
function startedAt(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
  const btime = Number(/^btime (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))![1])
  return btime + Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]) / 100
}

/** The soft "Max open files" of process `pid`, as /proc/<pid>/limits says. */
const maxFds = (pid: number) => Number(/^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, "utf8"))![1])

const PROCESS = [
  "process_cpu_user_seconds_total",
  "process_cpu_system_seconds_total",
  "process_cpu_seconds_total",
  "process_resident_memory_bytes",
  "process_open_fds",
  "process_max_fds",
  "process_start_time_seconds",
]

describe("a front's GET /metrics", () => {
  test.skipIf(promtoolSkip !== null)(
    "has process and runtime series under the conventional names for the front and each worker of its pool, and promtool accepts it",
    async () => {
      const before = Date.now() / 1000 - 1
      const name = busName("pmetrics")
      const a = await front(name)
      const pids = await a.workers()
      for (let i = 0; i < 20; i++) expect((await fetch(`${a.http}/item/${i}`)).status).toBe(200)
      const text = await scrape(a)
      const after = Date.now() / 1000 + 1
      expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
      // the front's own: one sample each, without labels, as every Prometheus client library writes them
      for (const f of PROCESS) expect(text).toContain(`# TYPE ${f} `)
      for (const f of [...PROCESS, "nodejs_eventloop_lag_seconds", "nodejs_heap_size_used_bytes"])
        expect(sample(text, f)).toBeGreaterThanOrEqual(0)
      expect(sample(text, "process_start_time_seconds")).toBeGreaterThan(before)
      expect(sample(text, "process_start_time_seconds")).toBeLessThan(after)
      expect(sample(text, "process_max_fds")).toBe(maxFds(a.child.pid))
      expect(sample(text, "process_resident_memory_bytes")).toBeGreaterThan(1e6)
      expect(sample(text, "process_cpu_seconds_total")).toBeCloseTo(
        sample(text, "process_cpu_user_seconds_total")! + sample(text, "process_cpu_system_seconds_total")!,
        6,
      )
      // each worker: its bus and index (never its pid: the next process in the index goes on under its label)
      const indexes = (f: string) => samples(text, f).filter(([l]) => l.includes("worker="))
      expect(indexes("process_resident_memory_bytes").map(([l]) => l)).toEqual([
        `{bus="${name}",worker="0"}`,
        `{bus="${name}",worker="1"}`,
      ])
      const starts = indexes("process_start_time_seconds").map(([, v]) => v)
      expect(starts.sort()).toEqual(pids.map(startedAt).sort()) // the two worker processes', read apart
      for (const f of PROCESS) expect(indexes(f).length).toBe(2)
      for (const [, v] of indexes("process_resident_memory_bytes")) expect(v).toBeGreaterThan(1e6)
      for (const [, v] of indexes("process_max_fds")) expect(v).toBe(maxFds(pids[0]!))
      for (const [, v] of indexes("process_open_fds")) expect(v).toBeGreaterThan(2)
    },
    90_000,
  )

  test("labels a route by its pattern, never its path: 1,000 distinct paths make a bounded number of series", async () => {
    const name = busName("pmetrics")
    const a = await front(name)
    await a.workers()
    for (let i = 0; i < 1000; i += 50) {
      const batch = Array.from({ length: 50 }, (_, k) =>
        Promise.all([fetch(`${a.http}/item/${i + k}`), fetch(`${a.http}/raw/${i + k}?q=${i + k}`)]),
      )
      for (const [item, raw] of await Promise.all(batch)) {
        expect(item.status).toBe(200)
        expect(raw.status).toBe(200)
      }
    }
    const text = await scrape(a)
    const routes = samples(text, "slotbus_route_request_duration_seconds_count")
    expect(routes.map(([l]) => /route="([^"]*)"/.exec(l)![1]).sort()).toEqual(["GET", "GET /item/:id"])
    expect(routes.map(([, v]) => v)).toEqual([1000, 1000])
    expect(text).not.toMatch(/\/(item|raw)\/\d/)
  }, 90_000)

  test("counts a client that goes away as a cancel, not as an error", async () => {
    const name = busName("pmetrics")
    const a = await front(name)
    await a.workers()
    const client = new AbortController()
    const asked = fetch(`${a.http}/slow`, { headers: { "x-delay-ms": "5000" }, signal: client.signal })
    let text = ""
    try {
      await until(
        async () => (sample((text = await scrape(a)), `slotbus_in_flight_requests{bus="${name}"}`) ?? 0) > 0,
        "the worker holds the request",
        30_000,
        20,
      )
      client.abort()
      await asked.catch(() => {})
      await until(
        async () => (sample((text = await scrape(a)), `slotbus_request_cancels_total{bus="${name}"}`) ?? 0) === 1,
        "the bus counted the client going away",
        30_000,
        20,
      )
    } finally {
      client.abort()
    }
    expect(samples(text, "slotbus_request_errors_total").filter(([, v]) => v !== 0)).toEqual([]) // the usual kinds at 0
  }, 90_000)

  test("counts a client that goes away while the answer streams as a cancel, not as an error", async () => {
    const name = busName("pmetrics")
    const a = await front(name)
    await a.workers()
    const client = new AbortController()
    try {
      const res = await fetch(`${a.http}/endless`, { signal: client.signal })
      const reader = res.body!.getReader()
      expect((await reader.read()).done).toBe(false) // the answer streams
      client.abort()
      await reader.read().catch(() => {})
    } finally {
      client.abort()
    }
    let text = ""
    await until(
      async () => (sample((text = await scrape(a)), `slotbus_in_flight_requests{bus="${name}"}`) ?? 1) === 0,
      "the bus gave the request up",
      30_000,
      20,
    )
    expect(sample(text, `slotbus_request_cancels_total{bus="${name}"}`)).toBe(1)
    expect(samples(text, "slotbus_request_errors_total").filter(([, v]) => v !== 0)).toEqual([]) // the usual kinds at 0
  }, 90_000)
})

test("counts a caller that cancels a streamed answer's body as a cancel, not as an error", async () => {
  await withHub({}, [{}], async (bus) => {
    const res = await bus.request({ path: "/endless" }, { stream: true })
    const reader = res.body.getReader()
    expect((await reader.read()).done).toBe(false)
    await reader.cancel()
    await until(() => bus.stats().inFlight === 0, "the bus gave the request up", 30_000)
    const families = bus[METRICS]()
    const of = (name: string) => families.find((f) => f.name === name)!.samples
    expect(of("slotbus_request_cancels_total")).toEqual([{ labels: { bus: bus.name }, value: 1 }])
    // no error; the usual kinds are there at 0 from the start, so rate() counts the first one
    expect(of("slotbus_request_errors_total")).toEqual(
      ["WorkerGoneError", "TimeoutError", "RemoteError", "http5xx"].map((kind) => ({
        labels: { bus: bus.name, kind },
        value: 0,
      })),
    )
  })
}, 60_000)

describe("two fronts of one name", () => {
  test("report each worker once: the front that runs the pool reports the worker series", async () => {
    const name = busName("pmetrics")
    const a = await front(name)
    const b = await front(name)
    expect([a.index, b.index]).toEqual([0, 1])
    const pids = await a.workers()
    expect(await b.workers()).toEqual(pids)
    const [ta, tb] = await Promise.all([scrape(a), scrape(b)])
    const both = (f: string) => [...samples(ta, f), ...samples(tb, f)]
    expect(both("slotbus_workers").reduce((n, [, v]) => n + v, 0)).toBe(2)
    const workerStarts = both("process_start_time_seconds").filter(([l]) => l.includes("worker="))
    expect(workerStarts.map(([, v]) => v).sort()).toEqual(pids.map(startedAt).sort())
    expect(samples(tb, "process_resident_memory_bytes").map(([l]) => l)).toEqual([""]) // b's own, and no worker's
    expect(samples(ta, "slotbus_worker_restarts_total").length).toBeGreaterThan(0)
    expect(samples(tb, "slotbus_worker_restarts_total")).toEqual([])
  }, 90_000)

  test.skipIf(prometheusSkip !== null)(
    "scraped by a real Prometheus server, answer queries that count each worker and each front once",
    async () => {
      const name = busName("pmetrics")
      const a = await front(name)
      const b = await front(name)
      await a.workers()
      await b.workers()
      for (let i = 0; i < 50; i++) expect((await fetch(`${(i % 2 ? a : b).http}/item/${i}`)).status).toBe(200)
      const dir = mkdtempSync(join(tmpdir(), "slotbus-prometheus-"))
      dirs.push(dir)
      const targets = [a, b].map((f) => JSON.stringify(new URL(f.metrics).host)).join(", ")
      const p = startPrometheus(
        dir,
        `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: shop\n    static_configs:\n      - targets: [${targets}]\n`,
      )
      try {
        await until(
          async () => p.value(await p.query('count(up{job="shop"} == 1)')) === 2,
          "Prometheus scraped both fronts",
          60_000,
          200,
        )
        await until(
          async () => p.value(await p.query("sum(slotbus_workers)")) === 2,
          "the workers gauge arrived",
          30_000,
          200,
        )
        expect(p.value(await p.query('count(process_resident_memory_bytes{worker=""})'))).toBe(2) // the fronts
        expect(p.value(await p.query('count(process_resident_memory_bytes{worker!=""})'))).toBe(2) // the workers
        expect(p.value(await p.query('count(nodejs_eventloop_lag_seconds{worker=""})'))).toBe(2) // the fronts
        await until(
          async () => p.value(await p.query('count(nodejs_eventloop_lag_seconds{worker!=""})')) === 2,
          "each worker's vitals report arrived once, from the leading front",
          30_000,
          200,
        )
        expect(p.value(await p.query("count(process_cpu_seconds_total)"))).toBe(4) // each process once
        const routes = await p.query("sum by (route) (slotbus_route_request_duration_seconds_count)")
        expect(routes.map((s) => [s.metric.route, Number(s.value[1])])).toEqual([["GET /item/:id", 50]])
      } finally {
        await p.stop()
      }
    },
    120_000,
  )
})
