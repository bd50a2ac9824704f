// The types an app gets from the packed tarball with no configuration: an app made by `bun init -y`, its own
// tsconfig, `bun add` of the tarball. Correct code must check clean with nothing `any`, and wrong code must be
// reported, by tsc (our devDependency), by `bun check` (the app's own typecheck script) and by tsgo if present.
// Correct code includes the forms issue 68 found refused: `traced(fetch)` in `Bun.serve({ fetch })`, and a
// SlotHandler whose branches return `headers` literals with different keys. A Node app (`npm install` of the tarball,
// tsc and tsgo run by Node 26) with @types/node alone and @types/express checks an Express front with a pool, RPC, a
// topic and the status server, as docs/api.md has them.
import { afterAll, beforeAll, expect, test } from "bun:test"
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { REPO, run } from "../support/helpers.ts"
import { onlyTools, packTarball, runOk } from "../support/native/pack.ts"
import { findNode } from "../support/runtime/node.ts"
import { sayWhySkipped } from "../support/tools.ts"

let packDir = ""
let app = ""
let nodeApp = ""
let env: Record<string, string> = {}
// The checkers of the Node app run under Node 26 with no Bun on PATH (under Bun where there is no Node 26)
const node = findNode()
const nodeRunner = node ?? process.execPath
let nodeEnv: Record<string, string> = {}

const OK = `// Every entry point, used correctly: checks clean, and nothing is \`any\`.
import { instrument, SlotBus, type SlotHandler, SlotWorker, TimeoutError, traced } from "slotbus"
import { Topic } from "slotbus/events"
import { createHub, hubWorker } from "slotbus/http"
import { Contest } from "slotbus/leases"
import { metricsHandler } from "slotbus/status"
import { StdioBus } from "slotbus/stdio"

type IsAny<T> = 0 extends 1 & T ? true : false
export const nothingIsAny = [
  false satisfies IsAny<typeof SlotBus>,
  false satisfies IsAny<typeof SlotWorker>,
  false satisfies IsAny<typeof instrument>,
  false satisfies IsAny<typeof createHub>,
  false satisfies IsAny<typeof hubWorker>,
  false satisfies IsAny<typeof Topic>,
  false satisfies IsAny<typeof Contest>,
  false satisfies IsAny<typeof StdioBus>,
]

export async function core(): Promise<string> {
  await using bus = await SlotBus.listen("orders", { slots: 64, timeoutMs: 5_000 })
  await using worker = await SlotWorker.connect("orders", (req) => req.body)
  try {
    const answer: Uint8Array = await bus.call("ping")
    return new TextDecoder().decode(answer) + String(worker)
  } catch (e) {
    if (e instanceof TimeoutError) return e.message
    throw e
  }
}

// docs/api.md's fronts: a fetch handler wrapped for Bun.serve({ fetch }) (TS2322 while the routes overload came first)
export function fronts(): number[] {
  const a = Bun.serve({ port: 0, fetch: traced((req) => new Response(req.url)) })
  const b = Bun.serve({ port: 0, fetch: instrument(async (req: Request) => new Response(req.method)) })
  const c = Bun.serve({ port: 0, routes: instrument({ "/items/:id": (req) => Response.json(req.params.id) }) })
  // metricsHandler as a route, bare and instrumented
  const d = Bun.serve({ port: 0, routes: { "/metrics": metricsHandler([]) } })
  const e = Bun.serve({ port: 0, routes: instrument({ "/metrics": metricsHandler([]) }) })
  return [a.port ?? 0, b.port ?? 0, c.port ?? 0, d.port ?? 0, e.port ?? 0]
}

// branches returning { status, headers, body } literals with different headers keys, no annotation
export const branches: SlotHandler = async (req) => {
  if (req.path === "/a") return { status: 200, headers: { "content-type": "text/plain" }, body: "a" }
  return { status: 404, headers: { "x-why": "none", "cache-control": "no-store" }, body: "b" }
}
export const syncBranches: SlotHandler = (req) =>
  req.path === "/a" ? { headers: { "content-type": "text/plain" }, body: "a" } : { headers: { etag: "1" }, body: "b" }

export async function http(): Promise<number> {
  await using hub = await createHub({ port: 0 })
  const app = hubWorker(hub.url, "items")
  app.get("/items/:id/*", (req) => Response.json({ id: req.params.id, rest: req.params["*"] }))
  app.post("/items", () => ({ status: 201, body: "created" }))
  await app.run()
  return hub.port
}

export async function events(): Promise<number> {
  await using topic = await Topic.open("audit", { capacity: 1 << 20 })
  return topic.publish({ type: "session.registered", routing: { session: "s" }, data: { user: 7 } })
}

export async function leases(): Promise<string> {
  using contest = await Contest.open("jobs")
  const r = contest.tryClaim({ kind: 1, label: "nightly" }, { owner: "me", ttlMs: 30_000 })
  return r.claimed ? String(r.lease.token) : r.holder.owner
}

export async function stdio(): Promise<unknown> {
  await using bus = StdioBus.fromConfig({ pools: [{ id: "echo", command: "cat", instances: 1 }] })
  await bus.start()
  return bus.request("ping", {}, { sessionId: "alice" })
}
`

