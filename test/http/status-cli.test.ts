// `slotbus status` as a user runs it: against a real hub with real worker processes, once or redrawn every
// second until Ctrl-C; a hub that is not there (or a proxy that wants credentials) is one line and exit 2.
import { hostname } from "node:os"
import { afterAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { createHub } from "../../src/http/index.ts"
import { run, spawn, stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"
import { controlsIn, ESCAPES, flood, statusCli, trickle } from "../support/status/status-cli.ts"

afterAll(stopAll)

const BIN = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
const status = (args: string[]) => run([process.execPath, BIN, "status", ...args], { timeoutMs: 30_000 })

/** The cells of the first table row (columns two spaces or more apart) whose cell `i` is `value`. */
function row(out: string, i: number, value: string): string[] {
  const found = out
    .split("\n")
    .map((l) => l.trim().split(/\s{2,}/))
    .find((cells) => cells[i] === value)
  if (!found) throw new Error(`no row with ${JSON.stringify(value)} in column ${i} in:\n${out}`)
  return found
}

test("slotbus status --once prints the hub's workers, routes and topic, and exits 0", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const first = await startWorker(hub.url, "shop", ["--instance=shop-1"])
  const w = await startWorker(hub.url, "shop", ["--instance=shop-1"]) // a restart of shop-1
  try {
    await first.waitLine(/^closed replaced$/)
    for (let i = 0; i < 4; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
    expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
    const r = await status([hub.url, "--once"])
    expect([r.code, r.stderr]).toEqual([0, ""])
    const out = r.stdout
    // drawn as any serveStatus section: the title line, then the hub's facts and tables
    expect(out).toStartWith(`slotbus hub ${hub.url} — ${hostname()}, pid ${process.pid}, up `)
    expect(out).toContain(`\n== hub ${hub.url}\n`)
    expect(out).toMatch(/^workers: 1 {3}requests: 5 {3}responses: 5 {3}4xx: 0 /m) // before: 1, its GET /status.json
    // NAME INSTANCE HOST PID STATE SLOTS IN-FLIGHT STUCK SERVED RESTARTS P50 P90 P99 MAX ROUTES
    const cells = row(out, 0, "shop")
    const host = hostname()
    expect(cells.slice(0, 10)).toEqual(["shop", "shop-1", host, String(w.pid), "connected", "0/32", "0", "0", "5", "1"])
    expect(cells.slice(10, 14).every((c) => /^\d+(\.\d+)?$/.test(c))).toBe(true) // ms
    expect(row(out, 1, "GET /items/:id")).toEqual(["shop", "GET /items/:id", "1"])
    expect(out).toContain(`events topic: ${hub.eventsTopic}`)
    expect(out).toContain("ring / published bytes: 1048576 / ")
    expect(row(out, 0, `${w.pid} (shop)`)).toEqual([`${w.pid} (shop)`, "1"]) // the worker as a publisher
    expect(row(out, 1, "shop").slice(2)).toEqual(["shop-1", String(first.pid), "replaced"]) // the recent eviction
    expect(row(out, 1, "shop")[0]).toMatch(/^\d\d:\d\d:\d\d$/)
  } finally {
    await first.kill()
    await w.kill()
  }
})

test("slotbus status shows a hostile route's terminal escapes as text, never as escapes", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const evil = await startWorker(hub.url, "evil", ["--routes=hostile"])
  try {
    const r = await status([hub.url, "--once"])
    expect(r.code).toBe(0)
    expect(r.stdout).not.toMatch(/\p{Cc}(?<!\n)/u) // no control character but the newlines
    expect(r.stdout).toContain("GET /?[2J?[31mred?")
  } finally {
    await evil.kill()
  }
})

test("without --once it redraws every second until Ctrl-C, then exits 0", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const w = await startWorker(hub.url, "shop")
  const watch = spawn([process.execPath, BIN, "status", hub.url])
  try {
    // Into a pipe, frames follow one another: wait for a second one that has seen a request.
    await watch.waitLine(/^slotbus hub /)
    expect((await fetch(`${hub.url}/items/1`)).status).toBe(200)
    await watch.waitLine(/^workers: 1 {3}requests: 1 /)
    watch.signal("SIGINT")
    expect(await watch.exited).toBe(0)
    expect(watch.lines.filter((l) => l.startsWith("slotbus hub ")).length).toBeGreaterThanOrEqual(2)
    expect(watch.stderr).toBe("")
  } finally {
    await watch.kill()
    await w.kill()
  }
})

