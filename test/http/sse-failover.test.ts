// A browser's EventSource across a hub's kill -9, in headless Chromium (driven over the DevTools protocol: an
// open EventSource never lets --virtual-time-budget finish). The hub's `retry: 500` makes the browser try again
// half a second after it was cut off; the hub that takes the address over (a supervisor's restart, or a standby)
// replays from its Last-Event-ID what the worker emitted meanwhile. Skips where chromium is missing
// (apt-get install -y chromium), unless SLOTBUS_REQUIRE_TOOLS=1.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Browser } from "../support/browser.ts"
import { FIXTURES, spawn, until, type Child } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const skip = toolSkipReason("chromium")
sayWhySkipped("EventSource failover in Chromium", skip)

const dir = mkdtempSync(join(tmpdir(), "slotbus-sse-failover-"))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(skip !== null)("a browser's EventSource across a hub's kill -9", () => {
  test("resumes on the hub that takes the address over, with every event once and in order", async () => {
    const port = 20000 + ((process.pid * 13) % 20000)
    const url = `http://127.0.0.1:${port}`
    const hub = async (): Promise<Child> => {
      const h = spawn([
        process.execPath,
        join(FIXTURES, "http/http-hub.ts"),
        `--port=${port}`,
        `--token-file=${dir}/hub.token`,
      ])
      await h.waitLine(/^slotbus hub listening on /, 20_000)
      return h
    }
    const emit = async (n: number) => {
      const r = await fetch(`${url}/emit/tick`, { method: "POST", body: JSON.stringify({ n }) })
      expect(r.status).toBe(200)
    }
    const children: Child[] = []
    const browser = await Browser.launch()
    try {
      const a = await hub()
      children.push(a)
      const worker = await startWorker(url, "shop", ["--instance=shop-1", "--burst=5", `--token-file=${dir}/hub.token`])
      children.push(worker)
      const page = await browser.newPage()
      await page.navigate(`${url}/health`) // any page of the hub's origin
      await page.evaluate(`(() => {
        window.seen = []
        window.opened = 0
        const es = new EventSource("/events")
        es.onopen = () => window.opened++
        const note = (e) => window.seen.push({ type: e.type, id: Number(e.lastEventId), data: e.data, at: Date.now() })
        es.addEventListener("tick", note)
        es.addEventListener("burst", note)
        return true
      })()`)
      await page.waitFor<number>("window.opened", (n) => n === 1, "the EventSource is open")
      for (let n = 1; n <= 3; n++) await emit(n)
      await page.waitFor<number>("window.seen.length", (n) => n === 3, "3 ticks through the first hub")

      const killedAt = Date.now()
      await a.kill("SIGKILL")
      worker.signal("SIGUSR2") // 5 events while no hub runs, straight into the hub's topic
      await worker.waitLine(/^burst 5 \d+$/)
      children.push(await hub()) // the next hub on the same address
      const seen = await page.waitFor<{ type: string; id: number; data: string; at: number }[]>(
        "window.seen",
        (s) => s.length >= 8,
        "the 5 events emitted while no hub ran, through the next hub",
        45_000, // a reconnection every 500 ms (sseRetryMs) once the next hub listens: seconds on a loaded machine
      )
      console.log(
        `EventSource failover: the first event through the next hub reached the page ${seen[3]!.at - killedAt} ms after the kill -9 (the next hub started after the kill)`,
      )
      // the worker rejoins the new hub by itself, and what it emits through it comes after. Until then the new hub
      // answers 404 (no worker has told it the route yet) or 503 (no worker for it): nothing reached a worker, so
      // the POST is sent again until it is taken, once
      await until(
        async () =>
          (await fetch(`${url}/emit/tick`, { method: "POST", body: JSON.stringify({ n: 4 }) })).status === 200,
        "the worker rejoined and emitted tick 4",
        15_000,
        50,
      )
      const all = await page.waitFor<{ type: string; id: number; data: string }[]>(
        "window.seen",
        (s) => s.length >= 9,
        "the tick emitted through the next hub",
      )
      expect(all.map((e) => `${e.type} ${e.data}`)).toEqual([
        'tick {"n":1}',
        'tick {"n":2}',
        'tick {"n":3}',
        ...[0, 1, 2, 3, 4].map((seq) => `burst {"seq":${seq}}`),
        'tick {"n":4}',
      ])
      for (let i = 1; i < all.length; i++) expect(all[i]!.id).toBeGreaterThan(all[i - 1]!.id)
      expect(await page.evaluate<number>("window.opened")).toBe(2) // one reconnection, to the next hub
      await page.close()
    } finally {
      await browser.close()
      await Promise.all(children.map((c) => c.kill()))
    }
    expect(Browser.processesOf(browser.dataDir)).toEqual([])
  }, 120_000)
})
