// The status page in a real browser: headless Chromium driven over the DevTools protocol (an open EventSource
// never lets --virtual-time-budget finish), against a hub with real worker processes. Skips where chromium is
// missing (apt-get install -y chromium), unless SLOTBUS_REQUIRE_TOOLS=1.
// SLOTBUS_STATUS_SCREENSHOT=<path> keeps a copy of the page's screenshot there, to look at it.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { createHub, hubWorker } from "../../src/http/index.ts"
import { Browser } from "../support/browser.ts"
import { stopAll } from "../support/helpers.ts"
import { HOSTILE_ROUTES, startWorker } from "../support/http.ts"
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
  const served = (pid: number) => `document.querySelector('tr[data-pid="${pid}"] td.served')?.textContent ?? null`
  const tile = (name: string) => `document.querySelector('[data-counter="${name}"]')?.textContent ?? null`

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
      expect(shown).toContain("The hub holds no lease contests")
      expect(await page.evaluate(served(w.pid))).toBe("0")
      expect(await page.evaluate("document.getElementById('live').textContent")).toBe("live")

      for (let i = 0; i < 7; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
      expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
      await page.waitFor(served(w.pid), (v) => v === "8", "the worker's served count moves to 8")
      await page.waitFor(tile("requests"), (v) => v === "8", "the requests tile moves to 8")
      await page.waitFor<string>(text, (t) => t.includes(`${w.pid} (shop)`), "the worker shows as a publisher")

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
      ).toEqual([1, "slotbus hub", "undefined"]) // the one script is the page's own
    } finally {
      await page.close()
      sub.close()
      here.close()
      await evil.kill()
    }
  })
})
