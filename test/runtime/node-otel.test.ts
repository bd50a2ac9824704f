// Tracing under Node from the packed tarball: the package's dist/ is ES modules, which have no `require`, so the
// OpenTelemetry API must be found another way (kit/telemetry/otel.ts). The same front and worker run under Node and
// under Bun, each with the SDK registered by the same lines; both must record the same spans. An Express front in
// instrument() (node:http, Bun's or Node's) records the same SERVER spans and server histogram series on both.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { REPO, spawn } from "../support/helpers.ts"
import { packTarball, runOk } from "../support/native/pack.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping tracing from the packed tarball under Node: no Node >= 26.1 here (${NODE_INSTALL})`)

let app = ""
let env: Record<string, string | undefined> = {}

// Registers the SDK as the README says, prints each finished span as `span <json>`.
const SDK = `import { context, trace } from "@opentelemetry/api"
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks"
import { BasicTracerProvider, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
const exporter = {
  export(spans, done) {
    for (const s of spans)
      console.log("span " + JSON.stringify({ name: s.name, kind: s.kind, traceId: s.spanContext().traceId,
        spanId: s.spanContext().spanId, parent: s.parentSpanContext?.spanId, keys: Object.keys(s.attributes).sort(),
        attributes: s.attributes }))
    done({ code: 0 })
  },
  shutdown: async () => {},
}
export const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
trace.setGlobalTracerProvider(provider)
`

beforeAll(async () => {
  if (!node) return
  app = mkdtempSync(join(tmpdir(), "slotbus-node-otel-"))
  const tarball = await packTarball(mkdtempSync(join(app, "pack-")))
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "otel-app", private: true, type: "module" }))
  await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], app, {
    ...process.env,
    npm_config_cache: join(app, ".npm"),
    npm_config_update_notifier: "false",
  })
  // the app's own OpenTelemetry packages: the repository's, as an app that installed them has them
  mkdirSync(join(app, "node_modules"), { recursive: true })
  symlinkSync(join(REPO, "node_modules/@opentelemetry"), join(app, "node_modules/@opentelemetry"))
  symlinkSync(join(REPO, "node_modules/express"), join(app, "node_modules/express"))
  env = { ...process.env, SLOTBUS_LIB: undefined, NODE_NO_WARNINGS: "1" }
  writeFileSync(join(app, "sdk.mjs"), SDK)
  writeFileSync(
    join(app, "worker.mjs"),
    `import { provider } from "./sdk.mjs"
import { SlotWorker } from "slotbus"
const worker = await SlotWorker.connect(process.argv[2], (req) => req.body.slice().reverse())
console.log("ready")
await worker.closed
await provider.shutdown()
process.exit(0)
`,
  )
  writeFileSync(
    join(app, "front.mjs"),
    `import { provider } from "./sdk.mjs"
import { spawn } from "node:child_process"
import { SlotBus } from "slotbus"
const bus = await SlotBus.listen("node-otel-" + process.pid)
const worker = spawn(process.execPath, [...process.execArgv, "worker.mjs", bus.name], { stdio: "inherit" })
const exited = new Promise((r) => worker.once("exit", r))
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
const answer = new TextDecoder().decode(await bus.call("otel"))
const res = await bus.fetch(new Request("http://app/x", { method: "POST", body: "fetch" }))
console.log("answers " + answer + " " + (await res.text()))
await bus.close()
await exited
await provider.shutdown()
`,
  )
  // the README's lines for an Express front: its own routes, a route handed to the workers, and the app's 404
  writeFileSync(
    join(app, "express-front.mjs"),
    `import { provider } from "./sdk.mjs"
import { spawn } from "node:child_process"
import http from "node:http"
import express from "express"
import { instrument, nodeHandler, SlotBus } from "slotbus"
import { metricsText } from "slotbus/status"
const bus = await SlotBus.listen("node-express-" + process.pid)
const worker = spawn(process.execPath, [...process.execArgv, "worker.mjs", bus.name], { stdio: "inherit" })
const exited = new Promise((r) => worker.once("exit", r))
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
const app = express()
app.get("/health", (req, res) => res.send("ok"))
app.get("/metrics", async (req, res) => res.type("text/plain").send(await metricsText([bus])))
app.post("/items/:id", nodeHandler(bus))
const api = express.Router() // a mounted router: its routes are "/api" + their own, also when one fails
api.get("/things/:id", (req, res, next) => (req.params.id === "bad" ? next(new Error("bad thing")) : res.send("thing")))
app.use("/api", api)
const server = http.createServer(instrument(app))
server.listen(0, "127.0.0.1", () => console.log("listening " + server.address().port))
process.once("SIGTERM", async () => {
  server.close()
  server.closeAllConnections()
  await bus.close()
  await exited
  await provider.shutdown()
  process.exit(0)
})
`,
  )
}, 300_000)

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true })
})

