// serveStatus and `slotbus status <target>` as a user runs them: an app process (test/support/status/status-app.ts) with a
// supervised worker, a worker on "another host" over a real nats-server, a durable bridged topic and two contests,
// read over TCP and a unix socket by the CLI and by headless Chromium. The NATS and browser parts skip where
// nats-server or chromium is missing (with the apt-get command), unless SLOTBUS_REQUIRE_TOOLS=1.
// SLOTBUS_STATUS_SCREENSHOT=<path> keeps a copy of the page's screenshot there, to look at it.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { copyFileSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { connect } from "node:net"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { section, serveStatus, type StatusReport, type StatusServer } from "../../src/status/index.ts"
import { Browser } from "../support/browser.ts"
import { busName, FIXTURES, REPO, run, spawn, stopAll, until, type Child } from "../support/helpers.ts"
import { hostileNatsWorker, natsPerFile, natsSkipReason } from "../support/nats.ts"
import { STDIO_WORKER } from "../support/stdio/stdio.ts"
import { controlsIn, ESCAPES, flood, statusCli, trickle } from "../support/status/status-cli.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"
import { asNobody, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const APP = join(FIXTURES, "status/status-app.ts")
const CLI = join(REPO, "bin", "slotbus.ts")
const natsSkip = natsSkipReason()
sayWhySkipped("serveStatus across hosts", natsSkip)
const nats = natsPerFile(natsSkip, { jetstream: true })
const dirs: string[] = []
const servers: StatusServer[] = []

afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop()
})
afterAll(async () => {
  await stopAll()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "slotbus-status-"))
  dirs.push(d)
  return d
}

async function startApp(where: string, natsUrl?: string): Promise<{ app: Child; url: string; name: string }> {
  const name = busName("status")
  const app = spawn([process.execPath, APP, name, where, ...(natsUrl ? [natsUrl] : [])])
  const [, url] = await app.waitLine(/^status (\S+)$/, 20_000)
  return { app, url: url!, name }
}

async function reportOf(url: string): Promise<StatusReport> {
  const res = url.startsWith("unix:")
    ? await fetch("http://localhost/status.json", { unix: url.slice(5) })
    : await fetch(`${url}/status.json`)
  expect(res.status).toBe(200)
  return (await res.json()) as StatusReport
}

const sectionOf = (r: StatusReport, kind: string, name?: string) =>
  r.sections.find((s) => s.kind === kind && (name === undefined || s.name === name))!
const table = (s: { tables: { title: string; columns: string[]; rows: unknown[][] }[] }, title: string) =>
  s.tables.find((t) => t.title === title)!
const column = (t: { columns: string[]; rows: unknown[][] }, name: string) =>
  t.rows.map((r) => r[t.columns.indexOf(name)])