/** One wrong use per file, and the error a checker must report for it. */
const WRONG = [
  {
    file: "wrong-path.ts",
    code: "TS2345",
    says: "Argument of type 'number' is not assignable to parameter of type 'string'",
    source: `import { hubWorker } from "slotbus/http"
hubWorker("http://127.0.0.1:3200", "items").get(404, () => new Response("a route pattern is a string"))
`,
  },
  {
    file: "wrong-status.ts",
    code: "TS2322",
    says: "Type 'string' is not assignable to type 'number'",
    source: `import { hubWorker } from "slotbus/http"
hubWorker("http://127.0.0.1:3200", "items").get("/items", () => ({ status: "200" }))
`,
  },
  {
    file: "unknown-param.ts",
    code: "TS2339",
    says: "Property 'itemId' does not exist on type '{ id: string; }'",
    source: `import { hubWorker } from "slotbus/http"
hubWorker("http://127.0.0.1:3200", "items").get("/items/:id", (req) => Response.json(req.params.itemId))
`,
  },
  {
    file: "wrong-option.ts",
    code: "TS2322",
    says: "Type 'string' is not assignable to type 'number'",
    source: `import { SlotBus } from "slotbus"
await SlotBus.listen("orders", { timeoutMs: "5s" })
`,
  },
]

let entries = ""
/** A module importing every entry point the tarball's package.json exports, each as a namespace that is used. */
function everyEntry(tarball: string): string {
  const pkg = JSON.parse(
    new TextDecoder().decode(Bun.spawnSync(["tar", "-xzOf", tarball, "package/package.json"]).stdout),
  ) as { exports: Record<string, unknown> }
  const names = Object.keys(pkg.exports).filter((k) => k !== "./package.json")
  expect(names.length).toBeGreaterThan(5)
  const lines = names.map((k, i) => `import * as e${i} from "${k === "." ? "slotbus" : `slotbus/${k.slice(2)}`}"`)
  return `${lines.join("\n")}\nexport const entries = [${names.map((_, i) => `e${i}`).join(", ")}]\n`
}

/** A Node app's own settings: Node's module resolution, lib checks on, no Bun types. */
const NODE_TSCONFIG = {
  compilerOptions: {
    target: "ES2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    noEmit: true,
    skipLibCheck: false,
    types: ["node"],
  },
}

/** A Node front as docs/api.md has it: nodeHandler behind node:http, an inline listener instrumented, the status server. */
const NODE_OK = `import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { instrument, nodeHandler, SlotBus } from "slotbus"
import { serveStatus } from "slotbus/status"

export async function front(): Promise<void> {
  const bus = await SlotBus.listen("orders")
  createServer(nodeHandler(bus)).listen(8080)
  // a listener written inline, its parameters typed as docs/api.md says
  createServer(instrument((req: IncomingMessage, res: ServerResponse) => res.end(req.url))).listen(8081)
  const status = await serveStatus([bus], { port: 0 })
  await status.stop()
}
`

