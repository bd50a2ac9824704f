// Tracing under Node from the packed tarball: the package's dist/ is ES modules, which have no `require`, so the
// OpenTelemetry API must be found another way (kit/telemetry/otel.ts). The same front and worker run under Node and
// under Bun, each with the SDK registered by the same lines; both must record the same spans.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { REPO } from "../support/helpers.ts"
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
        spanId: s.spanContext().spanId, parent: s.parentSpanContext?.spanId, keys: Object.keys(s.attributes).sort() }))
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