interface Span {
  name: string
  kind: number
  traceId: string
  spanId: string
  parent?: string
  keys: string[]
  attributes: Record<string, unknown>
}

/** The front's run under `runtime`: its answers line and every span the front and its worker printed. */
async function traced(runtime: string[]): Promise<{ answers: string; spans: Span[] }> {
  const out = await runOk([...runtime, "front.mjs"], app, env, 60_000)
  const lines = out.trim().split("\n")
  return {
    answers: lines.find((l) => l.startsWith("answers ")) ?? out,
    spans: lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as Span),
  }
}

/** Each CLIENT span (kind 2) with the SERVER span (kind 1) that is its child, as names, kinds and attribute keys. */
function pairs(spans: Span[]) {
  return spans
    .filter((s) => s.kind === 2)
    .map((client) => {
      const server = spans.find((s) => s.kind === 1 && s.parent === client.spanId && s.traceId === client.traceId)
      return { client: [client.name, client.keys], server: server && [server.name, server.keys] }
    })
    .sort((a, b) => String(a.client[0]).localeCompare(String(b.client[0])))
}

describe.skipIf(node === null)("tracing from the packed tarball", () => {
  test("under Node the front records a CLIENT span per bus.fetch and the worker its SERVER child, as under Bun", async () => {
    const onNode = await traced([node!, ...nodeFlags(node!)])
    const onBun = await traced(["bun"])
    expect(onNode.answers).toBe("answers leto hctef")
    expect(onBun.answers).toBe("answers leto hctef")
    // bus.fetch's CLIENT span with the worker's SERVER span under it (bus.call records none, on either runtime)
    expect(pairs(onNode.spans)).toEqual([
      {
        client: ["POST", expect.arrayContaining(["url.full"])],
        server: ["POST", expect.arrayContaining(["url.path"])],
      },
    ])
    expect(pairs(onNode.spans)).toEqual(pairs(onBun.spans))
  }, 180_000)
})