/** A Node worker exposing an api for RPC, as docs/api.md's RPC section has it (its ".js" path: Node's resolution). */
const NODE_WORKER = `import { createHash } from "node:crypto"
import { SlotWorker, withSignal } from "slotbus"

export const api = {
  add: (a: number, b: number) => a + b,
  digest: withSignal(async (signal: AbortSignal, text: string) => {
    signal.throwIfAborted()
    return createHash("sha256").update(text).digest("hex")
  }),
}
export type Api = typeof api
await SlotWorker.expose("reports", api)
`

/**
 * An Express 5 front as examples/express and docs/api.md have it, typed by @types/express: a pool of Node workers, a
 * route handed to them, RPC to them, a topic's events, /metrics on the app's server and the status server. The
 * @ts-expect-error lines fail the check (TS2578) if what they misuse were \`any\`.
 */
const NODE_EXPRESS = `import http from "node:http"
import express from "express"
import {
  closeGracefully,
  instrument,
  nodeHandler,
  RemoteError,
  SlotBus,
  superviseWorkers,
  TimeoutError,
  UnknownMethodError,
} from "slotbus"
import { Topic } from "slotbus/events"
import { metricsHandler, serveStatus } from "slotbus/status"
import type { Api } from "./worker.js"

const bus = await SlotBus.listen("reports")
const pool = superviseWorkers(bus, { command: [process.execPath, "worker.js"], instances: 2 })
await bus.waitForWorkers(2, { timeoutMs: 30_000 })
const topic = await Topic.open("audit", { capacity: 1 << 20 })
const api = bus.remote<Api>()

const app = express()
app.post("/report/:id", nodeHandler(bus))
app.get("/sum/:a/:b", async (req, res) => {
  try {
    const sum: number = await api.add(Number(req.params.a), Number(req.params.b))
    const digest: string = await bus.remote<Api>({ timeoutMs: 500 }).digest(String(sum))
    const id: number = topic.publish({ type: "sum.done", routing: { route: "/sum" }, data: { sum, digest } })
    res.json({ sum, digest, id })
  } catch (e) {
    if (e instanceof TimeoutError) res.status(504).send(e.message)
    else if (e instanceof RemoteError) res.status(500).send(\`\${e.remoteName}: \${e.message}\`)
    else if (e instanceof UnknownMethodError) res.status(501).send(e.methods.join(", "))
    else throw e
  }
})
// /metrics: the handler as Express's route handler, node:http's listener and a Web handler (Hono's c.req.raw)
const metrics = metricsHandler([bus, topic])
app.get("/metrics", metrics)
export const plain = http.createServer((req, res) => (req.url === "/metrics" ? metrics(req, res) : res.end()))
export const web = async (req: Request): Promise<Response> => metrics(req)
export const written = (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => metrics(req, res)
// @ts-expect-error: node:http's req wants its res
export const noResponse = (req: http.IncomingMessage) => metrics(req)

// @ts-expect-error: add takes numbers
export const wrongArgument = () => api.add("1", 2)
// @ts-expect-error: the worker exposes no such method
export const unknownMethod = () => api.nope()
// @ts-expect-error: a topic's event has a type
export const noType = () => topic.publish({ data: 1 })

export async function audit(): Promise<number> {
  await using sub = topic.subscribe({ type: "sum.*", routing: { route: "/sum" } }, { queue: 256 })
  let seen = 0
  for await (const ev of sub) {
    const text: string = ev.type
    seen += text.length + ev.id + JSON.stringify(ev.json()).length
    if (seen > 100) break
  }
  return seen + sub.lagged
}

const server = http.createServer(instrument(app))
server.listen(3000)
const status = await serveStatus([bus, topic], { port: 9300 })
process.once("SIGTERM", async () => {
  await closeGracefully(server, { pool, bus })
  await status.stop()
  topic.close()
})
`