test("a hub that goes away while watched is reported on the next redraw, and the watch goes on", async () => {
  const hub = await createHub({ port: 0, quiet: true })
  const watch = spawn([process.execPath, BIN, "status", hub.url])
  try {
    await watch.waitLine(/^slotbus hub /)
    await hub.close()
    await watch.waitLine(/^slotbus status: nothing answers at .+; trying again every second \(Ctrl-C stops\)$/)
    expect(watch.running).toBe(true)
    watch.signal("SIGINT")
    expect(await watch.exited).toBe(0)
  } finally {
    await watch.kill()
    await hub.close()
  }
})

test("slotbus status with no hub at the URL prints one line and exits 2", async () => {
  const probe = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() })
  const url = `http://127.0.0.1:${probe.port}`
  probe.stop(true)
  for (const args of [[url, "--once"], [url]]) {
    const r = await status(args)
    expect([r.code, r.stdout]).toEqual([2, ""])
    expect(r.stderr).toMatch(
      new RegExp(
        `^slotbus status: nothing answers at ${url} \\(.+\\); start the hub \\("slotbus hub"\\) or the app serving its status there, or check the URL\\n$`,
      ),
    )
  }
})

test.each([
  [
    401,
    "Unauthorized",
    /^slotbus status: http:\/\/\S+\/health answered 401 Unauthorized: something in front of the hub wants credentials/,
  ],
  [403, "Forbidden", /answered 403 Forbidden: something in front of the hub wants credentials/],
  [404, "Not Found", /^slotbus status: http:\/\/\S+ is not a slotbus hub: GET \/health answered 404 Not Found\n$/],
  [200, "OK", /is not a slotbus hub: GET \/health answered 200 OK without a hub's report\n$/],
])("a server answering /health with %d is one line and exit 2", async (code, _text, line) => {
  using proxy = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: () => new Response(code === 200 ? "<html>a web site</html>" : "no", { status: code }),
  })
  const r = await status([`http://127.0.0.1:${proxy.port}`, "--once"])
  expect([r.code, r.stdout]).toEqual([2, ""])
  expect(r.stderr).toMatch(line)
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1)
})

// the right top level with malformed entries: a stack trace (Bun) or "TypeError: s.warnings is not iterable" (Node)
// once; a /status.json's sections are now drawn as far as they go (test/status/status.test.ts, "as far as")
test.each([["/health", { status: "ok", workers: [null], routes: [], topics: [], evicted: [], counters: {}, sse: {} }]])(
  "a %s whose entries are malformed is not a slotbus server: one line and exit 2",
  async (path, body) => {
    using server = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: (req) => (new URL(req.url).pathname === path ? Response.json(body) : new Response("no", { status: 404 })),
    })
    const r = await status([`http://127.0.0.1:${server.port}`, "--once"])
    expect([r.code, r.stdout]).toEqual([2, ""])
    expect(r.stderr).toMatch(/^slotbus status: http:\/\/\S+ is not a slotbus hub: GET \/health answered [^\n]+\n$/)
  },
)

test.each([
  [{ title: "x", sections: [{ kind: "bus", name: "n" }] }, "== bus n"],
  [{ title: "x", sections: [null, 5] }, "== unreadable section 1"],
])("a /status.json whose sections are malformed is drawn as far as it goes, exit 0", async (body, line) => {
  using server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => Response.json(body) })
  const r = await status([`http://127.0.0.1:${server.port}`, "--once"])
  expect([r.code, r.stderr]).toEqual([0, ""])
  expect(r.stdout).toContain(line)
})

