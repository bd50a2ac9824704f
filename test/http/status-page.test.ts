// The hub's status page (serveStatus's page, drawing the hub's section) in a real browser: headless Chromium driven
// over the DevTools protocol (an open EventSource never lets --virtual-time-budget finish), against a hub with real
// worker processes, at GET /health/status and beside a bus in serveStatus([hub, bus]). Skips where chromium is
// missing (apt-get install -y chromium), unless SLOTBUS_REQUIRE_TOOLS=1.
// SLOTBUS_STATUS_SCREENSHOT=<path> keeps a copy of the page's screenshot there, to look at it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { createHub, hubWorker } from "../../src/http/index.ts"
import { SlotBus } from "../../src/index.ts"
import { serveStatus } from "../../src/status/index.ts"
import { Browser } from "../support/browser.ts"
import { busName, spawnWorker, stopAll } from "../support/helpers.ts"
import { HOSTILE_ROUTES, startWorker } from "../support/http/http.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

/** What the page shows for a string with control characters in it. */
const visible = (s: string) => s.replace(/\p{Cc}/gu, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)

const skip = toolSkipReason("chromium")
sayWhySkipped("the status page in Chromium", skip)

describe.skipIf(skip !== null)("the status page in Chromium", () => {
  let browser: Browser | undefined

  beforeAll(async () => {
    browser = await Browser.launch()
  })
  afterAll(async () => {
    const dataDir = browser?.dataDir
    await browser?.close()
    await stopAll()
    if (dataDir) {
      expect(Browser.processesOf(dataDir)).toEqual([]) // the browser and every helper process it started
      expect(existsSync(dataDir)).toBe(false)
    }
  })

  const text = "document.body.innerText"
  /** An expression: the card of the section of `kind` (a `section.sb-card`, its h2 naming the kind). */
  const card = (kind: string) =>
    `[...document.querySelectorAll("section.sb-card")].find((c) => c.querySelector("h2 .kind")?.textContent === ${JSON.stringify(kind)})`
  /** An expression: in that card's table `title`, the cell of column `column` in the row whose `key` column is `value`. */
  const cell = (kind: string, title: string, key: string, value: string, column: string) => `(() => {
    const h = [...(${card(kind)}?.querySelectorAll("h3") ?? [])].find((x) => x.textContent.startsWith(${JSON.stringify(`${title} (`)}))
    const [head, ...rows] = [...(h?.nextElementSibling?.querySelectorAll("tr") ?? [])].map((tr) => [...tr.children].map((c) => c.textContent))
    const row = rows.find((r) => r[head.indexOf(${JSON.stringify(key)})] === ${JSON.stringify(value)})
    return row ? row[head.indexOf(${JSON.stringify(column)})] : null
  })()`
  const fact = (kind: string, label: string) =>
    `[...(${card(kind)}?.querySelectorAll("dt") ?? [])].find((d) => d.textContent === ${JSON.stringify(label)})?.nextElementSibling.textContent ?? null`
  const served = (pid: number) => cell("hub", "workers", "pid", String(pid), "served")

  test("it shows each worker's pid and routes as they arrive, and its counters move as requests are served", async () => {
    await using hub = await createHub({ port: 0, quiet: true })
    const w = await startWorker(hub.url, "shop", ["--instance=shop-1"])
    const shots = mkdtempSync(join(tmpdir(), "slotbus-status-shot-"))
    const page = await browser!.newPage()
    try {
      await page.navigate(`${hub.url}/health/status`)
      const shown = await page.waitFor<string>(text, (t) => t.includes(String(w.pid)), "the worker's pid shows")
      expect(shown).toContain("GET /items/:id")
      expect(shown).toContain(hub.eventsTopic)
      expect(await page.evaluate(served(w.pid))).toBe("0")
      expect(await page.evaluate("document.getElementById('pill').textContent")).toBe("live")
      expect(await page.evaluate("document.title")).toBe(`slotbus status: slotbus hub ${hub.url}`)

      for (let i = 0; i < 7; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
      expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
      await page.waitFor(served(w.pid), (v) => v === "8", "the worker's served count moves to 8")
      await page.waitFor(fact("hub", "requests"), (v) => v === "8", "the hub's requests move to 8")
      await page.waitFor<string>(text, (t) => t.includes(`${w.pid} (shop)`), "the worker shows as a publisher")

      expect(hub.health().counters.notFound).toBe(0) // it asked for nothing but its page and stream (no favicon)

      const png = await page.screenshot()
      expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
      const file = join(shots, "status-page.png")
      writeFileSync(file, png)
      const keep = process.env.SLOTBUS_STATUS_SCREENSHOT
      if (keep) copyFileSync(file, keep)
    } finally {
      await page.close()
      rmSync(shots, { recursive: true, force: true })
      await w.kill()
    }
  })

  test("a hostile worker's routes and a hostile topic filter show as text: no element is made, no script runs", async () => {
    await using hub = await createHub({ port: 0, quiet: true })
    // Names cannot carry markup at all: the SDK and the hub refuse them.
    expect(() => hubWorker(hub.url, "<b>x</b>")).toThrow(TypeError)
    const refused = await fetch(`${hub.url}/_slotbus/register`, {
      method: "POST",
      headers: { authorization: `Bearer ${hub.token}` },
      body: JSON.stringify({ name: "<img src=x onerror=alert(1)>", instance: "1", pid: 1, routes: [] }),
    })
    expect(refused.status).toBe(400)

    const evil = await startWorker(hub.url, "evil", ["--routes=hostile"])
    const here = await Topic.open(hub.eventsTopic)
    const sub = here.subscribe({ type: "<b id=bold>x</b><img src=x onerror=window.pwned=2>" })
    const page = await browser!.newPage()
    try {
      await page.navigate(`${hub.url}/health/status`)
      const shown = await page.waitFor<string>(text, (t) => t.includes(String(evil.pid)), "the worker's pid shows")
      expect(shown).toContain("GET /<img/src=x/onerror=document.title='pwned'>")
      expect(shown).toContain("GET /</script><script>window.pwned=1</script>")
      expect(shown).toContain("GET /&lt;amp&gt;")
      expect(shown).toContain(String.raw`GET /\x1b[2J\x1b[31mred\x07`) // control characters made visible
      expect(shown).toContain("<b id=bold>x</b><img src=x onerror=window.pwned=2>")
      for (const route of HOSTILE_ROUTES) expect(shown).toContain(`GET ${visible(route)}`)
      expect(
        await page.evaluate(
          "[document.querySelectorAll('img, b, script').length, document.title, typeof window.pwned]",
        ),
      ).toEqual([1, `slotbus status: slotbus hub ${hub.url}`, "undefined"]) // the one script is the page's own
    } finally {
      await page.close()
      sub.close()
      here.close()
      await evil.kill()
    }
  })

  test("serveStatus([hub, bus]): the hub's card beside the bus's, both live", async () => {
    await using hub = await createHub({ port: 0, quiet: true })
    await using bus = await SlotBus.listen(busName("hub-page"))
    const w = await startWorker(hub.url, "shop")
    const echo = await spawnWorker(bus.name)
    const status = await serveStatus([hub, bus], { port: 0, title: "hub and bus" })
    const page = await browser!.newPage()
    try {
      await page.navigate(status.url)
      await page.waitFor(served(w.pid), (v) => v === "0", "the hub's worker shows")
      await page.waitFor(
        cell("bus", "workers", "pid", String(echo.pid), "requests"),
        (v) => v === "0",
        "the bus's worker shows",
      )
      expect(await page.evaluate(`${card("hub")}.querySelector("h2").textContent`)).toBe(`hub${hub.url}`)
      expect(await page.evaluate(`${card("bus")}.querySelector("h2").textContent`)).toBe(`bus${bus.name}`)
      expect(await page.evaluate(cell("hub", "routes", "route", "GET /items/:id", "owner"))).toBe("shop")
      for (let i = 0; i < 3; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
      await page.waitFor(served(w.pid), (v) => v === "3", "the hub's served count moves to 3")
      await page.waitFor(fact("hub", "requests"), (v) => v === "3", "the hub's requests move to 3")
    } finally {
      await page.close()
      await status.stop()
      await echo.kill()
      await w.kill()
    }
  })
})
