// The hub's GET /metrics labels a request by the route pattern its worker declared, never by its path: a hub
// with a real http-worker process (test/support/http/http-worker.ts) answering 1,000 distinct paths.
import { afterAll, expect, test } from "bun:test"
import { createHub } from "../../src/http/index.ts"
import { stopAll } from "../support/helpers.ts"
import { startWorker } from "../support/http/http.ts"

afterAll(stopAll)

test("the hub labels each request's duration by its route's pattern: 1,000 distinct paths make one series", async () => {
  await using hub = await createHub({ port: 0, quiet: true })
  const worker = await startWorker(hub.url, "shop")
  try {
    for (let i = 0; i < 1000; i += 50) {
      const batch = await Promise.all(Array.from({ length: 50 }, (_, k) => fetch(`${hub.url}/items/${i + k}?v=${k}`)))
      for (const res of batch) expect(res.status).toBe(200)
    }
    const text = await (await fetch(`${hub.url}/metrics`)).text()
    const routes = [
      ...text.matchAll(/^slotbus_route_request_duration_seconds_count\{[^}]*route="([^"]*)"[^}]*\} (\d+)$/gm),
    ].map((m) => [m[1], Number(m[2])])
    expect(routes).toEqual([["GET /items/:id", 1000]])
    expect(text).not.toMatch(/\/items\/\d/)
    // the hub process's own series and its worker's, by the worker's index
    expect(text).toMatch(/^process_resident_memory_bytes \d+$/m)
    expect(text).toMatch(/^process_resident_memory_bytes\{bus="shop",worker="0"\} \d+$/m)
  } finally {
    await worker.kill()
  }
}, 90_000)