/** Settings a stricter app adds; the package must bring no error of its own under them. */
const STRICTER = {
  extends: "./tsconfig.json",
  compilerOptions: {
    customConditions: ["bun"],
    skipLibCheck: false,
    exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true,
    noUnusedLocals: true,
    noUnusedParameters: true,
    noImplicitReturns: true,
  },
}

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), "slotbus-types-pack-"))
  app = mkdtempSync(join(tmpdir(), "slotbus-types-app-"))
  const tarball = await packTarball(packDir)
  entries = everyEntry(tarball)

  // No registry: `bun init` writes its files, then fails to install @types/bun (linked from ours below).
  env = {
    ...onlyTools(join(app, ".bin"), { bun: process.execPath }, app),
    BUN_INSTALL_CACHE_DIR: join(app, ".cache"),
    BUN_CONFIG_REGISTRY: "http://127.0.0.1:9/",
  }
  await run(["bun", "init", "-y"], { cwd: app, env, timeoutMs: 60_000 })
  expect(existsSync(join(app, "tsconfig.json"))).toBe(true)
  rmSync(join(app, "index.ts"))

  // What needs the registry goes; the tarball installs from its file.
  const pkg = JSON.parse(readFileSync(join(app, "package.json"), "utf8"))
  delete pkg.devDependencies
  delete pkg.peerDependencies
  writeFileSync(join(app, "package.json"), JSON.stringify(pkg, null, 2))
  await runOk(["bun", "add", tarball], app, env)
  mkdirSync(join(app, "node_modules", "@types"), { recursive: true })
  symlinkSync(join(REPO, "node_modules", "@types", "bun"), join(app, "node_modules", "@types", "bun"))

  writeFileSync(join(app, "ok.ts"), OK)
  writeFileSync(join(app, "entries.ts"), entries)
  const entriesOnly = { extends: "./tsconfig.json", compilerOptions: { skipLibCheck: false }, files: ["entries.ts"] }
  writeFileSync(join(app, "tsconfig.entries.json"), JSON.stringify(entriesOnly, null, 2))

  // A Node app: @types/node alone (no bun-types anywhere), the package installed from the same tarball.
  nodeApp = mkdtempSync(join(tmpdir(), "slotbus-types-node-app-"))
  writeFileSync(join(nodeApp, "package.json"), JSON.stringify({ name: "node-app", type: "module", private: true }))
  writeFileSync(join(nodeApp, "tsconfig.json"), JSON.stringify(NODE_TSCONFIG, null, 2))
  await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], nodeApp, {
    ...process.env,
    npm_config_cache: join(packDir, ".npm"),
    npm_config_update_notifier: "false",
  })
  nodeEnv = node ? { PATH: `${dirname(node)}:/usr/bin:/bin`, HOME: nodeApp } : env
  mkdirSync(join(nodeApp, "node_modules", "@types"), { recursive: true })
  symlinkSync(join(REPO, "node_modules", "@types", "node"), join(nodeApp, "node_modules", "@types", "node"))
  writeFileSync(join(nodeApp, "entries.ts"), entries)
  writeFileSync(join(nodeApp, "server.ts"), NODE_OK)
  // Express 5 ships no declarations: the app's @types/express, ours as it installs @types/node
  symlinkSync(join(REPO, "node_modules", "@types", "express"), join(nodeApp, "node_modules", "@types", "express"))
  writeFileSync(join(nodeApp, "worker.ts"), NODE_WORKER)
  writeFileSync(join(nodeApp, "front.ts"), NODE_EXPRESS)
  for (const w of WRONG) writeFileSync(join(app, w.file), w.source)
  writeFileSync(join(app, "tsconfig.stricter.json"), JSON.stringify(STRICTER, null, 2))
}, 300_000)

afterAll(() => {
  for (const dir of [packDir, app, nodeApp]) if (dir) rmSync(dir, { recursive: true, force: true })
})

interface Reported {
  file: string
  code: string
  message: string
}

/** Runs a checker in the app; the errors it reports ("file(line,col): error TSxxxx: message"). */
async function check(cmd: string[]): Promise<Reported[]> {
  const r = await run(cmd, { cwd: app, env, timeoutMs: 120_000 })
  const errors = [...r.stdout.matchAll(/^(\S+)\(\d+,\d+\): error (TS\d+): (.*)$/gm)].map(([, file, code, message]) => ({
    file: file!,
    code: code!,
    message: message!,
  }))
  if (r.code === 0 || errors.length === 0)
    throw new Error(`${cmd.join(" ")} exited ${r.code}\n${r.stdout}\n${r.stderr}`)
  return errors.sort((a, b) => a.file.localeCompare(b.file))
}