/** A hub's /health in which every value `slotbus status` prints carries terminal escapes, numbers included. */
function hostileHealth() {
  const e = ESCAPES
  const num = `7${e}`
  const worker = (transport: string) => ({
    name: `name${e}`,
    instance: `instance${e}`,
    pid: num,
    routes: { length: num },
    connected: num,
    inFlight: num,
    served: num,
    lastSeen: num,
    slots: num,
    slotsInUse: num,
    stuck: num,
    restarts: num,
    latency: { count: num, p50Us: num, p90Us: num, p99Us: num, maxUs: num },
    transport,
    host: `host${e}`,
  })
  const counters = Object.fromEntries(
    [
      "requests",
      "responses",
      "notFound",
      "methodNotAllowed",
      "tooLarge",
      "unavailable",
      "badGateway",
      "timeouts",
      "workerErrors",
      "clientAborts",
      "evictions",
      "emitted",
    ].map((k) => [k, num]),
  )
  return {
    status: "ok",
    uptimeMs: num,
    host: `host${e}`,
    pid: num,
    workers: [worker("shm"), worker("nats")],
    routes: [{ route: `GET /r${e}`, owner: `owner${e}`, workers: num }],
    sse: { connections: num, eventsClients: num, statusClients: num },
    counters,
    topics: [
      {
        name: `topic${e}`,
        capacity: num,
        tail: num,
        abandoned: num,
        fenced: num,
        subscribers: [
          { pid: num, filter: `filter${e}`, queue: num, received: num, lagged: num, behind: num, parked: true },
        ],
        publishers: [{ pid: num, published: num }],
      },
    ],
    evicted: [{ name: `name${e}`, instance: `instance${e}`, pid: num, reason: `reason${e}`, at: `at${e}` }],
    nats: [
      {
        kind: `kind${e}`,
        name: `name${e}`,
        warnings: [`warning${e}`],
        facts: [[`fact${e}`, num]],
        tables: [{ title: `t${e}`, columns: [`c${e}`], rows: [[num]] }],
      },
    ],
  }
}

test("every value of a hostile server's /health reaches the terminal as text, never as an escape", async () => {
  using server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    fetch: (req) =>
      new URL(req.url).pathname === "/health" ? Response.json(hostileHealth()) : new Response("no", { status: 404 }),
  })
  const r = await statusCli([`http://127.0.0.1:${server.port}`, "--once"])
  expect([r.code, r.stderr]).toEqual([0, ""])
  const out = new TextDecoder().decode(r.stdout)
  expect(out).toContain("— host?[2J?[31m?]0;pwned??2J??, pid NaN, up NaN s,") // numbers only if they are numbers
  expect(out).toContain("requests: NaN   responses: NaN   4xx: NaN")
  expect(out).toContain("-- across hosts (NATS)")
  expect(controlsIn(r.stdout)).toEqual([])
})

// An http URL is asked for /status.json first (serveStatus's view), then for /health (the hub's): each read is capped.
describe.each([
  ["a body that never ends", () => flood()],
  ["a 3 GiB body", () => flood(3 * 1024 ** 3)],
  ["a body that trickles forever", () => trickle()],
])("%s", (what, body) => {
  test.each([
    ["/health", (path: string) => (path === "/health" ? new Response(body()) : new Response("no", { status: 404 }))],
    ["every path", () => new Response(body())],
  ])(
    `at %s: one line on stderr, exit 2, the memory bounded`,
    async (where, answer) => {
      using server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => answer(new URL(req.url).pathname) })
      const r = await statusCli([`http://127.0.0.1:${server.port}`, "--once"])
      console.log(
        `${what} at ${where}: exit ${r.code}, peak RSS ${(r.maxRssBytes / 1024 ** 2).toFixed(0)} MiB, ${r.stderr.trim()}`,
      )
      expect(r.code).toBe(2)
      expect(r.stderr).toMatch(/^slotbus status: http:\S+ is not a slotbus hub: GET \/health answered [^\n]+\n$/)
      expect(r.stdout.length).toBe(0)
      expect(r.maxRssBytes).toBeLessThan(256 * 1024 ** 2)
    },
    30_000,
  )
})

test.each([
  [["--bogus"], /^slotbus status: unknown option '--bogus'; run "slotbus status --help" for the options$/],
  [["a", "b"], /^slotbus status: one hub URL at most, got 2; run/],
  [["ftp://x"], /^slotbus status: the hub URL must be http:\/\/host:port, got "ftp:\/\/x"$/],
  [["http://[::1"], /^slotbus status: "http:\/\/\[::1" is not a URL; give the hub's, e.g. http:\/\/127.0.0.1:3200$/],
])("slotbus status %j prints one line and exits 2", async (args, line) => {
  const r = await status(args)
  expect([r.code, r.stdout]).toEqual([2, ""])
  expect(r.stderr.trimEnd()).toMatch(line)
  expect(r.stderr.trimEnd().split("\n")).toHaveLength(1)
})

test("slotbus status --help prints the usage and exits 0; slotbus --help lists the command", async () => {
  const r = await status(["--help"])
  expect([r.code, r.stderr]).toEqual([0, ""])
  expect(r.stdout).toStartWith("usage: slotbus status [target] [--once]")
  const top = await run([process.execPath, BIN, "--help"])
  expect(top.stdout).toMatch(/^ {2}status {8}/m)
})
