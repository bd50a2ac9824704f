// reportMetrics as an app with OpenTelemetry metrics uses it: the real SDK (@opentelemetry/sdk-metrics) with a
// reader collecting in memory, a SlotBus with a real worker process. And without the package: an app that does not
// ask loads nothing of it, and one that asks is told what to add.
import { afterAll, expect, test } from "bun:test"
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { metrics } from "@opentelemetry/api"
import {
  type CollectionResult,
  DataPointType,
  type Histogram,
  MeterProvider,
  MetricReader,
} from "@opentelemetry/sdk-metrics"
import { instrument, SlotBus } from "../../src/index.ts"
import { reportMetrics } from "../../src/status/index.ts"
import { DURATION_BUCKETS } from "../../src/kit/index.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, REPO, run, spawnWorker, stopAll } from "../support/helpers.ts"

class MemoryReader extends MetricReader {
  protected async onShutdown() {}
  protected async onForceFlush() {}
}

const dirs: string[] = []
afterAll(async () => {
  await stopAll()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

function metric(r: CollectionResult, name: string) {
  const all = r.resourceMetrics.scopeMetrics.flatMap((s) => s.metrics)
  const m = all.find((x) => x.descriptor.name === name)
  if (!m) throw new Error(`no ${name} among ${all.map((x) => x.descriptor.name).join(", ")}`)
  return m
}

test("an instrument()ed front's requests reach the SDK as http.server.request.duration, in seconds, with the HTTP attributes", async () => {
  const reader = new MemoryReader()
  const provider = new MeterProvider({ readers: [reader] })
  const report = await reportMetrics([], { meter: provider.getMeter("slotbus") })
  const server = Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    routes: instrument({
      "/items/:id": () => new Response("item"),
      "/gone": () => new Response("no", { status: 410 }),
    }),
  })
  try {
    for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${server.port}/items/${i}`)).text()
    await (await fetch(`http://127.0.0.1:${server.port}/gone`)).text()
    const m = metric(await reader.collect(), "http.server.request.duration")
    expect(m.descriptor.unit).toBe("s")
    expect(m.dataPointType).toBe(DataPointType.HISTOGRAM)
    const points = m.dataPoints.map((p) => [p.attributes, (p.value as Histogram).count])
    expect(points).toEqual([
      [{ "http.request.method": "GET", "http.route": "/items/:id", "http.response.status_code": 200 }, 3],
      [{ "http.request.method": "GET", "http.route": "/gone", "http.response.status_code": 410 }, 1],
    ])
  } finally {
    report.stop()
    await server.stop(true)
    await provider.shutdown()
  }
})

