// Running a hub: its log of workers coming and going, /metrics, and what a worker says when it cannot join.
import { afterAll, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHub, hubWorker, HubAuthError, type HubHealth } from "../../src/http/index.ts"
import { stopAll, until } from "../support/helpers.ts"
import { curl, curlSkip, startWorker } from "../support/http/http.ts"

afterAll(stopAll)

test("the hub logs a worker's registration, its restart and its eviction, one line each", async () => {
  const lines: string[] = []
  await using hub = await createHub({ port: 0, log: (l) => lines.push(l) })
  const first = await startWorker(hub.url, "shop", ["--instance=shop-1"])
  const second = await startWorker(hub.url, "shop", ["--instance=shop-1"])
  try {
    await first.waitLine(/^closed replaced$/)
    second.signal("SIGKILL")
    await until(() => lines.length >= 3, "three log lines")
    expect(lines).toEqual([
      expect.stringMatching(
        new RegExp(`^worker "shop" instance shop-1 \\(pid ${first.pid}\\) registered: \\d+ routes$`),
      ),
      expect.stringMatching(
        new RegExp(
          `^worker "shop" instance shop-1 restarted: pid ${first.pid} replaced by pid ${second.pid}, \\d+ routes$`,
        ),
      ),
      `worker "shop" instance shop-1 (pid ${second.pid}) evicted: disconnected`,
    ])
  } finally {
    await first.kill()
    await second.kill()
  }
})

test("quiet: true keeps the hub from logging workers", async () => {
  const lines: string[] = []
  await using hub = await createHub({ port: 0, quiet: true, log: (l) => lines.push(l) })
  const w = await startWorker(hub.url, "shop")
  w.signal("SIGKILL")
  await until(() => hub.health().evicted.length === 1, "the worker is evicted")
  await w.kill()
  expect(lines).toEqual([])
})

test.skipIf(curlSkip !== null)(
  "GET /metrics serves every counter and gauge in Prometheus text format, to curl",
  async () => {
    await using hub = await createHub({ port: 0, quiet: true })
    const w = await startWorker(hub.url, "shop")
    try {
      for (const path of ["/items/1", "/items/2", "/nowhere"]) await fetch(hub.url + path)
      const r = await curl([`${hub.url}/metrics`])
      const h = (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
      expect(r.status).toBe(200)
      expect(r.headers["content-type"]?.[0]).toBe("text/plain; version=0.0.4; charset=utf-8")
      const samples = new Map<string, number>()
      for (const line of r.body.trimEnd().split("\n")) {
        if (line.startsWith("#")) {
          expect(line).toMatch(
            /^# (HELP (slotbus|process|nodejs)_[a-z_]+ \S.*|TYPE (slotbus|process|nodejs)_[a-z_]+ (counter|gauge|histogram))$/,
          )
          continue
        }
        const m = line.match(/^((?:slotbus|process|nodejs)_[a-z_]+(?:\{[^}]*\})?) (\S+)$/)
        expect(m).not.toBeNull()
        samples.set(m![1]!, Number(m![2]))
      }
      for (const [name, value] of Object.entries(h.counters)) {
        const metric = `slotbus_hub_${name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}_total`
        expect([metric, samples.get(metric)]).toEqual([metric, value])
      }
      expect(samples.get("slotbus_hub_requests_total")).toBe(2)
      expect(samples.get("slotbus_hub_not_found_total")).toBe(1)
      expect(samples.get('slotbus_hub_workers{state="connected"}')).toBe(1)
      expect(samples.get(`slotbus_hub_worker_served_total{name="shop",instance="${w.pid}"}`)).toBe(2)
      expect(samples.get('slotbus_hub_sse_connections{kind="events"}')).toBe(0)
    } finally {
      await w.kill()
    }
  },
)

test('app.closed settles with reason "failed" when run() fails', async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const app = hubWorker(hub.url, "shop", { token: "0123456789abcdef-wrong", log: () => {} })
  app.get("/x", () => new Response("x"))
  const failure = await app.run().catch((e: unknown) => e)
  expect(failure).toBeInstanceOf(HubAuthError)
  expect(await app.closed).toEqual({ reason: "failed", error: failure as Error })
  expect(app.state).toBe("closed")
})

test("a worker that finds no token file while the hub is up says where it looked and why", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-token-"))
  const missing = join(dir, "elsewhere.token")
  await using hub = await createHub({ port: 0, quiet: true, tokenFile: join(dir, "hub.token") })
  const logged: string[] = []
  const app = hubWorker(hub.url, "shop", { tokenFile: missing, maxBackoffMs: 200, log: (m) => logged.push(m) })
  app.get("/x", () => new Response("x"))
  const running = app.run()
  try {
    await until(() => logged.length > 0, "the worker logs why it cannot join")
    expect(logged[0]).toContain(
      `the hub at ${hub.url} is up, but its token file is not at ${missing} (the tokenFile option)`,
    )
    expect(logged[0]).toContain("SLOTBUS_HUB_TOKEN_FILE")
    expect(logged[0]).toEndWith("; retrying")
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
  // Closed while still trying to join: run() settles as well, and closed says why.
  await running
  expect(await app.closed).toEqual({ reason: "closed" })
})

test("a worker whose hub is not up and has no token file says both", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-token-"))
  const probe = Bun.serve({ port: 0, fetch: () => new Response() })
  const url = `http://127.0.0.1:${probe.port}`
  probe.stop(true)
  const logged: string[] = []
  const app = hubWorker(url, "shop", { tokenFile: join(dir, "none.token"), log: (m) => logged.push(m) })
  void app.run().catch(() => {})
  try {
    await until(() => logged.length > 0, "the worker logs why it cannot join")
    expect(logged[0]).toContain(
      `no hub token file at ${join(dir, "none.token")} (the tokenFile option) and no hub answers at ${url}`,
    )
  } finally {
    await app.close()
    rmSync(dir, { recursive: true, force: true })
  }
})

// app.close() let running answers finish for SlotWorker.close's 5 s and said nothing of it: a 10 s stream was cut
// at 5 s, with no way to allow more
test("app.close({ timeoutMs }) lets an answer streaming when it began finish; bad options are refused first", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const app = hubWorker(hub.url, "shop", { token: hub.token, log: () => {} })
  const TICKS = 28 // 7 s: past close()'s default 5 s
  app.get("/ticks", () => {
    let n = 0
    return new Response(
      new ReadableStream({
        async pull(c) {
          await Bun.sleep(250)
          c.enqueue(new TextEncoder().encode(`tick ${++n}\n`))
          if (n === TICKS) c.close()
        },
      }),
    )
  })
  await app.run()
  const res = await fetch(`${hub.url}/ticks`)
  const body = res.text()
  await Bun.sleep(300)
  await expect(app.close({ timeoutMs: -1 })).rejects.toBeInstanceOf(RangeError)
  await expect(app.close({ timeout: 1 } as never)).rejects.toBeInstanceOf(TypeError)
  expect(app.state).toBe("connected")
  const closing = app.close({ timeoutMs: 30_000 })
  expect((await body).trim().split("\n").at(-1)).toBe(`tick ${TICKS}`)
  await closing
  expect(await app.closed).toEqual({ reason: "closed" })
}, 30_000)
