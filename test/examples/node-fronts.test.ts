// examples/express and examples/fastify as a Node team runs them: copied into an empty app that installed the packed
// tarball (`npm install slotbus express`), `node front.mjs` under Node 26 with no Bun on PATH. Real HTTP to the heavy
// route (answered by one of the two supervised Node workers) and to the front's own routes; /metrics has the server
// histogram labelled with the heavy route's pattern, and a real Prometheus scraping the Express front reads it back
// (skipped where Debian's prometheus is missing); a SIGHUP reloads the workers under a request loop that fails
// nothing; a SIGTERM under keep-alive load fails nothing and the front exits 0.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { type Child, REPO, run, spawn, stopAll, until } from "../support/helpers.ts"
import { packTarball, runOk } from "../support/native/pack.ts"
import { keepAliveLoad, type LoadResult } from "../support/runtime/keep-alive-load.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"
import { sample, startPrometheus } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const node = findNode()
if (!node) console.log(`skipping examples/express and examples/fastify: no Node >= 26.1 here (${NODE_INSTALL})`)
const prometheusSkip = toolSkipReason("prometheus")
sayWhySkipped("a Prometheus server scraping examples/express", prometheusSkip)

const FRONTS = ["express", "fastify"] as const
let app = ""
// Node 26 and the system's tools, no Bun: what a Node team's shell has (the fronts and the workers they start)
let env: Record<string, string | undefined> = {}

beforeAll(async () => {
  if (!node) return
  app = mkdtempSync(join(tmpdir(), "slotbus-node-fronts-"))
  const tarball = await packTarball(mkdtempSync(join(app, "pack-")))
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "node-fronts", private: true, type: "module" }))
  await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], app, {
    ...process.env,
    npm_config_cache: join(app, ".npm"),
    npm_config_update_notifier: "false",
  })
  // the frameworks: the repository's, as an app that installed them has them
  mkdirSync(join(app, "node_modules"), { recursive: true })
  for (const f of FRONTS) {
    symlinkSync(join(REPO, "node_modules", f), join(app, "node_modules", f))
    cpSync(join(REPO, "examples", f), join(app, f), { recursive: true })
  }
  env = { ...process.env, PATH: `${dirname(node)}:/usr/bin:/bin`, SLOTBUS_LIB: undefined, NODE_NO_WARNINGS: "1" }
}, 300_000)

afterAll(async () => {
  await stopAll()
  if (app) rmSync(app, { recursive: true, force: true })
})

interface Report {
  id: string
  bytes: number
  pid: number
}

/** Starts examples/<front>/front.mjs under Node: the child and its URL. */
async function start(front: (typeof FRONTS)[number]): Promise<{ child: Child; url: string }> {
  const child = spawn([node!, ...nodeFlags(node!), "front.mjs"], {
    cwd: join(app, front),
    env: { ...env, PORT: "0", APP_NAME: `examples-${front}-${process.pid}` },
  })
  const url = (await child.waitLine(new RegExp(`^${front} front listening on (\\S+)$`), 60_000))[1]!
  return { child, url: url.replace("localhost", "127.0.0.1").replace(/\/$/, "") }
}

/** POSTs a report to the heavy route; its answer, or why it failed. */
async function report(url: string, id: number): Promise<Report | string> {
  try {
    const res = await fetch(`${url}/report/${id}`, { method: "POST", body: "x".repeat(id % 100) })
    const text = await res.text()
    return res.status === 200 ? (JSON.parse(text) as Report) : `status ${res.status}: ${text}`
  } catch (e) {
    return String(e)
  }
}

/** Requests from `n` loops until stopped: the answers and the failures. */
function requestLoop(url: string, n: number) {
  let running = true
  const answered: Report[] = []
  const failed: string[] = []
  let id = 0
  const loops = Array.from({ length: n }, async () => {
    while (running) {
      const r = await report(url, ++id)
      if (typeof r === "string") failed.push(r)
      else answered.push(r)
    }
  })
  return {
    answered,
    failed,
    stop: async () => {
      running = false
      await Promise.all(loops)
    },
  }
}

/** A prometheus.yml scraping `target`'s /metrics every second as job `job`. */
const scrapeConfig = (job: string, target: string) =>
  `scrape_configs:\n  - job_name: ${job}\n    scrape_interval: 1s\n    static_configs:\n      - targets: [${JSON.stringify(target)}]\n`

/** The pids of the workers serving the bus, from the front's GET /health. */
const workerPids = async (url: string) =>
  new Set(((await (await fetch(`${url}/health`)).json()) as { workers: number[] }).workers)

