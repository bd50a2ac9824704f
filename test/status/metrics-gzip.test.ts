// GET /metrics gzipped for a scrape that takes gzip (Prometheus sends Accept-Encoding: gzip): metricsHandler on the
// app's own server (Bun.serve, or node:http under Node; an Express app's route and a plain node:http server's, under
// both), serveStatus and the HTTP hub answer the shared text's gzipped copy with Content-Encoding: gzip, and the text
// itself to a scrape that does not take gzip (none asked, q=0, another coding). Read by fetch without decompression,
// and by a real Prometheus server. On node:http metricsHandler answers a POST 405, a failed computation 500, and
// concurrent scrapes with one computation.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { gunzipSync } from "node:zlib"
import { createHub } from "../../src/http/index.ts"
import { busName, type Child, until } from "../support/helpers.ts"
import { PEER_RUNTIMES, type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { startPrometheus } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const prometheusSkip = toolSkipReason("prometheus")
sayWhySkipped("a Prometheus server scraping gzipped /metrics", prometheusSkip)
const dirs: string[] = []
afterAll(() => {
  removeNodeBuilds()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A scrape as sent, with exactly this Accept-Encoding (or none), its body as it came (not decompressed). */
async function scrape(url: string, acceptEncoding?: string, method = "GET") {
  const headers: Record<string, string> = acceptEncoding === undefined ? {} : { "accept-encoding": acceptEncoding }
  const res = await fetch(url, { method, headers, decompress: false })
  expect(res.status).toBe(200)
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
  expect(res.headers.get("vary")?.toLowerCase()).toBe("accept-encoding")
  return { encoding: res.headers.get("content-encoding"), body: new Uint8Array(await res.arrayBuffer()) }
}

const GZIP = ["gzip", "deflate, gzip", "gzip;q=0.5, identity", "x-gzip", "*", "br;q=1, *;q=0.1", "GZIP ; Q=1"]
const IDENTITY = [undefined, "identity", "gzip;q=0", "gzip; q=0.000, br", "*;q=0", "gzip;q=0, *", "br, deflate"]

/** Every way of asking: gzip to those that take it, the text itself to the others, the same text in both. */
async function expectEncodings(url: string) {
  const text = new TextDecoder().decode((await scrape(url)).body)
  expect(text).toContain("# TYPE process_cpu_seconds_total counter")
  for (const ae of GZIP) {
    const got = await scrape(url, ae)
    expect([ae, got.encoding]).toEqual([ae, "gzip"])
    expect(gunzipSync(got.body).toString()).toBe(text)
    expect(got.body.length).toBeLessThan(text.length / 3)
  }
  for (const ae of IDENTITY) {
    const got = await scrape(url, ae)
    expect([ae, got.encoding]).toEqual([ae, null])
    expect(new TextDecoder().decode(got.body)).toBe(text)
  }
  const head = await scrape(url, "gzip", "HEAD")
  expect([head.encoding, head.body.length]).toEqual(["gzip", 0])
}

interface Front {
  front: Child
  app: string
  status: string
  express: string
  http: string
}

async function startFront(runtime: PeerRuntime, name: string): Promise<Front> {
  const front = await peerChild(runtime, "status/gzip-front.ts", [name])
  const [, app, status, express, http] = await front.waitLine(/^ready (\S+) (\S+) (\S+) (\S+)$/, 30_000)
  return { front, app: app!, status: status!, express: express!, http: http! }
}

async function stop(front: Child) {
  front.signal("SIGTERM")
  await front.exited
}

describe.each(PEER_RUNTIMES)("a %s front", (runtime) => {
  test.skipIf(peerSkip(runtime) !== null)(
    "metricsHandler on the app's server and serveStatus answer gzip to a scrape that takes it, the text to others",
    async () => {
      const { front, app, status } = await startFront(runtime, busName("gz"))
      try {
        await expectEncodings(`${app}/metrics`)
        await expectEncodings(`${status}/metrics`)
      } finally {
        await stop(front)
      }
    },
    60_000,
  )

  test.skipIf(peerSkip(runtime) !== null)(
    "the same metricsHandler on an Express route and a plain node:http server: gzip or the text, HEAD, POST 405, a failed computation 500, concurrent scrapes one computation",
    async () => {
      const name = busName("gzn")
      const { front, express, http } = await startFront(runtime, name)
      try {
        for (const base of [express, http]) {
          await expectEncodings(`${base}/metrics`)
          const text = await (await fetch(`${base}/metrics`)).text()
          expect(text).toContain(`slotbus_requests_total{bus="${name}"} 0`)
          const post = await fetch(`${base}/metrics`, { method: "POST" })
          expect([post.status, post.headers.get("allow"), await post.json()]).toEqual([
            405,
            "GET, HEAD",
            { error: "method-not-allowed", message: "/metrics takes GET, HEAD" },
          ])
        }
        // the source's first computation throws: a 500 with what failed, the front still up, the next one computes
        const failed = await fetch(`${http}/counted`)
        expect(failed.status).toBe(500)
        expect(await failed.json()).toMatchObject({ error: "internal" })
        const texts = await Promise.all(
          Array.from({ length: 8 }, async () => {
            const res = await fetch(`${http}/counted`, { headers: { "accept-encoding": "gzip" }, decompress: false })
            expect([res.status, res.headers.get("content-encoding")]).toEqual([200, "gzip"])
            return gunzipSync(new Uint8Array(await res.arrayBuffer())).toString()
          }),
        )
        expect(new Set(texts).size).toBe(1)
        expect(texts[0]).toContain("\ntest_reads_total 2\n") // one computation after the failed one, for all 8
        expect(front.running, front.output).toBe(true) // no unhandled rejection took it down
      } finally {
        await stop(front)
      }
    },
    60_000,
  )

  test.skipIf(peerSkip(runtime) !== null)(
    "on node:http, the handler's promise settles when its client has gone before it was called",
    async () => {
      const { front, http } = await startFront(runtime, busName("gzl"))
      try {
        for (let i = 0; i < 5; i++) {
          const gone = new AbortController()
          const asked = fetch(`${http}/late`, { signal: gone.signal }).catch(() => null)
          await Bun.sleep(50)
          gone.abort()
          await asked
        }
        const count = async () =>
          (await (await fetch(`${http}/late-count`)).json()) as { calls: number; settled: number }
        await until(async () => (await count()).calls === 5, "the five calls made", 10_000)
        await until(async () => (await count()).settled === 5, "the five calls settled", 10_000)
      } finally {
        await stop(front)
      }
    },
    60_000,
  )
})

test("the HTTP hub answers gzip to a scrape of /metrics that takes it, the text to others", async () => {
  await using hub = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 600_000 })
  await expectEncodings(`${hub.url}/metrics`)
})

test.skipIf(prometheusSkip !== null)(
  "a real Prometheus reads the gzipped /metrics of Bun and Node fronts, on the app's port, an Express app's and serveStatus's",
  async () => {
    const runtimes = PEER_RUNTIMES.filter((r) => peerSkip(r) === null)
    const fronts = await Promise.all(
      runtimes.map(async (r) => {
        const name = busName("gzp")
        return { name, ...(await startFront(r, name)) }
      }),
    )
    const dir = mkdtempSync(join(tmpdir(), "slotbus-prometheus-"))
    dirs.push(dir)
    let prometheus: ReturnType<typeof startPrometheus> | undefined
    try {
      const targets = fronts.flatMap((f) => [f.app, f.status, f.express].map((u) => `"${new URL(u).host}"`)).join(", ")
      const config = `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fronts\n    static_configs:\n      - targets: [${targets}]\n`
      prometheus = startPrometheus(dir, config)
      const { query, value } = prometheus
      await until(
        async () => value(await query('count(up{job="fronts"} == 1)')) === fronts.length * 3,
        "Prometheus scraped every front's /metrics",
        30_000,
        200,
      )
      for (const f of fronts) expect(value(await query(`count(slotbus_requests_total{bus="${f.name}"})`))).toBe(3)
    } finally {
      await prometheus?.stop()
      for (const f of fronts) await stop(f.front)
    }
  },
  90_000,
)