describe("on one host", () => {
  test("a unix socket only its user may open: the CLI shows the bus's workers and pool, the topic and the contest", async () => {
    const dir = tempDir()
    const sock = join(dir, "status.sock")
    const { app, url, name } = await startApp(`unix:${sock}`)
    expect(url).toBe(`unix:${sock}`)
    expect(statSync(sock).mode & 0o777).toBe(0o600)

    const r = await run([process.execPath, CLI, "status", url, "--once"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain(`== bus ${name}`)
    expect(r.stdout).toContain("WORKER POOLS (SUPERVISEWORKERS) (1)")
    expect(r.stdout).toContain(`== topic ${name}`)
    expect(r.stdout).toContain("nightly-report")
    expect(r.stdout).not.toContain("across hosts") // no NATS here, none shown

    // A bare path names the same socket.
    const bare = await run([process.execPath, CLI, "status", sock, "--once"])
    expect(bare.stdout).toContain(`== bus ${name}`)

    // kill -9 of the supervised worker: the pool restarts it and the view counts the restart.
    const before = await reportOf(url)
    const pid = column(table(sectionOf(before, "bus"), "workers"), "pid")[0] as number
    expect(column(table(sectionOf(before, "topic"), "publishers"), "published")).toEqual([2000])
    process.kill(pid, "SIGKILL")
    await until(
      async () => {
        const pools = table(sectionOf(await reportOf(url), "bus"), "worker pools (superviseWorkers)")
        return column(pools, "restarts")[0] === 1 && column(pools, "running")[0] === "1 of 1"
      },
      "the pool's restart shows",
      15_000,
    )
    const workers = table(sectionOf(await reportOf(url), "bus"), "workers")
    expect(column(workers, "pid")).not.toContain(pid)

    await app.kill("SIGTERM")
    expect(existsSync(sock)).toBe(false) // stop() removes its socket
  }, 60_000)

  const nobody = whyNotAsNobody(CLI)
  test.skipIf(nobody !== null)("another uid cannot open the unix socket", async () => {
    const dir = tempDir()
    const sock = join(dir, "status.sock")
    Bun.spawnSync(["chmod", "0755", dir]) // the folder lets it reach the socket: the socket's own mode refuses
    const status = await serveStatus([() => section("probe", "secret")], { unix: sock })
    servers.push(status)
    const r = await run(asNobody([process.execPath, CLI, "status", status.url, "--once"]), { env: nobodyEnv })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("nothing answers at")
    expect(r.stdout).not.toContain("secret")
  })
})

test("slotbus stdio --status: the stdio bus's worker processes and their restarts, over a unix socket", async () => {
  const dir = tempDir()
  const config = join(dir, "bus.json")
  writeFileSync(
    config,
    JSON.stringify({ pools: [{ id: "tools", command: process.execPath, args: [STDIO_WORKER], instances: 2 }] }),
  )
  const sock = join(dir, "status.sock")
  const bus = spawn([
    process.execPath,
    CLI,
    "stdio",
    "--config",
    config,
    "--listen",
    `unix:${join(dir, "bus.sock")}`,
    "--status",
    `unix:${sock}`,
  ])
  const url = `unix:${sock}`
  const workers = async () => table(sectionOf(await reportOf(url), "stdio"), "worker processes")
  await until(
    async () => {
      if (!existsSync(sock)) return false
      // the socket file exists a moment before the server accepts on it: a refused connection is "not yet"
      const w = await workers().catch(() => null)
      return w !== null && column(w, "state").every((s) => s === "running")
    },
    "both workers run",
    15_000,
  )
  const first = await workers()
  expect(column(first, "pool")).toEqual(["tools", "tools"])
  const pid = column(first, "pid")[0] as number
  process.kill(pid, "SIGKILL")
  await until(
    async () => {
      const w = await workers()
      return column(w, "restarts")[0] === 1 && column(w, "pid")[0] !== pid && column(w, "state")[0] === "running"
    },
    "the restart shows",
    15_000,
  )
  const cli = await run([process.execPath, CLI, "status", url, "--once"])
  expect(cli.stdout).toContain("== stdio stdio bus")
  expect(cli.stdout).toContain("WORKER PROCESSES (2)")
  await bus.kill("SIGTERM")
  expect(existsSync(sock)).toBe(false)
}, 60_000)

test("slotbus stdio --status with a bad address exits 2 before starting any worker", async () => {
  const dir = tempDir()
  const config = join(dir, "bus.json")
  writeFileSync(config, JSON.stringify({ pools: [{ id: "tools", command: process.execPath, args: [STDIO_WORKER] }] }))
  const r = await run([process.execPath, CLI, "stdio", "--config", config, "--status", "nowhere"])
  expect(r.code).toBe(2)
  expect(r.stderr).toContain('"nowhere" is not an address')
})

describe("checks what it is given", () => {
  test("bad options and sources are typed errors, with what to pass", async () => {
    const probe = () => section("probe", "p")
    await expect(serveStatus([probe], {})).rejects.toThrow("needs one of { port }")
    await expect(serveStatus([probe], { port: 0, unix: "/tmp/x.sock" })).rejects.toThrow(TypeError)
    await expect(serveStatus([probe], { port: 70_000 })).rejects.toThrow(RangeError)
    await expect(serveStatus([probe], { port: 0, prot: 1 } as never)).rejects.toThrow(/prot.*port/s)
    await expect(serveStatus([{} as never], { port: 0 })).rejects.toThrow("source 0 has no status view")
    await expect(serveStatus(probe as never, { port: 0 })).rejects.toThrow("an array of sources")
  })

  test("a socket path: a stale one is taken over, a live one or a plain file is refused", async () => {
    const dir = tempDir()
    const sock = join(dir, "s.sock")
    const first = await serveStatus([() => section("probe", "one")], { unix: sock })
    servers.push(first)
    await expect(serveStatus([() => section("probe", "two")], { unix: sock })).rejects.toThrow("already listens")
    // a socket file whose process died: a Bun.listen that is stopped without removing its file
    const stale = join(dir, "stale.sock")
    Bun.listen({ unix: stale, socket: { data() {} } }).stop(true)
    if (existsSync(stale)) {
      const again = await serveStatus([() => section("probe", "three")], { unix: stale })
      servers.push(again)
      expect(sectionOf(await reportOf(again.url), "probe").name).toBe("three")
    }
    const plain = join(dir, "plain")
    writeFileSync(plain, "not a socket")
    await expect(serveStatus([() => section("probe", "four")], { unix: plain })).rejects.toThrow("is not a socket")
  })

  test("on a loopback address only a loopback Host is answered: a rebound name gets 403 (DNS rebinding)", async () => {
    const status = await serveStatus([() => section("probe", "p")], { port: 0 })
    servers.push(status)
    const port = new URL(status.url).port
    const statusOf = (host: string, path: string) =>
      new Promise<string>((resolve, reject) => {
        let got = ""
        const s = connect(Number(port), "127.0.0.1", () =>
          s.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`),
        )
        s.on("data", (b) => (got += b))
        s.on("error", reject)
        s.on("close", () => resolve(got.split("\r\n")[0]!))
      })
    for (const path of ["/", "/status.json", "/metrics"]) {
      for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, "LOCALHOST"])
        expect(await statusOf(host, path)).toBe("HTTP/1.1 200 OK")
      // before: 200, the whole report, to a page of rebind.example
      expect(await statusOf(`rebind.example:${port}`, path)).toBe("HTTP/1.1 403 Forbidden")
    }
    const open = await serveStatus([() => section("probe", "p")], { port: 0, hostname: "0.0.0.0" })
    servers.push(open) // bound for other machines on purpose: any Host
    const other = new URL(open.url).port
    const res = await fetch(`http://127.0.0.1:${other}/status.json`, { headers: { host: "status.example" } })
    expect(res.status).toBe(200)
  })

  test("a source that throws or never answers shows as a warning; the others still show", async () => {
    await using bus = await SlotBus.listen(busName("status"))
    const status = await serveStatus(
      [
        bus,
        () => {
          throw new Error("broken on purpose")
        },
        () => new Promise(() => {}),
      ],
      { port: 0 },
    )
    servers.push(status)
    const r = await reportOf(status.url)
    expect(r.sections.map((s) => s.kind)).toEqual(["bus", "unreadable", "unreadable"])
    expect(r.sections[1]!.warnings[0]).toContain("broken on purpose")
    expect(r.sections[2]!.warnings[0]).toContain("no answer within")
    expect((await fetch(`${status.url}/nope`)).status).toBe(404)
    expect((await fetch(`${status.url}/status.json`, { method: "POST" })).status).toBe(405)
  })

  test("strings from other processes cannot repaint the terminal", async () => {
    const hostile = section("probe", "\x1b[2J\x1b[31mred")
    hostile.warnings.push("\x1b]0;title\x07")
    hostile.tables.push({ title: "t", columns: ["c"], rows: [["\x1b[H\u009b2J"]] })
    const status = await serveStatus([() => hostile], { port: 0 })
    servers.push(status)
    const r = await run([process.execPath, CLI, "status", status.url, "--once"])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain("?[2J?[31mred")
    // biome-ignore lint/suspicious/noControlCharactersInRegex: what must not reach the terminal
    expect(r.stdout).not.toMatch(/[\x1b\x07\u009b]/)
  })

  test("a source's own function that gives no section, or one without its lists: shown as far as it goes, the others too", async () => {
    // before: /status.json passed them on as they were, and `slotbus status` called the server "not a slotbus
    // status server" (exit 2); a JavaScript app easily returns undefined or leaves out tables
    const status = await serveStatus(
      [
        () => undefined as never,
        () => ({ kind: "mine", name: "partial", facts: [["jobs", 3]] }) as never,
        () => section("fine", "whole"),
      ],
      { port: 0 },
    )
    servers.push(status)
    const r = await reportOf(status.url)
    expect(r.sections.map((s) => [s.kind, s.name])).toEqual([
      ["unreadable", "source 0"],
      ["mine", "partial"],
      ["fine", "whole"],
    ])
    expect(r.sections[0]!.warnings[0]).toContain("it gave undefined, not a section")
    expect(r.sections[1]).toMatchObject({ facts: [["jobs", 3]], tables: [], warnings: [] })
    const cli = await run([process.execPath, CLI, "status", status.url, "--once"])
    expect(cli.code).toBe(0)
    expect(cli.stdout).toContain("== mine partial")
    expect(cli.stdout).toContain("jobs: 3")
    expect(cli.stdout).toContain("== fine whole")
  })

  test("`slotbus status` draws a server's malformed sections as far as they go (a server of another version)", async () => {
    const report = {
      title: "t",
      host: "h",
      pid: 1,
      uptimeMs: 1000,
      at: "now",
      sections: [null, { kind: "k", name: "n", tables: [{ title: "rows", rows: "no" }], warnings: "no" }, 7],
    }
    const other = Bun.serve({ port: 0, fetch: () => Response.json(report) })
    try {
      const cli = await run([process.execPath, CLI, "status", `http://127.0.0.1:${other.port}`, "--once"])
      expect(cli.code).toBe(0)
      expect(cli.stdout).toContain("== k n")
      expect(cli.stdout).toContain("ROWS (0)")
      expect(cli.stdout).toContain("== unreadable section 2")
    } finally {
      other.stop(true)
    }
  })

  test("nothing at the target: exit 2 with what to check; a hub's URL still gets the hub's view", async () => {
    const r = await run([process.execPath, CLI, "status", "unix:/nonexistent/status.sock", "--once"])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("nothing answers at unix:/nonexistent/status.sock")
    const other = Bun.serve({ port: 0, fetch: () => new Response("no", { status: 404 }) })
    try {
      const hub = await run([process.execPath, CLI, "status", `http://127.0.0.1:${other.port}`, "--once"])
      expect(hub.code).toBe(2)
      expect(hub.stderr).toContain("is not a slotbus hub") // handed to the hub's own view, which says what it is not
    } finally {
      await other.stop(true)
    }
  })
})

describe("a hostile status server", () => {
  /** A report in which every value `slotbus status` prints carries terminal escapes, numbers included. */
  const e = ESCAPES
  const hostileReport = {
    title: `title${e}`,
    host: `host${e}`,
    pid: `1${e}`,
    uptimeMs: `2${e}`,
    at: `at${e}`,
    sections: [
      {
        kind: `kind${e}`,
        name: `name${e}`,
        warnings: [`warning${e}`],
        facts: [[`fact${e}`, `value${e}`]],
        tables: [{ title: `table${e}`, columns: [`column${e}`, "n"], rows: [[`cell${e}`, 8]] }],
        remote: {
          transport: `nats${e}`,
          facts: [[`remote${e}`, 3]],
          tables: [{ title: `hosts${e}`, columns: [`host${e}`], rows: [[`other${e}`]] }],
        },
      },
    ],
  }

  test("every value of its report reaches the terminal as text, never as an escape", async () => {
    const server = Bun.serve({ port: 0, fetch: () => Response.json(hostileReport) })
    try {
      const r = await statusCli([`http://127.0.0.1:${server.port}`, "--once"])
      expect([r.code, r.stderr]).toEqual([0, ""])
      const out = new TextDecoder().decode(r.stdout)
      expect(out).toContain("title?[2J?[31m?]0;pwned??2J??") // the title line, its pid and time included
      expect(out).toContain(", pid NaN, up NaN s, at?[2J") // numbers only if they are numbers
      expect(controlsIn(r.stdout)).toEqual([])
    } finally {
      await server.stop(true)
    }
  })

  // Over a unix socket the view of /status.json has nothing to fall back on (an http URL goes on to the HTTP hub's
  // view, which test/http/status-cli.test.ts reads the same way).
  test.each([
    ["a body that never ends", () => flood()],
    ["a 3 GiB body", () => flood(3 * 1024 ** 3)],
    ["a body that trickles forever", () => trickle()],
  ])(
    "%s at /status.json: one line on stderr, exit 2, the memory bounded",
    async (_, body) => {
      const sock = join(tempDir(), "status.sock")
      const server = Bun.serve({ unix: sock, fetch: () => new Response(body()) })
      try {
        const r = await statusCli([`unix:${sock}`, "--once"])
        console.log(
          `against ${_}: exit ${r.code}, peak RSS ${(r.maxRssBytes / 1024 ** 2).toFixed(0)} MiB, ${r.stderr.trim()}`,
        )
        expect(r.code).toBe(2)
        expect(r.stderr).toMatch(
          /^slotbus status: unix:\S+ is not a slotbus status server: GET \/status\.json [^\n]+\n$/,
        )
        expect(r.stdout.length).toBe(0)
        expect(r.maxRssBytes).toBeLessThan(256 * 1024 ** 2)
      } finally {
        await server.stop(true)
      }
    },
    30_000,
  )
})

describe.skipIf(natsSkip !== null)("across hosts", () => {
  test("the bus's NATS side: the connection, a worker of another host by its host label, the bridge's holder, the durable stream's last sequence, cluster claims", async () => {
    const { app, url, name } = await startApp("port:0", nats.url)
    const remote = spawn([process.execPath, join(FIXTURES, "nats/nats-worker.ts"), name, nats.url, "--host=host-b"])
    nats.cleanup.push(async () => void (await remote.kill()))
    await remote.waitLine(/^ready/)
    await until(
      async () => sectionOf(await reportOf(url), "bus").remote!.tables[0]!.rows.length === 1,
      "host-b shows",
      10_000,
    )

    const r = await reportOf(url)
    const bus = sectionOf(r, "bus")
    expect(bus.remote!.facts).toContainEqual(["connected", true])
    expect(column(table(bus.remote!, "workers on other hosts"), "host")).toEqual(["host-b"])
    expect(column(table(bus, "workers"), "via").sort()).toEqual(["nats", "shm"])
    const topic = sectionOf(r, "topic")
    expect(topic.remote!.facts).toContainEqual(["this host's bridge", `pid ${app.pid} (this process)`])
    expect(column(table(topic.remote!, "durable stream"), "last seq")).toEqual([2000])
    const cluster = sectionOf(r, "contest", `${name}-cluster`)
    expect(column(table(cluster.remote!, "claims held in the cluster"), "label")).toEqual(["invoice-run"])

    const cli = await run([process.execPath, CLI, "status", url, "--once"])
    expect(cli.stdout).toContain("-- across hosts (NATS)")
    expect(cli.stdout).toMatch(/host-b +1/)
  }, 60_000)

  const chromium = toolSkipReason("chromium")
  sayWhySkipped("the status page in Chromium", chromium)
  test.skipIf(chromium !== null)(
    "in Chromium: every section and its NATS side as text, a hostile host label included, updated live",
    async () => {
      const { url, name } = await startApp("port:0", nats.url)
      const remote = spawn([process.execPath, join(FIXTURES, "nats/nats-worker.ts"), name, nats.url, "--host=host-b"])
      nats.cleanup.push(async () => void (await remote.kill()))
      const evil = "<img src=x onerror=document.title='pwned'>"
      const hostile = await hostileNatsWorker(nats.url, name, () => {}, "evil", evil)
      nats.cleanup.push(() => hostile.stop())
      const browser = await Browser.launch()
      const shots = tempDir()
      try {
        const page = await browser.newPage()
        await page.navigate(url)
        const text = "document.body.innerText"
        const shown = await page.waitFor<string>(
          text,
          (t) => t.includes("host-b") && t.includes(evil) && t.includes("invoice-run") && t.includes("SLOTBUS_EV_"),
          "the NATS side shows, the hostile host label as text",
        )
        expect(shown).toContain(name)
        expect(shown).toContain("ACROSS HOSTS (NATS)")
        expect(shown).toContain("nightly-report")
        expect(await page.evaluate("document.querySelectorAll('img').length")).toBe(0)
        expect(await page.evaluate("document.title")).toBe(`slotbus status: status-app ${name}`)
        expect(await page.evaluate("document.getElementById('pill').textContent")).toBe("live")
        // live: kill -9 of the pool's worker shows as its restart, without a reload
        const pools = "[...document.querySelectorAll('h3')].find((h) => h.textContent.startsWith('worker pools'))"
        const restarts = `${pools}?.nextElementSibling.querySelector('tr:nth-child(2) td:nth-child(4)')?.textContent`
        expect(await page.evaluate(restarts)).toBe("0")
        const workers = table(sectionOf(await reportOf(url), "bus"), "workers")
        const local = workers.rows.find((r) => r[workers.columns.indexOf("via")] === "shm")!
        process.kill(local[0] as number, "SIGKILL")
        await page.waitFor(restarts, (v) => v === "1", "the restart shows", 15_000)
        const png = await page.screenshot()
        expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
        writeFileSync(join(shots, "status.png"), png)
        const keep = process.env.SLOTBUS_STATUS_SCREENSHOT
        if (keep) copyFileSync(join(shots, "status.png"), keep)
        await page.close()
      } finally {
        const dataDir = browser.dataDir
        await browser.close()
        expect(Browser.processesOf(dataDir)).toEqual([])
      }
    },
    60_000,
  )
})
