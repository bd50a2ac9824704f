// The command line for a Node team: the packed tarball installed with npm in an empty app, a Node front with a Node
// worker, and `slotbus` run from node_modules/.bin with Node 26 and no Bun on PATH (bin/slotbus.ts's sh line runs
// dist/cli/entry.js). Every command but the bench works, the HTTP hub too; the bench says it needs Bun.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { connect as tcpConnect } from "node:net"
import { dirname, join } from "node:path"
import { REPO, run, spawn, type Child, until } from "../support/helpers.ts"
import { packTarball, runOk } from "../support/native/pack.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the command line under Node: no Node >= 26.1 here (${NODE_INSTALL})`)

let app = ""
let front: Child | undefined
let status = ""
let bus = ""
let topic = ""
// Node 26 and the system's tools, no Bun: what a Node team's shell has
let env: Record<string, string | undefined> = {}

beforeAll(async () => {
  if (!node) return
  app = mkdtempSync(join(tmpdir(), "slotbus-node-cli-"))
  const tarball = await packTarball(mkdtempSync(join(app, "pack-")))
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "cli-app", private: true, type: "module" }))
  await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], app, {
    ...process.env,
    npm_config_cache: join(app, ".npm"),
    npm_config_update_notifier: "false",
  })
  env = { ...process.env, PATH: `${dirname(node)}:/usr/bin:/bin`, SLOTBUS_LIB: undefined, NODE_NO_WARNINGS: "1" }
  writeFileSync(
    join(app, "worker.mjs"),
    `import { SlotWorker } from "slotbus"
const worker = await SlotWorker.connect(process.argv[2], (req) => \`\${req.method} \${req.path} \${req.text()}\`)
await worker.closed
process.exit(0)
`,
  )
  writeFileSync(
    join(app, "front.mjs"),
    `import { spawn } from "node:child_process"
import { SlotBus } from "slotbus"
import { Topic } from "slotbus/events"
import { serveStatus } from "slotbus/status"
const bus = await SlotBus.listen("node-cli-" + process.pid)
const worker = spawn(process.execPath, [...process.execArgv, "worker.mjs", bus.name], { stdio: "inherit" })
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
for (let i = 0; i < 5; i++) await bus.call("warm " + i)
const topic = await Topic.open("node-cli-" + process.pid)
const ticks = setInterval(() => topic.publish({ type: "tick", data: "tick" }), 50)
const status = await serveStatus([bus, topic], { port: 0 })
const onUnix = await serveStatus([bus], { unix: "status.sock" })
console.log("ready " + bus.name + " " + topic.name + " " + status.url)
process.once("SIGTERM", async () => {
  clearInterval(ticks)
  await status.stop()
  await onUnix.stop()
  topic.close()
  await bus.close()
  worker.kill()
  process.exit(0)
})
`,
  )
  front = spawn([node, "front.mjs"], { cwd: app, env })
  ;[, bus, topic, status] = (await front.waitLine(/^ready (\S+) (\S+) (\S+)$/, 60_000)) as unknown as string[]
}, 300_000)

afterAll(async () => {
  await front?.kill("SIGTERM")
  if (app) rmSync(app, { recursive: true, force: true })
})

const slotbus = (args: string[], timeoutMs = 30_000) =>
  run([join(app, "node_modules/.bin/slotbus"), ...args], { cwd: app, env, timeoutMs })

