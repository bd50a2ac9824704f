// The hub's live view over HTTP: what /health reports for it (slots, stuck, restarts, latency, the events topic),
// the hub as a serveStatus source, GET /health/status (serveStatus's page) and GET /health/stream (the hub's status
// report as server-sent events). The page itself runs in Chromium in status-page.test.ts; `slotbus status` in
// status-cli.test.ts.
import { afterAll, expect, test } from "bun:test"
import { createHash } from "node:crypto"
import { hostname } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { createHub, type Hub, type HubHealth } from "../../src/http/index.ts"
import { SlotBus } from "../../src/index.ts"
import { serveStatus, type StatusReport, type StatusSection } from "../../src/status/index.ts"
import { busName, REPO, run, spawnWorker, stopAll, until } from "../support/helpers.ts"
import { SseReader, startWorker } from "../support/http/http.ts"

afterAll(stopAll)

const health = async (hub: Hub) => (await (await fetch(`${hub.url}/health`)).json()) as HubHealth

test("/health reports each worker's slots in use, stuck slots, restarts and latency, and the events topic with each subscriber's lag", async () => {
  await using hub = await createHub({ port: 0, quiet: true, timeoutMs: 5000 })
  const first = await startWorker(hub.url, "shop", ["--instance=shop-1"])
  const w = await startWorker(hub.url, "shop", ["--instance=shop-1"]) // the same instance from a new pid: a restart
  const here = await Topic.open(hub.eventsTopic)
  const hanging = new AbortController()
  try {
    await first.waitLine(/^closed replaced$/)
    const sub = here.subscribe({ type: "order.*" }) // never read: it falls behind
    for (let i = 0; i < 5; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
    expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
    const pending = fetch(`${hub.url}/hang`, { signal: hanging.signal }).catch(() => null)
    await w.waitLine(/^hang 1$/)

    const h = await health(hub)
    expect(h.host).toBe(hostname())
    expect(h.pid).toBe(process.pid)
    expect(h.workers).toHaveLength(1)
    const me = h.workers[0]!
    expect(me).toMatchObject({ name: "shop", instance: "shop-1", pid: w.pid, restarts: 1, slots: 32 })
    expect(me).toMatchObject({ slotsInUse: 1, inFlight: 1, stuck: 0, served: 6 })
    const l = me.latency
    expect(l.count).toBeGreaterThanOrEqual(6) // 6 answered requests, and any ping
    expect(0 < l.p50Us && l.p50Us <= l.p90Us && l.p90Us <= l.p99Us && l.p99Us <= l.maxUs).toBe(true)

    expect(h.topics.map((t) => t.name)).toEqual([hub.eventsTopic])
    const t = h.topics[0]!
    expect(t.publishers).toEqual([{ pid: w.pid, published: 1 }])
    const mine = t.subscribers.find((s) => s.filter === "order.*")!
    expect(mine).toMatchObject({ pid: process.pid, received: 0, lagged: 0 })
    expect(mine.behind).toBe(t.tail) // it subscribed at 0, before the only event
    expect(t.subscribers.some((s) => s.filter === "*" && s.pid === process.pid)).toBe(true) // the hub's own
    sub.close()

    // The client gives up; the worker keeps the slot: once it has held it stuckAfterMs past the request's deadline
    // (timeoutMs), it counts as stuck.
    hanging.abort()
    await pending
    await until(async () => (await health(hub)).workers[0]?.stuck === 1, "the given-up slot counts as stuck", 30_000)
    expect((await health(hub)).workers[0]).toMatchObject({ slotsInUse: 1, stuck: 1 })
  } finally {
    hanging.abort()
    here.close()
    await first.kill()
    await w.kill()
  }
}, 60_000)

/** The rows of a section's table as objects, by column name. */
const rowsOf = (s: StatusSection, title: string) => {
  const t = s.tables.find((x) => x.title === title)!
  return t.rows.map((r) => Object.fromEntries(t.columns.map((c, i) => [c, r[i]])))
}

test("serveStatus([hub, bus]) shows the hub beside the bus: the hub's workers, routes and counters as /health has them", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  await using bus = await SlotBus.listen(busName("hub-status"))
  const w = await startWorker(hub.url, "shop", ["--instance=shop-1"])
  const echo = await spawnWorker(bus.name)
  const status = await serveStatus([hub, bus], { port: 0, title: "hub and bus" })
  try {
    for (let i = 0; i < 3; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
    expect((await fetch(`${hub.url}/nope`)).status).toBe(404)
    const r = (await (await fetch(`${status.url}/status.json`)).json()) as StatusReport
    expect(r.sections.map((s) => [s.kind, s.name])).toEqual([
      ["hub", hub.url],
      ["bus", bus.name],
    ])
    const [s, b] = r.sections as [StatusSection, StatusSection]
    const h = await health(hub)
    expect(s.facts).toContainEqual(["requests", h.counters.requests])
    expect(s.facts).toContainEqual(["requests", 3])
    expect(s.facts).toContainEqual(["4xx", 1])
    expect(s.facts).toContainEqual(["events topic", hub.eventsTopic])
    expect(rowsOf(s, "workers")).toMatchObject([
      { name: "shop", instance: "shop-1", pid: w.pid, state: "connected", slots: "0/32", served: 3 },
    ])
    expect(rowsOf(s, "routes")).toContainEqual({ owner: "shop", route: "GET /items/:id", workers: 1 })
    expect(rowsOf(s, "routes")).toHaveLength(h.routes.length)
    expect(rowsOf(s, "events topic subscribers")).toContainEqual(
      expect.objectContaining({ subscriber: `${process.pid} (the hub)`, filter: "*" }),
    )
    expect(rowsOf(b, "workers").map((x) => x.pid)).toEqual([echo.pid])

    // the same two in a terminal
    const cli = await run([process.execPath, join(REPO, "bin", "slotbus.ts"), "status", status.url, "--once"])
    expect([cli.code, cli.stderr]).toEqual([0, ""])
    expect(cli.stdout).toContain(`== hub ${hub.url}\n`)
    expect(cli.stdout).toContain(`== bus ${bus.name}\n`)
    expect(cli.stdout).toMatch(new RegExp(`shop +shop-1 +\\S+ +${w.pid} +connected +0/32 `))
  } finally {
    await status.stop()
    await echo.kill()
    await w.kill()
  }
})

test("GET /health/status is one self-contained page: no token, like /health; nothing from elsewhere; scripts only by hash", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const r = await fetch(`${hub.url}/health/status`)
  expect(r.status).toBe(200)
  expect(r.headers.get("content-type")).toBe("text/html; charset=utf-8")
  expect(r.headers.get("x-content-type-options")).toBe("nosniff")
  const html = await r.text()
  const inline = (tag: string) => {
    const all = [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!)
    expect(all).toHaveLength(1)
    return `'sha256-${createHash("sha256").update(all[0]!).digest("base64")}'`
  }
  const csp = r.headers.get("content-security-policy")!.split("; ")
  expect(csp).toContain("default-src 'none'")
  expect(csp).toContain(`script-src ${inline("script")}`)
  expect(csp).toContain(`style-src ${inline("style")}`)
  expect(csp).toContain("connect-src 'self'")
  // Nothing it loads comes from elsewhere: no src= at all, the one href is the empty data: icon (no favicon request).
  expect(html).not.toMatch(/\ssrc=/)
  expect([...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1])).toEqual(["data:,"])
  expect(html).not.toMatch(/https?:\/\//)
  expect(html).toContain('new EventSource("stream")') // relative: /health/stream, also behind a path prefix

  // The same rule as /health (no token: see "Liveness, logs and metrics" in src/http/README.md), whatever is sent.
  for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }] as Record<string, string>[]) {
    expect((await fetch(`${hub.url}/health`, { headers })).status).toBe(200)
    expect((await fetch(`${hub.url}/health/status`, { headers })).status).toBe(200)
    const s = await fetch(`${hub.url}/health/stream`, { headers })
    expect(s.status).toBe(200)
    await s.body?.cancel()
  }
  const head = await fetch(`${hub.url}/health/status`, { method: "HEAD" })
  expect([head.status, await head.text()]).toEqual([200, ""])
  const post = await fetch(`${hub.url}/health/status`, { method: "POST" })
  expect([post.status, post.headers.get("allow")]).toEqual([405, "GET, HEAD"])
  expect(hub.health().counters.notFound).toBe(0)
})

