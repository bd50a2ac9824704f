// GET /metrics as Prometheus reads it: an app with real worker processes and traffic (test/support/status/metrics-app.ts)
// checked by `promtool check metrics`, then scraped by a real Prometheus server with the scrape config the README
// shows, whose series are read back through its HTTP API. Both skip where Debian's prometheus package is missing
// (with the apt-get command), unless SLOTBUS_REQUIRE_TOOLS=1.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { serveStatus } from "../../src/status/index.ts"
import {
  bunChild,
  busName,
  FIXTURES,
  REPO,
  run,
  spawn,
  spawnWorker,
  stopAll,
  until,
  type Child,
} from "../support/helpers.ts"
import type { Api } from "../support/core/rpc-worker.ts"
import { Browser } from "../support/browser.ts"
import { STDIO_WORKER } from "../support/stdio/stdio.ts"
import { createHub } from "../../src/http/index.ts"
import { startWorker } from "../support/http/http.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"
import { promtool, sample, startPrometheus } from "../support/status/prometheus.ts"

const APP = join(FIXTURES, "status/metrics-app.ts")
const promtoolSkip = toolSkipReason("promtool")
const prometheusSkip = toolSkipReason("prometheus")
sayWhySkipped("promtool check metrics", promtoolSkip)
sayWhySkipped("a Prometheus server scraping an app", prometheusSkip)
const dirs: string[] = []

afterAll(async () => {
  await stopAll()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

async function startApp(): Promise<{ app: Child; url: string; pids: number[]; name: string }> {
  const name = busName("metrics")
  const app = spawn([process.execPath, APP, name])
  const [, url] = await app.waitLine(/^metrics (\S+)$/, 20_000)
  const [, pids] = await app.waitLine(/^pids (.+)$/, 20_000)
  return { app, url: url!, pids: pids!.split(" ").map(Number), name }
}

const scrape = async (url: string) => {
  const res = url.startsWith("unix:")
    ? await fetch("http://localhost/metrics", { unix: url.slice(5) })
    : await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  return res.text()
}

describe("GET /metrics of a running app", () => {
  test.skipIf(promtoolSkip !== null)(
    "passes promtool check metrics, names its workers by index, labels routes by pattern, and counts reloads apart from crashes",
    async () => {
      const { app, url, pids, name } = await startApp()
      try {
        let text = ""
        await until(
          async () => {
            text = await scrape(url)
            return (
              (sample(text, `slotbus_request_cancels_total{bus="${name}"}`) ?? 0) > 0 &&
              (sample(text, `slotbus_request_errors_total{bus="${name}",kind="TimeoutError"}`) ?? 0) > 0 &&
              (sample(text, `slotbus_topic_lag_bytes{topic="${name}"}`) ?? 0) > 0
            )
          },
          "the app has made, failed, timed out and aborted requests",
          20_000,
          100,
        )
        expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })

        for (const name of [
          "slotbus_requests_total",
          "slotbus_request_duration_seconds",
          "slotbus_request_queue_wait_seconds",
          "slotbus_worker_request_duration_seconds",
          "slotbus_route_request_duration_seconds",
          "slotbus_worker_restarts_total",
          "slotbus_worker_log_lines_dropped_total",
        ])
          expect(text).toContain(`# TYPE ${name} `)
        expect(sample(text, `slotbus_worker_log_lines_dropped_total{bus="${name}",reason="budget"}`)).toBe(0)
        const kinds = [...text.matchAll(/^slotbus_request_errors_total\{[^}]*kind="([^"]+)"\} [1-9]/gm)].map(
          (m) => m[1],
        )
        expect(kinds.sort()).toEqual(["RemoteError", "TimeoutError"]) // an aborted request is a cancel, no error
        const workers = new Set(
          [...text.matchAll(/^slotbus_worker_request_duration_seconds_count\{[^}]*worker="([^"]+)"/gm)].map(
            (m) => m[1],
          ),
        )
        expect([...workers].sort()).toEqual(["0", "1"])
        for (const pid of pids) expect(text).not.toContain(`"${pid}"`)
        const routes = [...text.matchAll(/^slotbus_route_request_duration_seconds_count\{[^}]*route="([^"]+)"/gm)].map(
          (m) => m[1],
        )
        expect(routes).toContain("GET /item/:n") // never a path: the app's route patterns only
        expect(routes).toContain("GET /describe")
        for (const r of routes) expect(["GET /describe", "GET /fail", "GET /item/:n", "GET /slow"]).toContain(r)
        expect(sample(text, `slotbus_topic_published_events_total{topic="${name}"}`)).toBeGreaterThan(0)
        expect(sample(text, `slotbus_topic_received_events_total{topic="${name}"}`)).toBeGreaterThan(0)
        expect(sample(text, `slotbus_topic_subscribers{topic="${name}"}`)).toBe(2)
        expect(sample(text, `slotbus_contest_claims_total{contest="${name}"}`)).toBe(1)
        expect(sample(text, `slotbus_contest_subjects_held{contest="${name}"}`)).toBe(1)

        // Reloads: both processes replaced, as asked, not crashed. Surge-first, a successor joins before its
        // predecessor leaves: a third index, and no more however many reloads follow.
        const indexes = (t: string) => t.match(/^slotbus_worker_request_duration_seconds_count\{[^}]*\}/gm)?.length
        for (const [n, reloads] of [
          [1, 2],
          [2, 4],
        ]) {
          app.signal("SIGUSR2")
          await app.waitLine(new RegExp(`^reloaded ${n}$`), 30_000)
          const reloaded = await scrape(url)
          expect(sample(reloaded, `slotbus_worker_restarts_total{bus="${name}",cause="reload"}`)).toBe(reloads)
          expect(sample(reloaded, `slotbus_worker_restarts_total{bus="${name}",cause="crash"}`)).toBe(0)
          expect(indexes(reloaded)).toBe(3)
          expect(await promtool(reloaded)).toEqual({ code: 0, out: "", err: "" })
        }
      } finally {
        app.signal("SIGTERM")
        await app.exited
      }
    },
    60_000,
  )
})