describe.skipIf(node === null)("slotbus from the packed tarball under Node, no Bun on PATH", () => {
  test("the shell it runs in has no bun", async () => {
    const r = await run(["sh", "-c", "command -v bun || echo none"], { env, timeoutMs: 10_000 })
    expect(r.stdout.trim()).toBe("none")
  })

  test("--help says which commands need Bun, --version prints the package's", async () => {
    const help = await slotbus(["--help"])
    expect(help.stdout).toContain("under Node >= 26.9 with no Bun on PATH, every one but bench\n")
    expect(help.code).toBe(0)
    const version = await slotbus(["--version"])
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
  })

  test("ls lists the Node front's bus and topic as JSON", async () => {
    const r = await slotbus(["ls", "--json"])
    expect(r.code, r.stderr).toBe(0)
    const host = JSON.parse(r.stdout) as Record<"buses" | "topics", { name: string }[]>
    expect(host.buses.some((x) => x.name === bus)).toBe(true)
    expect(host.topics.some((x) => x.name === topic)).toBe(true)
  })

  test("top --once and requests read the bus's flight recorder", async () => {
    const top = await slotbus(["top", bus, "--once"])
    expect(top.code, top.stderr).toBe(0)
    expect(top.stdout).toContain(bus)
    const requests = await slotbus(["requests", bus, "--json"])
    expect(requests.code, requests.stderr).toBe(0)
    expect(requests.stdout).toContain('"outcome"')
  })

  test("top shows a Node front killed with kill -9 as requests does: its request in flight when it died, its time stopped", async () => {
    // its own recorder directory: a bus opened elsewhere meanwhile sweeps a dead front's file from the shared one
    const xdg = mkdtempSync(join(tmpdir(), "slotbus-node-cli-xdg-"))
    const xenv = { ...env, XDG_RUNTIME_DIR: xdg }
    writeFileSync(
      join(app, "held.mjs"),
      `import { SlotBus, SlotWorker } from "slotbus"
const bus = await SlotBus.listen("node-cli-held-" + process.pid)
await SlotWorker.connect(bus.name, () => new Promise(() => {}))
bus.request({ method: "GET", path: "/held" }).catch(() => {})
console.log("held " + bus.name)
setInterval(() => {}, 1000)
`,
    )
    const held = spawn([node!, "held.mjs"], { cwd: app, env: xenv })
    try {
      const [, name] = (await held.waitLine(/^held (\S+)$/, 60_000)) as unknown as string[]
      const cli = async (...args: string[]) =>
        (await run([join(app, "node_modules/.bin/slotbus"), ...args], { cwd: app, env: xenv, timeoutMs: 30_000 }))
          .stdout
      await until(async () => (await cli("requests", name!)).includes("in flight"), "the request is in flight", 20_000)
      await held.kill("SIGKILL")
      const ran = (out: string) => /in flight, front gone .*?(\S+)\+/.exec(out)?.[1]
      const shown = ran(await cli("requests", name!))
      expect(shown).toBeDefined()
      // main: "in flight … 1.23s…", growing with each frame, as if the dead front's request still ran
      expect(ran(await cli("top", name!, "--once"))).toBe(shown)
      await Bun.sleep(1100)
      expect(ran(await cli("top", name!, "--once"))).toBe(shown)
    } finally {
      await held.kill()
      rmSync(xdg, { recursive: true, force: true })
    }
  }, 120_000)

  test("call sends one request to the bus's Node worker", async () => {
    const r = await slotbus(["call", bus, "/hello", "from the shell"])
    expect(r.stderr).toBe("")
    expect([r.code, r.stdout]).toEqual([0, "POST /hello from the shell"])
  })

  test("status --once reads the front's serveStatus; nothing at a URL is said as under Bun", async () => {
    const r = await slotbus(["status", status, "--once"])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain(bus)
    // Node's fetch says "fetch failed", the code in its cause: the line said that alone
    using closed = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response() })
    const port = closed.port
    closed.stop(true)
    const nothing = await slotbus(["status", `http://127.0.0.1:${port}`, "--once"])
    expect([nothing.code, nothing.stderr]).toEqual([2, expect.stringContaining(`(ECONNREFUSED)`)])
  })

  test.each(["node", "bun"] as const)(
    "status unix:/path --once reads a serveStatus on a unix socket, under %s",
    async (runtime) => {
      const target = `unix:${join(app, "status.sock")}`
      const r =
        runtime === "node"
          ? await slotbus(["status", target, "--once"])
          : await run([process.execPath, join(REPO, "bin", "slotbus.ts"), "status", target, "--once"], {
              cwd: app,
              timeoutMs: 30_000,
            })
      // before, under Node: fetch's `unix` is Bun's alone; Node's went to localhost:80 (ECONNREFUSED)
      expect([r.code, r.stderr]).toEqual([0, ""])
      expect(r.stdout).toContain(bus)
    },
  )

  test("tail prints the topic's events as they pass", async () => {
    const tail = spawn([join(app, "node_modules/.bin/slotbus"), "tail", topic], { cwd: app, env })
    try {
      expect((await tail.waitLine(/tick/, 30_000))[0]).toBe("tick")
    } finally {
      await tail.kill()
    }
  })

  test("bench says it needs Bun, with the command that gets it", async () => {
    const bench = await slotbus(["bench"])
    expect([bench.code, bench.stderr]).toEqual([2, expect.stringContaining("slotbus bench runs under Bun")])
  })

  test("stdio --listen http: serves MCP under Node; a body that stalls is cut by the idle timeout, not held 300 s", async () => {
    // a worker that answers each request line with an empty result, as a JSON-RPC server does
    writeFileSync(
      join(app, "rpc-worker.mjs"),
      `import { createInterface } from "node:readline"
for await (const line of createInterface({ input: process.stdin })) {
  const m = JSON.parse(line)
  if ("id" in m && m.method) process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: m.id, result: {} }) + "\\n")
}
`,
    )
    writeFileSync(
      join(app, "mcp.json"),
      JSON.stringify({ pools: [{ id: "w", command: node, args: ["rpc-worker.mjs"] }] }),
    )
    const args = ["stdio", "--config", "mcp.json", "--listen", "http:127.0.0.1:0"]
    // its stderr to stdout, where the line is looked for
    const cli = spawn(["sh", "-c", 'exec "$0" "$@" 2>&1', join(app, "node_modules/.bin/slotbus"), ...args], {
      cwd: app,
      env,
    })
    try {
      const [, url] = (await cli.waitLine(/listening on (http:\S+) \(MCP/, 30_000)) as unknown as string[]
      const init = { jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25" } }
      const headers = { "content-type": "application/json", accept: "application/json" }
      const r = await fetch(url!, { method: "POST", headers, body: JSON.stringify(init) })
      expect([r.status, await r.json()]).toEqual([200, { jsonrpc: "2.0", id: 1, result: {} }])
      // 10 of 100 bytes, then nothing: node:http's own limit held such a socket 300 s; the listener's idle timeout
      // (10 s, as Bun.serve's) closes it (60 s here: well past it, well short of 300)
      const { port } = new URL(url!)
      const sock = tcpConnect(Number(port), "127.0.0.1")
      await new Promise((resolve) => sock.once("connect", resolve))
      sock.on("error", () => {})
      sock.write(
        `POST /mcp HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: 100\r\n\r\n{"jsonrpc"`,
      )
      const closed = new Promise((resolve) => sock.once("close", () => resolve("closed")))
      expect(await Promise.race([closed, Bun.sleep(60_000).then(() => "held")])).toBe("closed")
      sock.destroy()
    } finally {
      await cli.kill("SIGTERM")
    }
  }, 120_000)

  test("hub serves under Node: /health, a worker's route, an answer past the idle timeout with --timeout-ms 0, then SIGTERM ends it", async () => {
    const tokenFile = join(app, "hub-token")
    const bin = join(app, "node_modules/.bin/slotbus")
    const hub = spawn([bin, "hub", "--port", "0", "--token-file", tokenFile, "--timeout-ms", "0"], { cwd: app, env })
    try {
      const [, url] = (await hub.waitLine(/listening on (http:\S+)/, 30_000)) as unknown as string[]
      const health = await fetch(`${url}/health`)
      expect([health.status, ((await health.json()) as { workers: unknown[] }).workers]).toEqual([200, []])
      writeFileSync(
        join(app, "hub-worker.mjs"),
        `import { hubWorker } from "slotbus/http"
const app = hubWorker(process.argv[2], "shop", { tokenFile: process.argv[3] })
app.get("/items/:id", (req) => Response.json({ id: req.params.id, node: process.version }))
app.get("/slow", () => new Promise((resolve) => setTimeout(() => resolve(new Response("slow")), 12_000)))
await app.run()
console.log("ready")
process.once("SIGTERM", () => void app.close())
await app.closed
`,
      )
      const worker = spawn([node!, "hub-worker.mjs", url!, tokenFile], { cwd: app, env })
      try {
        await worker.waitLine(/^ready$/, 30_000)
        const item = await fetch(`${url}/items/7`)
        expect([item.status, await item.json()]).toEqual([200, { id: "7", node: expect.stringMatching(/^v26\./) }])
        // the socket's idle timeout (10 s) cut a request still waiting for its answer, with no answer at all
        const slow = await fetch(`${url}/slow`)
        expect([slow.status, await slow.text()]).toEqual([200, "slow"])
      } finally {
        await worker.stop()
      }
      hub.signal("SIGTERM")
      expect(await hub.exited, hub.output).toBe(0)
    } finally {
      await hub.kill()
    }
  }, 120_000)
})