test("GET /health/stream sends the hub's status report at once, then again as counters move; hub.close() ends it", async () => {
  const hub = await createHub({ port: 0, quiet: true })
  const w = await startWorker(hub.url, "shop")
  let reader: SseReader | undefined
  try {
    const res = await fetch(`${hub.url}/health/stream`)
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8")
    reader = new SseReader(res)
    // serveStatus's report (what GET /stream of serveStatus sends), its one section the hub's
    const hubOf = (m: { event: string; data: string }) =>
      m.event === "status" ? (JSON.parse(m.data) as StatusReport).sections[0]! : null
    const first = hubOf(await reader.next((m) => m.event === "status"))!
    expect([first.kind, first.name]).toEqual(["hub", hub.url])
    expect(rowsOf(first, "workers").map((x) => x.pid)).toEqual([w.pid])
    expect(first.facts).toContainEqual(["requests", 0])
    expect(first.facts).toContainEqual(["SSE clients", 1])

    for (let i = 0; i < 3; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
    const later = hubOf(await reader.next((m) => hubOf(m)?.tables[0]?.rows[0]?.[8] === 3))!
    expect(later.facts).toContainEqual(["responses", 3])
    expect(reader.received.filter((m) => m.event === "status").length).toBeGreaterThanOrEqual(2)
    const metrics = await (await fetch(`${hub.url}/metrics`)).text()
    expect(metrics).toContain('slotbus_hub_sse_connections{kind="status"} 1\n')

    await hub.close()
    await expect(reader.next(() => false)).rejects.toThrow(/SSE stream ended|ECONNRESET/) // ended, not timed out
  } finally {
    await reader?.close()
    await w.kill()
    await hub.close()
  }
})

test("a /health/stream client that leaves is forgotten at once", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const readers: SseReader[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const r = new SseReader(await fetch(`${hub.url}/health/stream`))
      readers.push(r)
      await r.next((m) => m.event === "status")
    }
    expect(hub.health().sse.statusClients).toBe(3)
    for (const r of readers) await r.close()
    await until(() => hub.health().sse.statusClients === 0, "the hub forgets the watchers that left")
  } finally {
    for (const r of readers) await r.close()
  }
})

test("a /health/stream client with more queued than 4 × sseMaxBufferedBytes is dropped, as any SSE client", async () => {
  // One report is a few KiB: over 4 × 256 bytes at the first send, so the client is cut off before any report.
  await using hub = await createHub({ port: 0, quiet: true, sseMaxBufferedBytes: 256 })
  const w = await startWorker(hub.url, "shop")
  try {
    const outcome = await fetch(`${hub.url}/health/stream`).then(
      (res) =>
        new SseReader(res)
          .next((m) => m.event === "status")
          .then(
            () => "a report",
            (e: Error) => e.message,
          ),
      (e: Error) => e.message,
    )
    expect(outcome).toMatch(/SSE stream ended|ECONNRESET/)
    expect(hub.health().sse.statusClients).toBe(0)
  } finally {
    await w.kill()
  }
})
