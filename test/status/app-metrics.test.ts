// /metrics on a route of the app's own server (metricsHandler, src/status/handler.ts): a Bun.serve front with its
// own routes and bus.fetch routes serves the text promtool accepts and a real Prometheus scrapes on the app's port;
// the same handler on an Elysia route (the docs' line) with its one-line route hook;
// two reusePort fronts of a shared name on one port answer each scrape with their own series, labelled `front`;
// instrument()ed routes, those the front answers itself included, are timed into http_server_request_duration_seconds.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Elysia } from "elysia"
import { httpRoute, instrument, SlotBus } from "../../src/index.ts"
import { metricsHandler, metricsText } from "../../src/status/index.ts"
import { renderMetrics } from "../../src/status/internal.ts"
import { bunChild, busName, FIXTURES, spawn, stopAll, until, type Child } from "../support/helpers.ts"
import { freePort, promtool, sample, startPrometheus } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const FRONT = join(FIXTURES, "status/app-front.ts")
const promtoolSkip = toolSkipReason("promtool")
const prometheusSkip = toolSkipReason("prometheus")
sayWhySkipped("promtool check metrics", promtoolSkip)
sayWhySkipped("a Prometheus server scraping an app", prometheusSkip)
const dirs: string[] = []

afterAll(async () => {
  await stopAll()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function startFront(name: string, port: number, shared = false): Promise<{ front: Child; index: number }> {
  const front = spawn([process.execPath, FRONT, name, String(port), ...(shared ? ["--shared"] : [])])
  const [, , index] = await front.waitLine(/^ready (\d+) (-?\d+)$/, 30_000)
  return { front, index: Number(index) }
}

async function stop(front: Child) {
  front.signal("SIGTERM")
  await front.exited
}

/** The upper edge of the bucket holding quantile q of a histogram series in a scrape (`labels` without `le`). */
function bucketQuantile(text: string, name: string, labels: string, q: number): number {
  const buckets = [...text.matchAll(new RegExp(`^${name}_bucket\\{${labels},le="([^"]+)"\\} (\\S+)$`, "gm"))].map(
    (m) => [m[1] === "+Inf" ? Infinity : Number(m[1]), Number(m[2])] as const,
  )
  const count = buckets.at(-1)?.[1] ?? 0
  return buckets.find(([, c]) => c >= Math.ceil(q * count))?.[0] ?? Number.NaN
}

const scrape = async (base: string) => {
  const res = await fetch(`${base}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  return res.text()
}

test("metricsHandler and metricsText refuse what has no metrics, with what to pass", () => {
  expect(() => metricsHandler({} as never)).toThrow("metricsHandler takes an array of sources")
  expect(() => metricsHandler([{}])).toThrow("metricsHandler: source 0 has no metrics; pass a SlotBus")
  expect(() => metricsText([42])).toThrow("metricsText: source 0 has no metrics")
})

test("values are written without float noise: a sum of CPU seconds 0.01 + 0.05 is 0.06, integers and tiny values as they are", () => {
  const text = renderMetrics([
    {
      name: "process_cpu_seconds_total",
      type: "counter",
      help: "user and system CPU time spent, in seconds",
      samples: [
        { labels: {}, value: 0.01 + 0.05 },
        { labels: { worker: "0" }, value: 1795701102.65 },
        { labels: { worker: "1" }, value: 0.000032421 },
        { labels: { worker: "2" }, value: 2 ** 53 },
      ],
    },
  ])
  expect(text.split("\n").filter((l) => !l.startsWith("#") && l !== "")).toEqual([
    "process_cpu_seconds_total 0.06",
    'process_cpu_seconds_total{worker="0"} 1795701102.65',
    'process_cpu_seconds_total{worker="1"} 0.000032421',
    `process_cpu_seconds_total{worker="2"} ${2 ** 53}`,
  ])
})

describe("/metrics on a Bun.serve route of the app", () => {
  test.skipIf(promtoolSkip !== null)(
    "serves the process's and the bus's series that promtool accepts, and refuses a POST",
    async () => {
      const name = busName("appm")
      const port = freePort()
      const { front, index } = await startFront(name, port)
      try {
        expect(index).toBe(-1)
        const base = `http://127.0.0.1:${port}`
        for (let i = 0; i < 5; i++) expect((await fetch(`${base}/items/${i}`)).status).toBe(200)
        const text = await scrape(base)
        expect(sample(text, `slotbus_requests_total{bus="${name}"}`)).toBe(5)
        expect(text).toContain("\nprocess_cpu_seconds_total ")
        expect(text).not.toContain("front=")
        expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
        const post = await fetch(`${base}/metrics`, { method: "POST" })
        expect(post.status).toBe(405)
        expect(post.headers.get("allow")).toBe("GET, HEAD")
      } finally {
        await stop(front)
      }
    },
    60_000,
  )

  test.skipIf(promtoolSkip !== null)(
    "two reusePort fronts of a shared name on one port each answer a scrape with their own series, labelled front",
    async () => {
      const name = busName("appf")
      const port = freePort()
      const a = await startFront(name, port, true)
      const b = await startFront(name, port, true)
      try {
        expect([a.index, b.index].sort()).toEqual([0, 1])
        const base = `http://127.0.0.1:${port}`
        const seen = new Set<string>()
        await until(
          async () => {
            // a new connection each time, so the kernel picks a front again
            const res = await fetch(`${base}/metrics`, { headers: { connection: "close" } })
            const text = await res.text()
            const fronts = new Set([...text.matchAll(/front="(\d+)"/g)].map((m) => m[1]!))
            expect(fronts.size).toBe(1) // one front's series per scrape, every series labelled
            expect(text.split("\n").filter((l) => l !== "" && !l.startsWith("#") && !l.includes("front="))).toEqual([])
            expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
            seen.add([...fronts][0]!)
            return seen.size === 2
          },
          "scrapes of the shared port reached both fronts",
          30_000,
          50,
        )
        expect([...seen].sort()).toEqual(["0", "1"])
      } finally {
        await stop(b.front)
        await stop(a.front)
      }
    },
    90_000,
  )
})