test("a bus's counters, gauges and durations reach the OpenTelemetry SDK under GET /metrics's names and labels", async () => {
  const reader = new MemoryReader()
  const provider = new MeterProvider({ readers: [reader] })
  const name = busName("otel")
  const bus = await SlotBus.listen(name)
  const worker = await spawnWorker(name)
  const report = await reportMetrics([bus], { meter: provider.getMeter("slotbus") })
  try {
    for (let i = 0; i < 20; i++) await bus.request({ path: "/x", body: "y" })
    await bus.request({ path: "/fail" }).catch(() => {})
    const r = await reader.collect()
    const requests = metric(r, "slotbus_requests")
    expect(requests.dataPoints.map((p) => [p.attributes, p.value])).toEqual([[{ bus: name }, 21]])
    const errors = metric(r, "slotbus_request_errors")
    expect(errors.dataPoints.map((p) => [p.attributes, p.value])).toEqual([
      [{ bus: name, kind: "RemoteError" }, 1],
      ...["WorkerGoneError", "TimeoutError", "http5xx"].map((kind) => [{ bus: name, kind }, 0]), // there from the start
    ])
    expect(metric(r, "slotbus_workers").dataPoints.map((p) => [p.attributes, p.value])).toEqual([
      [{ bus: name, transport: "shm" }, 1],
    ])
    const duration = metric(r, "slotbus_request_duration")
    expect(duration.descriptor.unit).toBe("s")
    expect(duration.dataPointType).toBe(DataPointType.HISTOGRAM)
    const h = duration.dataPoints[0]!.value as Histogram
    expect(duration.dataPoints[0]!.attributes).toEqual({ bus: name })
    expect(h.count).toBe(20)
    expect(h.buckets.boundaries).toEqual([...DURATION_BUCKETS])
    const perWorker = metric(r, "slotbus_worker_request_duration")
    expect(perWorker.dataPoints.map((p) => [p.attributes, (p.value as Histogram).count])).toEqual([
      [{ bus: name, worker: "0" }, 20],
    ])
    expect((metric(r, "slotbus_request_queue_wait").dataPoints[0]!.value as Histogram).count).toBe(21)

    report.stop() // nothing more is recorded or observed
    await bus.request({ path: "/x" })
    const after = await reader.collect()
    const count = after.resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((x) => x.descriptor.name === "slotbus_request_duration")
    expect((count?.dataPoints[0]?.value as Histogram | undefined)?.count ?? 20).toBe(20)
  } finally {
    report.stop()
    await worker.kill()
    await bus.close({ drain: false })
    await provider.shutdown()
  }
})

test("without a meter it reports through the app's global meter provider", async () => {
  const reader = new MemoryReader()
  const provider = new MeterProvider({ readers: [reader] })
  metrics.setGlobalMeterProvider(provider)
  const name = busName("otel")
  const bus = await SlotBus.listen(name)
  const worker = await spawnWorker(name)
  const report = await reportMetrics([bus])
  try {
    await bus.request({ path: "/x" })
    const r = await reader.collect()
    expect(metric(r, "slotbus_responses").dataPoints.map((p) => p.value)).toEqual([1])
    expect(r.resourceMetrics.scopeMetrics.map((s) => s.scope.name)).toEqual(["slotbus"])
  } finally {
    report.stop()
    metrics.disable()
    await worker.kill()
    await bus.close({ drain: false })
    await provider.shutdown()
  }
})

test("bad sources are a TypeError that says what to pass", async () => {
  await expect(reportMetrics([{}])).rejects.toThrow("source 0 has no metrics; pass a SlotBus")
  await expect(reportMetrics({} as never)).rejects.toThrow("an array of sources")
})

test("without @opentelemetry/api installed, an app runs and serves /metrics, and reportMetrics says what to add", async () => {
  // slotbus's src/ where no node_modules is found above it: as an app that never installed the package
  const dir = mkdtempSync(join(tmpdir(), "slotbus-otel-"))
  dirs.push(dir)
  cpSync(join(REPO, "src"), join(dir, "src"), { recursive: true })
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
  writeFileSync(
    join(dir, "app.ts"),
    `import { SlotBus } from "./src/index.ts"
import { reportMetrics, serveStatus } from "./src/status/index.ts"
const bus = await SlotBus.listen(${JSON.stringify(busName("otel"))})
const status = await serveStatus([bus], { port: 0 })
const text = await (await fetch(status.url + "/metrics")).text()
console.log("metrics " + text.includes("slotbus_requests_total"))
try { await reportMetrics([bus]) } catch (e) { console.log(e.constructor.name + " " + e.message) }
await status.stop()
await bus.close()
`,
  )
  const lib = await libraryPath()
  const r = await run([process.execPath, "--no-install", "app.ts"], {
    cwd: dir,
    env: { ...process.env, SLOTBUS_LIB: lib },
    timeoutMs: 30_000,
  })
  expect(r.stderr).toBe("")
  expect(r.stdout.trim().split("\n")).toEqual([
    "metrics true",
    "MissingPackageError reportMetrics needs the package @opentelemetry/api, which this app has not installed: bun add @opentelemetry/api",
  ])
})