/** What an Express front under `runtime` answered, its spans, and its server histogram's series in /metrics. */
async function expressFront(runtime: string[]) {
  const front = spawn([...runtime, "express-front.mjs"], { cwd: app, env })
  try {
    const [, port] = await front.waitLine(/^listening (\d+)$/, 60_000)
    const base = `http://127.0.0.1:${port}`
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    const item = await fetch(`${base}/items/7?full=1`, { method: "POST", body: "abc", headers: { traceparent } })
    const health = await fetch(`${base}/health`)
    const things = await Promise.all(["/api/things/1", "/api/things/bad"].map((p) => fetch(base + p)))
    const missing = await Promise.all(["/nope/1", "/nope/2", "/items/7/more"].map((p) => fetch(base + p)))
    const answers = [`${item.status} ${await item.text()}`, `${health.status} ${await health.text()}`]
    for (const t of things) answers.push(t.status === 200 ? `200 ${await t.text()}` : `${t.status}`)
    for (const m of missing) {
      await m.text()
      answers.push(`${m.status}`)
    }
    const metrics = await (await fetch(`${base}/metrics`)).text()
    front.signal("SIGTERM")
    expect(await front.exited).toBe(0)
    const spans = front.lines.filter((l) => l.startsWith("span ")).map((l) => JSON.parse(l.slice(5)) as Span)
    const series = metrics
      .split("\n")
      .filter((l) => /^(http_server_request_duration_seconds|slotbus_route_request_duration_seconds)_count/.test(l))
      .map((l) => l.replace(/bus="[^"]*"/, 'bus="…"'))
      .sort()
    return { answers, spans, series }
  } finally {
    await front.kill()
  }
}

/** Each span as its name, kind, attribute keys and its parent's name (`client` for the client's traceparent). */
function shapes(spans: Span[]) {
  const byId = new Map(spans.map((s) => [s.spanId, s]))
  return spans
    .map((s) => [
      s.name,
      s.kind,
      s.keys.join(","),
      s.parent === undefined ? "" : (byId.get(s.parent)?.name ?? "client"),
    ])
    .sort((a, b) => a.join(" ").localeCompare(b.join(" ")))
}

describe.skipIf(node === null)("an Express front in instrument()", () => {
  test("under Node and under Bun's node:http: a SERVER span per request named by Express's route, and the same histogram series", async () => {
    const onNode = await expressFront([node!, ...nodeFlags(node!)])
    expect(onNode.answers).toEqual(["200 cba", "200 ok", "200 thing", "500", "404", "404", "404"])
    const server = onNode.spans.filter((s) => s.kind === 1)
    // the front's span is the child of the client's traceparent
    const item = server.find((s) => s.parent === "b7ad6b7169203331")!
    expect(item.name).toBe("POST /items/:id")
    expect(item.traceId).toBe("0af7651916cd43dd8448eb211c80319c")
    expect(item.attributes).toMatchObject({ "http.route": "/items/:id", "url.path": "/items/7", "url.query": "full=1" })
    expect(item.attributes["http.response.status_code"]).toBe(200)
    // nodeHandler's bus.fetch: a CLIENT child carrying Express's route, and the worker's SERVER span under it
    const client = onNode.spans.find((s) => s.kind === 2 && s.parent === item.spanId)!
    expect(client.name).toBe("POST /items/:id")
    expect(client.attributes["url.template"]).toBe("/items/:id")
    expect(onNode.spans.find((s) => s.kind === 1 && s.parent === client.spanId)?.name).toBe("POST /items/:id")
    expect(server.find((s) => s.name === "GET /health")?.attributes["http.route"]).toBe("/health")
    // the 404s: `{method}` and no http.route, never the raw path
    const missing = server.filter((s) => s.attributes["http.response.status_code"] === 404)
    expect(missing.map((s) => [s.name, s.attributes["http.route"]])).toEqual([
      ["GET", undefined],
      ["GET", undefined],
      ["GET", undefined],
    ])
    expect(onNode.series).toEqual([
      'http_server_request_duration_seconds_count{http_request_method="GET",http_response_status_code="404"} 3',
      // the router's failed request keeps its mount path (before: "/things/:id", Express had left the router)
      'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/things/:id",http_response_status_code="200"} 1',
      'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/api/things/:id",http_response_status_code="500"} 1',
      'http_server_request_duration_seconds_count{http_request_method="GET",http_route="/health",http_response_status_code="200"} 1',
      'http_server_request_duration_seconds_count{http_request_method="POST",http_route="/items/:id",http_response_status_code="200"} 1',
      'slotbus_route_request_duration_seconds_count{bus="…",route="POST /items/:id"} 1',
    ])
    const onBun = await expressFront(["bun"])
    expect(onBun.answers).toEqual(onNode.answers)
    expect(shapes(onBun.spans)).toEqual(shapes(onNode.spans))
    expect(onBun.series).toEqual(onNode.series)
  }, 180_000)
})