/** The scrape config the README's "Observing it" shows, aimed at `target` and scraping every `every`. */
function readmeScrapeConfig(target: string, every: string): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("## Observing it"))
  const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1]
  if (!yaml) throw new Error("README.md's Observing it section has no yaml block")
  expect(yaml).toContain('"127.0.0.1:9300"')
  return yaml
    .replace('"127.0.0.1:9300"', JSON.stringify(target))
    .replace(/scrape_interval: \S+/, `scrape_interval: ${every}`)
}

test("slotbus status shows latency per worker, the slowest recent requests and errors by kind with their last message", async () => {
  const { app, url, name } = await startApp()
  try {
    await until(
      async () => (sample(await scrape(url), `slotbus_request_cancels_total{bus="${name}"}`) ?? 0) > 0,
      "the app has failed, timed out and aborted requests",
      20_000,
      100,
    )
    const r = await run([process.execPath, join(REPO, "bin", "slotbus.ts"), "status", url, "--once"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("LATENCY PER WORKER (MS, BUCKET UPPER EDGES) (2)")
    expect(r.stdout).toMatch(/SLOWEST RECENT REQUESTS \((\d+)\)/)
    expect(r.stdout).toMatch(/GET \/(slow|item\/\d|describe|fail) +[01] +\d+/) // a request, its worker's index and pid
    expect(r.stdout).toMatch(/ERRORS BY KIND \(2\)/)
    expect(r.stdout).toMatch(
      /RemoteError +\d+ .*Error: handler failed on purpose|RemoteError +\d+ .*failed on purpose \d+/,
    )
    expect(r.stdout).toMatch(/TimeoutError +\d+ .*timed out after 1ms/)
  } finally {
    app.signal("SIGTERM")
    await app.exited
  }
}, 60_000)

const chromiumSkip = toolSkipReason("chromium")
sayWhySkipped("the status page's new tables in Chromium", chromiumSkip)

test.skipIf(chromiumSkip !== null)(
  "the status page shows latency per worker, the slowest recent requests and errors by kind, live, in Chromium",
  async () => {
    const { app, url } = await startApp()
    const browser = await Browser.launch()
    try {
      const page = await browser.newPage()
      await page.navigate(url)
      const shown = await page.waitFor<string>(
        "document.body.innerText",
        (t) => /failed on purpose \d+/.test(t) && t.includes("TimeoutError"),
        "the errors by kind show, with their last messages",
        20_000,
      )
      for (const title of ["latency per worker", "slowest recent requests", "errors by kind"])
        expect(shown.toLowerCase()).toContain(title)
      const keep = process.env.SLOTBUS_STATUS_SCREENSHOT
      if (keep) writeFileSync(keep, await page.screenshot())
      await page.close()
    } finally {
      const dataDir = browser.dataDir
      await browser.close()
      expect(Browser.processesOf(dataDir)).toEqual([])
      app.signal("SIGTERM")
      await app.exited
    }
  },
  60_000,
)

describe("a Prometheus server", () => {
  test.skipIf(prometheusSkip !== null)(
    "scrapes a running app with the README's config and answers queries of its series",
    async () => {
      const { app, url, pids } = await startApp()
      const dir = mkdtempSync(join(tmpdir(), "slotbus-prometheus-"))
      dirs.push(dir)
      let prometheus: ReturnType<typeof startPrometheus> | undefined
      try {
        prometheus = startPrometheus(dir, readmeScrapeConfig(new URL(url).host, "1s"))
        const { query, value } = prometheus
        await until(
          async () => value(await query('up{job="slotbus"}')) === 1,
          "Prometheus scraped the app",
          30_000,
          200,
        )
        await until(
          async () => value(await query("sum(slotbus_requests_total)")) > 0,
          "the requests counter arrived",
          30_000,
          200,
        )
        const perWorker = await query("slotbus_worker_request_duration_seconds_count")
        expect(perWorker.map((s) => s.metric.worker).sort()).toEqual(["0", "1"])
        await until(
          async () => (await query('slotbus_request_duration_seconds_bucket{le="+Inf"}')).length === 1,
          "the duration histogram arrived",
          30_000,
          200,
        )
        const p99 = await query("histogram_quantile(0.99, sum by (le) (slotbus_request_duration_seconds_bucket))")
        expect(value(p99)).toBeGreaterThan(0)

        process.kill(pids[0]!, "SIGKILL") // a crash: the pool starts it again, and counts why
        await until(
          async () => value(await query('slotbus_worker_restarts_total{cause="crash"}')) >= 1,
          "Prometheus saw the crash restart",
          30_000,
          200,
        )
        expect(value(await query('slotbus_worker_restarts_total{cause="reload"}'))).toBe(0)
        await until(
          async () => value(await query('slotbus_workers{transport="shm"}')) === 2,
          "the restarted worker joined",
          30_000,
          200,
        )
        const indexes = await query("slotbus_worker_request_duration_seconds_count")
        expect(indexes.map((s) => s.metric.worker).sort()).toEqual(["0", "1"]) // it took the dead one's index: no new series
        await until(
          async () => (await query('slotbus_request_errors_total{kind="RemoteError"}')).length === 1,
          "the handler errors arrived",
          30_000,
          200,
        )
      } finally {
        await prometheus?.stop()
        app.signal("SIGTERM")
        await app.exited
      }
    },
    120_000,
  )
})

test("per RPC method with metricsRoutes: the first ones by name, the rest as other; a method that threw counts as RemoteError", async () => {
  const bus = await SlotBus.listen(busName("metrics-rpc"), { metricsRoutes: 2 })
  const worker = bunChild("core/rpc-worker.ts", [bus.name])
  const status = await serveStatus([bus], { port: 0 })
  try {
    await worker.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    const api = bus.remote<Api>()
    await api.add(1, 2)
    await api.add(3, 4)
    await api.echo("x")
    await api.inc()
    await api.pid()
    await expect(api.fail("on purpose")).rejects.toThrow("on purpose")
    const text = await scrape(status.url)
    const count = (route: string) =>
      sample(text, `slotbus_route_request_duration_seconds_count{bus="${bus.name}",route="${route}"}`)
    expect([count("add"), count("echo"), count("other")]).toEqual([2, 1, 2]) // inc, pid: durations of answers only
    expect(sample(text, `slotbus_request_errors_total{bus="${bus.name}",kind="RemoteError"}`)).toBe(1)
  } finally {
    await status.stop()
    await worker.kill()
    await bus.close({ drain: false })
  }
})

test.skipIf(promtoolSkip !== null)(
  "slotbus stdio --status serves a stdio bus's metrics and its workers' process series, per pool and worker index, that promtool accepts",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-stdio-metrics-"))
    dirs.push(dir)
    const config = join(dir, "bus.json")
    writeFileSync(
      config,
      JSON.stringify({ pools: [{ id: "tools", command: process.execPath, args: [STDIO_WORKER], instances: 2 }] }),
    )
    const sock = join(dir, "status.sock")
    const cli = join(REPO, "bin", "slotbus.ts")
    const bus = spawn([
      process.execPath,
      cli,
      "stdio",
      "--config",
      config,
      "--listen",
      `unix:${join(dir, "bus.sock")}`,
      "--status",
      `unix:${sock}`,
    ])
    try {
      let text = ""
      await until(
        async () => {
          text = await scrape(`unix:${sock}`).catch(() => "")
          return sample(text, "slotbus_stdio_workers") === 2
        },
        "both stdio workers run",
        30_000,
        100,
      )
      expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
      const workers = [...text.matchAll(/^slotbus_stdio_worker_restarts_total\{pool="tools",worker="(\d+)"\} 0$/gm)]
      expect(workers.map((m) => m[1])).toEqual(["0", "1"])
      // the bus's own process and each worker's, by pool and index
      expect(text).toMatch(/^process_resident_memory_bytes \d+$/m)
      const rss = [...text.matchAll(/^process_resident_memory_bytes\{pool="tools",worker="(\d+)"\} (\d+)$/gm)]
      expect(rss.map((m) => m[1])).toEqual(["0", "1"])
      for (const m of rss) expect(Number(m[2])).toBeGreaterThan(0)
    } finally {
      await bus.kill("SIGTERM")
    }
  },
  60_000,
)

test.skipIf(promtoolSkip !== null)(
  "the HTTP hub's GET /metrics has its workers' buses under the same names, per worker name and index, kept across restarts",
  async () => {
    await using hub = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 0 }) // each scrape shows the moment
    let w = await startWorker(hub.url, "shop", ["--instance=shop-1"])
    try {
      for (const path of ["/items/1", "/items/2", "/fail"]) await fetch(hub.url + path)
      const before = await scrape(hub.url)
      expect(await promtool(before)).toEqual({ code: 0, out: "", err: "" })
      const answered = sample(before, 'slotbus_worker_request_duration_seconds_count{bus="shop",worker="0"}')!
      expect(answered).toBeGreaterThanOrEqual(2) // the two requests, and the hub's own calls (its pings)
      expect(sample(before, 'slotbus_request_errors_total{bus="shop",kind="http5xx"}')).toBe(1)
      expect(before).not.toContain(`"${w.pid}"`)

      await w.kill() // kill -9: the hub evicts it; a new process of the same instance takes its index
      w = await startWorker(hub.url, "shop", ["--instance=shop-1"])
      await fetch(`${hub.url}/items/3`)
      const after = await scrape(hub.url)
      expect(await promtool(after)).toEqual({ code: 0, out: "", err: "" })
      // the counts of the process that left stay: counters never go back
      expect(sample(after, 'slotbus_worker_request_duration_seconds_count{bus="shop",worker="0"}')).toBeGreaterThan(
        answered,
      )
      expect(sample(after, 'slotbus_request_errors_total{bus="shop",kind="http5xx"}')).toBe(1)
      expect([...after.matchAll(/worker="(\d+)"/g)].every((m) => m[1] === "0")).toBe(true)
      await using status = await serveStatus([hub], { port: 0 }) // the hub as a source: the same families
      const served = await scrape(status.url)
      expect(served).toContain("# TYPE slotbus_hub_requests_total counter\n")
      expect(sample(served, 'slotbus_request_errors_total{bus="shop",kind="http5xx"}')).toBe(1)
    } finally {
      await w.kill()
    }
  },
  60_000,
)

