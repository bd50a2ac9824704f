// GET /metrics costs its server one computation per interval however often it is scraped: metricsHandler,
// serveStatus and the HTTP hub compute the text once for the scrapes that come while it is computed and for
// maxAgeMs after (default 1 s), and a computation that fails is not kept. Sources here count their calls, so the
// tests count computations, not time.
import { afterEach, expect, test } from "bun:test"
import { createHub } from "../../src/http/index.ts"
import {
  METRICS,
  metricsHandler,
  type MetricFamily,
  STATUS,
  section,
  serveStatus,
  type StatusServer,
} from "../../src/status/index.ts"

const servers: StatusServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop()
})

/** A source whose one counter is how often its families were read: each computation of the text reads them once. */
function counted(name: string, broken = 0) {
  const source = {
    reads: 0,
    [METRICS](): MetricFamily[] {
      source.reads++
      // a family without samples makes the text's computation throw, as a broken source of one's own would
      if (source.reads <= broken)
        return [{ name, type: "counter", help: "broken", samples: undefined as unknown as [] }]
      return [{ name, type: "counter", help: "reads of this source", samples: [{ labels: {}, value: source.reads }] }]
    },
    [STATUS]: () => section("counted", name),
  }
  return source
}

const value = (text: string, name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1])
const get = () => new Request("http://app/metrics")
const scrapeBy = async (handler: (req: Request) => Promise<Response>) => (await handler(get())).text()

test("metricsHandler: 20 scrapes at once are one computation, and they all get its text", async () => {
  const source = counted("test_reads_total")
  const handler = metricsHandler([source], { maxAgeMs: 60_000 })
  const texts = await Promise.all(Array.from({ length: 20 }, () => scrapeBy(handler)))
  expect(source.reads).toBe(1)
  expect(new Set(texts).size).toBe(1)
  expect(value(texts[0]!, "test_reads_total")).toBe(1)
  expect(value(await scrapeBy(handler), "test_reads_total")).toBe(1) // within maxAgeMs: the same text
  expect(source.reads).toBe(1)
})

test("metricsHandler: a scrape after maxAgeMs computes again and shows the values of now", async () => {
  const source = counted("test_reads_total")
  const handler = metricsHandler([source], { maxAgeMs: 20 })
  expect(value(await scrapeBy(handler), "test_reads_total")).toBe(1)
  await Bun.sleep(40)
  expect(value(await scrapeBy(handler), "test_reads_total")).toBe(2)
  const every = metricsHandler([source], { maxAgeMs: 0 }) // 0: only scrapes during a computation share it
  expect(value(await scrapeBy(every), "test_reads_total")).toBe(3)
  expect(value(await scrapeBy(every), "test_reads_total")).toBe(4)
  expect(source.reads).toBe(4)
})

test("metricsHandler: a computation that fails fails its scrapes and is not kept; the next scrape computes again", async () => {
  const source = counted("test_reads_total", 1)
  const handler = metricsHandler([source], { maxAgeMs: 60_000 })
  const failed = await Promise.allSettled(Array.from({ length: 5 }, () => handler(get())))
  expect(failed.map((r) => r.status)).toEqual(Array(5).fill("rejected"))
  expect(source.reads).toBe(1)
  expect(value(await scrapeBy(handler), "test_reads_total")).toBe(2)
  expect(value(await scrapeBy(handler), "test_reads_total")).toBe(2) // that one is kept
})

test("metricsHandler: each handler keeps its own text: two source lists never share one", async () => {
  const a = counted("test_a_total")
  const b = counted("test_b_total")
  const [ta, tb] = await Promise.all([scrapeBy(metricsHandler([a])), scrapeBy(metricsHandler([b]))])
  expect([value(ta, "test_a_total"), value(ta, "test_b_total")]).toEqual([1, Number.NaN])
  expect([value(tb, "test_b_total"), value(tb, "test_a_total")]).toEqual([1, Number.NaN])
  const head = await metricsHandler([a])(new Request("http://app/metrics", { method: "HEAD" }))
  expect([head.status, await head.text(), a.reads]).toEqual([200, "", 1]) // HEAD computes nothing
})

test.each([
  [{ maxAgeMs: -1 }, RangeError, "metricsHandler: maxAgeMs must be an integer in 0..2147483647, got -1"],
  [{ maxAgeMs: "1s" }, TypeError, 'metricsHandler: maxAgeMs must be an integer in 0..2147483647, got "1s"'],
  [{ maxAge: 1000 }, TypeError, "maxAge"],
])("metricsHandler(sources, %j) is refused", (options, type, message) => {
  const make = () => metricsHandler([counted("test_reads_total")], options as never)
  expect(make).toThrow(type)
  expect(make).toThrow(message)
})

test("serveStatus: concurrent scrapes of GET /metrics are one computation; metricsMaxAgeMs 0 computes each", async () => {
  const source = counted("test_reads_total")
  const shared = await serveStatus([source], { port: 0 })
  servers.push(shared)
  const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text()
  const texts = await Promise.all(Array.from({ length: 8 }, () => scrape(shared.url)))
  expect(source.reads).toBe(1)
  expect(texts.map((t) => value(t, "test_reads_total"))).toEqual(Array(8).fill(1))

  const other = counted("test_reads_total")
  const every = await serveStatus([other], { port: 0, metricsMaxAgeMs: 0 })
  servers.push(every)
  expect(value(await scrape(every.url), "test_reads_total")).toBe(1)
  expect(value(await scrape(every.url), "test_reads_total")).toBe(2)
})

test("the HTTP hub: its GET /metrics text answers for metricsMaxAgeMs, then shows what it counted since", async () => {
  await using kept = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 60_000 })
  await using fresh = await createHub({ port: 0, quiet: true, metricsMaxAgeMs: 0 })
  const notFound = async (url: string) =>
    value(await (await fetch(`${url}/metrics`)).text(), "slotbus_hub_not_found_total")
  for (const hub of [kept, fresh]) {
    expect(await notFound(hub.url)).toBe(0)
    expect((await fetch(`${hub.url}/nothing-here`)).status).toBe(404)
  }
  expect(await notFound(kept.url)).toBe(0) // the text of a moment ago
  expect(await notFound(fresh.url)).toBe(1)
  const texts = await Promise.all(Array.from({ length: 8 }, async () => (await fetch(`${kept.url}/metrics`)).text()))
  expect(new Set(texts).size).toBe(1)
})