const SERVER = "http_server_request_duration_seconds"
const series = (route: string, status = 200) =>
  `http_request_method="GET",http_route="${route}",http_response_status_code="${status}"`

test.skipIf(promtoolSkip !== null)(
  "/metrics on an Elysia route: the bus's series and the server histogram by Elysia's route pattern, promtool clean",
  async () => {
    const bus = await SlotBus.listen(busName("appe"))
    const worker = bunChild("echo-worker.ts", [bus.name])
    let server: ReturnType<typeof Bun.serve> | undefined
    try {
      await worker.waitLine(/^ready$/, 20_000)
      await bus.waitForWorkers(1)
      const metrics = metricsHandler([bus], { maxAgeMs: 0 }) // each scrape computes: the second shows the first
      // docs/api.md's lines: the route hook, and /metrics on an Elysia route
      const app = new Elysia()
        .onBeforeHandle({ as: "global" }, ({ request, route }) => httpRoute(request, route))
        .get("/metrics", ({ request }) => metrics(request))
        .get("/items/:id", ({ request }) => bus.fetch(request))
      server = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: instrument(app.fetch) })
      const base = `http://127.0.0.1:${server.port}`
      for (let i = 0; i < 5; i++) expect((await fetch(`${base}/items/${i}`)).status).toBe(200)
      await scrape(base)
      const text = await scrape(base)
      expect(sample(text, `slotbus_requests_total{bus="${bus.name}"}`)).toBe(5)
      expect(sample(text, `${SERVER}_count{${series("/items/:id")}}`)).toBe(5)
      expect(sample(text, `${SERVER}_count{${series("/metrics")}}`)).toBe(1) // the first scrape, timed too
      expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
    } finally {
      await server?.stop(true)
      await worker.kill()
      await bus.close({ drain: false })
    }
  },
  60_000,
)

test.skipIf(promtoolSkip !== null)(
  "every request of an instrumented front is in the HTTP server histogram, the routes it answers itself included",
  async () => {
    const name = busName("apph")
    const port = freePort()
    const { front } = await startFront(name, port)
    try {
      const base = `http://127.0.0.1:${port}`
      for (let i = 0; i < 20; i++) {
        expect((await fetch(`${base}/work`)).status).toBe(200)
        expect((await fetch(`${base}/hello`)).status).toBe(200)
        expect((await fetch(`${base}/items/${i}`)).status).toBe(200)
      }
      const text = await scrape(base)
      expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
      expect(text).toContain(`# TYPE ${SERVER} histogram`)
      for (const route of ["/work", "/hello", "/items/:id"])
        expect(sample(text, `${SERVER}_count{${series(route)}}`)).toBe(20)
      // the front spins ~2 ms in /work: its p99 is at least that (the bucket's upper edge, as Prometheus reads it)
      expect(bucketQuantile(text, SERVER, series("/work"), 0.99)).toBeGreaterThanOrEqual(0.002)
      // the bus hop's histogram stays, under its own name
      expect(sample(text, `slotbus_request_duration_seconds_count{bus="${name}"}`)).toBe(20)
    } finally {
      await stop(front)
    }
  },
  60_000,
)

test.skipIf(prometheusSkip !== null)(
  "a real Prometheus scrapes /metrics on the app's own port",
  async () => {
    const name = busName("appp")
    const port = freePort()
    const { front } = await startFront(name, port)
    const dir = mkdtempSync(join(tmpdir(), "slotbus-prometheus-"))
    dirs.push(dir)
    let prometheus: ReturnType<typeof startPrometheus> | undefined
    try {
      const config = `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: ["127.0.0.1:${port}"]\n`
      prometheus = startPrometheus(dir, config)
      const { query, value } = prometheus
      for (let i = 0; i < 3; i++) await fetch(`http://127.0.0.1:${port}/items/${i}`)
      for (let i = 0; i < 50; i++) await fetch(`http://127.0.0.1:${port}/work`)
      await until(async () => value(await query('up{job="app"}')) === 1, "Prometheus scraped the app", 30_000, 200)
      await until(
        async () => value(await query(`slotbus_requests_total{bus="${name}"}`)) >= 3,
        "the bus's requests arrived through the app's port",
        30_000,
        200,
      )
      // a front that takes ~2 ms per request shows a p99 of at least that in the server histogram
      const p99 = `histogram_quantile(0.99, sum by (le) (${SERVER}_bucket{http_route="/work"}))`
      await until(async () => value(await query(p99)) >= 0.002, "the /work p99 of at least 2 ms", 30_000, 200)
    } finally {
      await prometheus?.stop()
      await stop(front)
    }
  },
  90_000,
)
