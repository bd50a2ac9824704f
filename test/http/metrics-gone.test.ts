// The hub's GET /metrics as worker names come and go: the `bus` label keeps the live names and the last few gone,
// the others fold into one series, and no counter goes back. Workers are test/support/http/http-worker.ts processes.
import { afterAll, expect, test } from "bun:test"
import { createHub } from "../../src/http/index.ts"
import { GONE_BUS, KEEP_GONE_NAMES } from "../../src/http/hub/metrics.ts"
import { stopAll, until } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

afterAll(stopAll)

/** Every `bus` label value of slotbus_requests_total, with its count. */
async function requestsByBus(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const out = new Map<string, number>()
  for (const m of text.matchAll(/^slotbus_requests_total\{bus="([^"]*)"\} (\S+)$/gm)) out.set(m[1]!, Number(m[2]))
  return out
}
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)

test("names that left fold into one bus label past the last few, and no request count goes back", async () => {
  await using hub = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 0 }) // each scrape shows the moment
  const live = await startWorker(hub.url, "stays", ["--routes=hostile"]) // routes of its own: no conflict
  const names = Array.from({ length: KEEP_GONE_NAMES + 3 }, (_, i) => `left${i}`)
  const totals: number[] = []
  try {
    for (const [i, name] of names.entries()) {
      const w = await startWorker(hub.url, name)
      try {
        expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
      } finally {
        // the even ones leave on purpose (deregister), the odd ones die and are evicted
        if (i % 2 === 0) await w.stop()
        else await w.kill("SIGKILL")
      }
      await until(() => !hub.health().workers.some((x) => x.name === name), `${name} to be gone`)
      totals.push(sum(await requestsByBus(hub.url)))
    }
    const byBus = await requestsByBus(hub.url)
    expect([...byBus.keys()].sort()).toEqual(["stays", GONE_BUS, ...names.slice(-KEEP_GONE_NAMES)].sort())
    expect(totals).toEqual([...totals].sort((a, b) => a - b))
    expect(byBus.get(GONE_BUS)).toBeGreaterThanOrEqual(names.length - KEEP_GONE_NAMES)
  } finally {
    await live.kill()
  }
}, 120_000)

/** Every `bus` label value of `family`, with its count. */
async function countsOf(url: string, family: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const out = new Map<string, number>()
  for (const m of text.matchAll(new RegExp(`^${family}\\{bus="([^"]*)"\\} (\\S+)$`, "gm"))) out.set(m[1]!, Number(m[2]))
  return out
}

test("requests a worker finishes as it leaves on purpose are counted: answered is answered", async () => {
  await using hub = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 0 })
  const w = await startWorker(hub.url, "shop")
  const slow = Array.from({ length: 5 }, () => fetch(`${hub.url}/sleep/400`).then((r) => r.status))
  await until(() => hub.health().workers.some((x) => x.inFlight === 5), "5 requests at the worker")
  const stopping = w.stop() // SIGTERM: it deregisters, its requests run to the end
  expect(await Promise.all(slow)).toEqual([200, 200, 200, 200, 200])
  await stopping
  await until(() => hub.health().workers.length === 0, "the worker gone")
  // before: the counts were taken as it began to leave, so these 5 were never counted
  expect((await countsOf(hub.url, "slotbus_requests_total")).get("shop")).toBe(5)
  expect((await countsOf(hub.url, "slotbus_responses_total")).get("shop")).toBe(5)
}, 60_000)