describe.skipIf(node === null)("the Node fronts of examples/, from the installed package under Node", () => {
  test("the shell the fronts run in has no bun", async () => {
    const r = await run(["sh", "-c", "command -v bun || echo none"], { env, timeoutMs: 10_000 })
    expect(r.stdout.trim()).toBe("none")
  })

  for (const front of FRONTS) {
    test(`${front}: own routes and the heavy route over real HTTP, /metrics by route, a SIGHUP reload and a SIGTERM that fail nothing`, async () => {
      const { child, url } = await start(front)
      const stops: (() => Promise<unknown>)[] = [] // the request loops, ended (after the front) however the test ends
      // Express's /metrics scraped by a real Prometheus from the start, read back after the requests below
      const prometheus =
        front === "express" && prometheusSkip === null
          ? startPrometheus(mkdtempSync(join(app, "prometheus-")), scrapeConfig(front, new URL(url).host))
          : undefined
      if (prometheus) stops.push(prometheus.stop)
      try {
        const heavy = await report(url, 7)
        expect(heavy).toMatchObject({ id: "7", bytes: 7 })
        const pid = (heavy as Report).pid
        expect(pid).not.toBe(child.pid) // a worker answered, not the front
        expect(await workerPids(url)).toContain(pid)
        const hello = await fetch(`${url}/hello/ada`)
        expect(await hello.json()).toEqual({ hello: "ada", pid: child.pid })
        const echo = await fetch(`${url}/echo`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ a: [1, 2] }),
        })
        expect(await echo.json()).toEqual({ a: [1, 2] })
        expect((await fetch(`${url}/nothing-here`)).status).toBe(404)

        // /metrics: shared for 1 s, so read until it has this request
        const series = (route: string, method: string) =>
          `http_server_request_duration_seconds_count{http_request_method="${method}",http_route="${route}",http_response_status_code="200"}`
        let metrics = ""
        await until(
          async () => {
            metrics = await (await fetch(`${url}/metrics`)).text()
            return (sample(metrics, series("/report/:id", "POST")) ?? 0) >= 1
          },
          "/metrics counts POST /report/:id",
          10_000,
        )
        expect(sample(metrics, series("/hello/:name", "GET"))).toBeGreaterThanOrEqual(1)
        expect(metrics).not.toContain("/report/7") // a route's pattern, never its path
        expect(metrics).toContain("slotbus_worker_request_duration_seconds")
        const head = await fetch(`${url}/metrics`, { method: "HEAD", headers: { "accept-encoding": "gzip" } })
        expect([head.status, head.headers.get("content-type"), head.headers.get("content-encoding")]).toEqual([
          200,
          "text/plain; version=0.0.4; charset=utf-8",
          "gzip", // what Prometheus asks for, and gets from both fronts
        ])
        if (prometheus) {
          const { query, value } = prometheus
          const bus = `examples-${front}-${process.pid}`
          await until(
            async () =>
              value(
                await query(
                  `http_server_request_duration_seconds_count{job="${front}",http_request_method="POST",http_route="/report/:id",http_response_status_code="200"}`,
                ),
              ) >= 1,
            "Prometheus has the heavy route's requests",
            30_000,
            200,
          )
          expect(value(await query(`slotbus_responses_total{job="${front}",bus="${bus}"}`))).toBeGreaterThanOrEqual(1)
          expect(value(await query(`slotbus_workers{job="${front}",bus="${bus}",transport="shm"}`))).toBe(2)
          expect(await query(`http_server_request_duration_seconds_count{http_route="/report/7"}`)).toEqual([])
        }

        // SIGHUP: both workers replaced under a request loop, no request failed
        const before = await workerPids(url)
        expect(before.size).toBe(2)
        const loop = requestLoop(url, 4)
        stops.push(loop.stop)
        await until(() => loop.answered.length >= 20, "answers before the reload", 30_000)
        child.signal("SIGHUP")
        const reloaded = await child.waitLine(/^reloaded: workers (\d+), (\d+)$|^reload failed: .*$/, 60_000)
        const atReload = loop.answered.length
        await until(() => loop.answered.length >= atReload + 20, "answers after the reload", 30_000)
        await loop.stop()
        expect(reloaded[0]).toStartWith("reloaded")
        const after = new Set([Number(reloaded[1]), Number(reloaded[2])])
        expect([...after].filter((p) => before.has(p))).toEqual([]) // both replaced
        expect(loop.failed).toEqual([])
        const last = loop.answered.slice(-8).map((r) => r.pid)
        expect(last.every((p) => after.has(p))).toBe(true)
        expect(await workerPids(url)).toEqual(after)

        // SIGTERM under keep-alive load on an own route and the heavy one: every request sent is answered, every
        // connection told to close
        const port = Number(new URL(url).port)
        const loads = [keepAliveLoad(port, 8, false, "/hello/load"), keepAliveLoad(port, 8, false, "/report/1", "POST")]
        for (const l of loads) stops.push(l.stop)
        const answered = () => loads.every((l) => l.result.answered >= 100)
        await until(answered, "100 answers on each route under keep-alive load", 30_000)
        child.signal("SIGTERM")
        expect(await child.exited, child.output).toBe(0)
        const [own, heavyLoad] = await Promise.all(loads.map((l) => l.ended))
        const line = (r: LoadResult) =>
          `${r.answered} answered, ${r.failed.length} failed, ${r.toldToClose} told to close`
        console.log(
          `${front}: reload under 4 loops: ${loop.answered.length} answered, ${loop.failed.length} failed; SIGTERM under 8 + 8 keep-alive connections: own route ${line(own!)}, heavy route ${line(heavyLoad!)}`,
        )
        expect([own!.failed, heavyLoad!.failed]).toEqual([[], []])
        expect([own!.toldToClose, heavyLoad!.toldToClose]).toEqual([8, 8])
      } finally {
        await child.kill()
        await Promise.all(stops.map((stop) => stop()))
      }
    }, 240_000)
  }
})