test("the status view's p50 and p99 are those of GET /metrics' duration histogram for the same requests", async () => {
  const bus = await SlotBus.listen(busName("metrics-p99"))
  const worker = await spawnWorker(bus.name)
  const status = await serveStatus([bus], { port: 0 })
  try {
    await bus.waitForWorkers(1)
    for (let round = 0; round < 20; round++)
      await Promise.all(Array.from({ length: 10 }, (_, i) => bus.call(new Uint8Array(64 << (i % 8)))))
    const text = await scrape(status.url)
    const series = `slotbus_request_duration_seconds_bucket{bus="${bus.name}",le="`
    const buckets = text
      .split("\n")
      .filter((l) => l.startsWith(series))
      .map((l) => {
        const [le, n] = l.slice(series.length).split('"} ')
        return { le: Number(le), n: Number(n) }
      })
    const report = (await (await fetch(`${status.url}/status.json`)).json()) as {
      sections: { kind: string; name: string; facts: [string, unknown][] }[]
    }
    const facts = new Map(report.sections.find((s) => s.kind === "bus" && s.name === bus.name)!.facts)
    const [p50, p99] = String(facts.get("latency p50 / p99 µs")).split(" / ").map(Number)
    const { latency } = bus.stats()
    expect(latency.count).toBe(buckets.at(-1)!.n)
    // /metrics' quantile: the upper edge of the bucket that holds its rank, or the largest duration when that is less
    const fromMetrics = (q: number) => {
      const edge = buckets.find((b) => b.n >= Math.ceil(q * latency.count))!.le * 1e6
      return Math.min(edge, latency.maxUs)
    }
    expect({ p50, p99 }).toEqual({ p50: fromMetrics(0.5), p99: fromMetrics(0.99) })
  } finally {
    await status.stop()
    await worker.kill()
    await bus.close({ drain: false })
  }
}, 60_000)