/** Exactly the wrong uses are reported, each with its error; nothing in ok.ts, nothing inside the package. */
function expectOnlyTheWrongUses(errors: Reported[]) {
  const expected = [...WRONG].sort((a, b) => a.file.localeCompare(b.file))
  expect(errors.map((e) => `${e.file} ${e.code}`)).toEqual(expected.map((w) => `${w.file} ${w.code}`))
  for (const [i, e] of errors.entries()) expect(e.message).toContain(expected[i]!.says)
}

const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc")

test("an app from `bun init` type-checks all five entry points with tsc and its own tsconfig, and tsc reports a wrong path, a wrong status, an unknown route param and a wrong option", async () => {
  expectOnlyTheWrongUses(await check([process.execPath, tsc, "--noEmit"]))
}, 120_000)

test("the app's own typecheck script (`bun check`, as bun init writes it) reports the same", async () => {
  expect(JSON.parse(readFileSync(join(app, "package.json"), "utf8")).scripts?.typecheck).toStartWith("bun check")
  expectOnlyTheWrongUses(await check(["bun", "run", "typecheck"]))
}, 120_000)

test('with stricter settings, lib checks on and customConditions: ["bun"], the package brings no error of its own', async () => {
  const errors = await check([process.execPath, tsc, "--noEmit", "-p", "tsconfig.stricter.json"])
  // bun-types is not ours to keep clean under every setting.
  expectOnlyTheWrongUses(errors.filter((e) => !e.file.includes("node_modules/") || e.file.includes("/slotbus/")))
}, 120_000)

/** Runs a checker in `dir`: its exit code and its output, which names every error. */
async function checkClean(cmd: string[], dir: string, checkEnv = env): Promise<string> {
  const r = await run(cmd, { cwd: dir, env: checkEnv, timeoutMs: 120_000 })
  return `exit ${r.code}\n${r.stdout}${r.stderr}`
}

test("a Node app with @types/node alone and lib checks on type-checks every entry point, a nodeHandler front and an Express front with a pool, RPC, events and status with tsc: no error of the package's own (no bun module, no Bun global)", async () => {
  expect(existsSync(join(nodeApp, "node_modules", "bun-types"))).toBe(false)
  expect(await checkClean([nodeRunner, tsc, "--noEmit"], nodeApp, nodeEnv)).toBe("exit 0\n")
}, 120_000)

test("an app from `bun init` with @types/bun alone and lib checks on type-checks every entry point with tsc", async () => {
  expectNoErrorOfOurs(await checkClean([process.execPath, tsc, "--noEmit", "-p", "tsconfig.entries.json"], app))
}, 120_000)

/** A checker's output (checkClean's) names no error in slotbus's own files, and the checker ran. */
function expectNoErrorOfOurs(out: string) {
  // bun-types is not ours to keep clean under every setting: only what names slotbus's own files counts
  const ours = out
    .split("\n")
    .filter((l) => /error TS/.test(l) && (!l.includes("node_modules/") || l.includes("/slotbus/")))
  expect(ours).toEqual([])
  expect(out.startsWith("exit 0\n") || /error TS/.test(out), out).toBe(true) // not a checker that failed to run
}

const tsgo = Bun.which("tsgo", { PATH: `${join(REPO, "node_modules", ".bin")}:${process.env.PATH ?? ""}` })
sayWhySkipped(
  "TypeScript 7 (tsgo)",
  tsgo ? null : "no tsgo: npm install (it is a devDependency, @typescript/native-preview)",
)
test.skipIf(!tsgo)(
  "TypeScript 7 (tsgo) reports the same",
  async () => {
    expectOnlyTheWrongUses(await check([process.execPath, tsgo!, "--noEmit"]))
  },
  120_000,
)

test.skipIf(!tsgo)(
  "TypeScript 7 (tsgo): the Node app with @types/node alone checks clean too",
  async () => {
    expect(await checkClean([nodeRunner, tsgo!, "--noEmit"], nodeApp, nodeEnv)).toBe("exit 0\n")
  },
  120_000,
)

test.skipIf(!tsgo)(
  "TypeScript 7 (tsgo): the app from `bun init` with @types/bun alone and lib checks on checks every entry point",
  async () => {
    expectNoErrorOfOurs(await checkClean([process.execPath, tsgo!, "--noEmit", "-p", "tsconfig.entries.json"], app))
  },
  120_000,
)
