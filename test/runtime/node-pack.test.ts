// The packed tarball under Node (issue 67): `npm pack`, then `npm install <tgz>` into an empty Node app (no network:
// slotbus has no dependencies, its peers are optional). Node loads dist/ (the "node" export condition), which finds
// the prebuilt library in the installed package; a Bun front from the same installed package serves through a Node
// worker; a Node that cannot run it (too old, node:ffi off or denied) gets one UnsupportedRuntimeError at import,
// which a caught import() survives.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { copyFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { detectPlatform, libraryFile } from "../../src/native/lib-path.ts"
import { nodeFfiRefusal } from "../../src/runtime/errors.ts"
import { REPO, run, spawn, until } from "../support/helpers.ts"
import { packTarball, runOk } from "../support/native/pack.ts"
import { findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the packed-tarball tests under Node: no Node >= 26.1 here (${NODE_INSTALL})`)
const version = (bin: string) => execFileSync(bin, ["--version"], { encoding: "utf8" }).trim()

const ENTRIES = [
  "slotbus",
  "slotbus/http",
  "slotbus/leases",
  "slotbus/stdio",
  "slotbus/events",
  "slotbus/nats",
  "slotbus/status",
]

let app = ""
let env: Record<string, string | undefined> = {}

beforeAll(async () => {
  if (!node) return
  app = mkdtempSync(join(tmpdir(), "slotbus-node-app-"))
  const tarball = await packTarball(mkdtempSync(join(app, "pack-")))
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "node-app", private: true, type: "module" }))
  // an empty npm cache and --offline: the install needs nothing but the tarball
  await runOk(["npm", "install", "--offline", "--no-audit", "--no-fund", tarball], app, {
    ...process.env,
    npm_config_cache: join(app, ".npm"),
    npm_config_update_notifier: "false",
  })
  // no SLOTBUS_LIB: the installed package finds its own prebuild
  env = { ...process.env, SLOTBUS_LIB: undefined, NODE_NO_WARNINGS: "1" }

  writeFileSync(
    join(app, "worker.mjs"),
    `import { SlotWorker } from "slotbus"
const worker = await SlotWorker.connect(process.argv[2], (req) =>
  req.text() === "?runtime" ? \`node \${process.version}\` : req.body.slice().reverse())
console.log("ready")
await worker.closed
process.exit(0)
`,
  )
  writeFileSync(
    join(app, "front.ts"),
    `import { SlotBus } from "slotbus"
const [node, ...flags] = process.argv.slice(2)
await using bus = await SlotBus.listen("node-pack-" + process.pid)
const worker = Bun.spawn([node!, ...flags, "worker.mjs", bus.name], { stdout: "inherit", stderr: "inherit" })
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const many = await Promise.all(Array.from({ length: 32 }, (_, i) => bus.call("request " + i)))
console.log(JSON.stringify({
  runtime: text(await bus.call("?runtime")),
  reversed: text(await bus.call("slotbus")),
  many: many.every((b, i) => text(b) === ("request " + i).split("").reverse().join("")),
}))
await bus.close()
console.log("worker exited " + (await worker.exited))
`,
  )
  writeFileSync(
    join(app, "imports.mjs"),
    `for (const entry of ${JSON.stringify(ENTRIES)}) {
  try {
    const names = Object.keys(await import(entry))
    console.log(entry, "loaded", import.meta.resolve(entry).replace(/^.*node_modules\\//, ""), names.length)
  } catch (e) {
    console.log(entry, "caught", e.name, e.code, e.message)
  }
}
console.log("went on")
`,
  )
}, 300_000)

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true })
})

describe.skipIf(node === null)("the packed tarball installed in an empty Node app", () => {
  test("a Node worker from the installed package serves a Bun front from the same package", async () => {
    const out = await runOk(["bun", "front.ts", node!, ...nodeFlags(node!)], app, env, 60_000)
    const [result, exited] = out.trim().split("\n").slice(-2)
    expect(JSON.parse(result!)).toEqual({ runtime: `node ${version(node!)}`, reversed: "subtols", many: true })
    expect(exited).toBe("worker exited 0") // the front's close ended it
  }, 90_000)

  test("a node:http front from the installed package (nodeHandler) serves through a Node worker", async () => {
    writeFileSync(
      join(app, "http-front.mjs"),
      `import { spawn } from "node:child_process"
import { createServer } from "node:http"
import { nodeHandler, SlotBus } from "slotbus"
const bus = await SlotBus.listen("node-pack-http-" + process.pid)
const worker = spawn(process.execPath, [...process.execArgv, "worker.mjs", bus.name], { stdio: "inherit" })
const exited = new Promise((r) => worker.once("exit", r))
await bus.waitForWorkers(1, { timeoutMs: 30_000 })
const server = createServer(nodeHandler(bus)).listen(0, "127.0.0.1")
await new Promise((r) => server.once("listening", r))
const res = await fetch("http://127.0.0.1:" + server.address().port + "/x", { method: "POST", body: "slotbus" })
console.log(JSON.stringify({ status: res.status, body: await res.text() }))
server.close()
await bus.close()
console.log("worker exited " + (await exited))
`,
    )
    const out = await runOk([node!, ...nodeFlags(node!), "http-front.mjs"], app, env, 60_000)
    expect(out.trim().split("\n").slice(-2)).toEqual([
      JSON.stringify({ status: 200, body: "subtols" }),
      "worker exited 0",
    ])
  }, 90_000)

  test("under Node 26 every entry loads from dist/", async () => {
    const r = await run([node!, ...nodeFlags(node!), "imports.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    const lines = r.stdout.trim().split("\n")
    const js = (e: string) => `${e.replace(/^slotbus/, "slotbus/dist")}/index.js`
    expect(lines.map((l) => l.replace(/ \d+$/, " N"))).toEqual([
      ...ENTRIES.map((e) => `${e} loaded ${js(e)} N`),
      "went on",
    ])
    expect(lines.every((l) => l === "went on" || Number(l.split(" ").at(-1)) > 0)).toBe(true)
    expect(r.code, r.stderr).toBe(0)
  })

  test("node -e and the REPL, which have a global require, load it too", async () => {
    const code = `import("slotbus").then((m) => console.log(typeof m.SlotWorker), (e) => console.log(e.message))`
    const r = await run([node!, ...nodeFlags(node!), "-e", code], { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stdout.trim()).toBe("function")
  })

  const v = node ? version(node) : ""
  const refused: [string, string[], string][] = [
    [
      "--no-experimental-ffi",
      ["--no-experimental-ffi"],
      `slotbus needs node:ffi, which is turned off in this Node ${v} (--no-experimental-ffi, on the command line or in NODE_OPTIONS): remove that flag`,
    ],
    [
      "--permission without --allow-ffi",
      ["--permission", "--allow-fs-read=*"],
      `slotbus needs node:ffi, which the permission model (--permission) denies in this Node ${v}: add --allow-ffi`,
    ],
  ]
  test.each(refused)(
    "with %s, a caught import() of each entry is one UnsupportedRuntimeError and the app goes on",
    async (_, flags, message) => {
      const r = await run([node!, ...flags, "imports.mjs"], { cwd: app, env, timeoutMs: 30_000 })
      expect(r.stdout.trim().split("\n")).toEqual([
        ...ENTRIES.map((e) => `${e} caught UnsupportedRuntimeError ERR_SLOTBUS_UNSUPPORTED_RUNTIME ${message}`),
        "went on",
      ])
      expect(r.code).toBe(0)
    },
  )

  // the Node on PATH, when it is older than node:ffi (Node 20 on this machine, CONTRIBUTING's prerequisite)
  const old = Bun.which("node")
  const oldVersion = old ? version(old) : ""
  const isOld = /^v(\d+)\.(\d+)\./.exec(oldVersion)
  const tooOld = isOld !== null && (Number(isOld[1]) < 26 || (Number(isOld[1]) === 26 && Number(isOld[2]) < 1))
  if (!tooOld)
    console.log(`skipping the older-Node case: the node on PATH is ${oldVersion || "missing"}, not older than 26.1`)
  test.skipIf(!tooOld)("on a Node older than 26.1, a caught import() is the error naming both versions", async () => {
    const r = await run([old!, "imports.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    const message = `slotbus under Node needs node:ffi: Node >= 26.9 (or 26.1 with --experimental-ffi), or Bun >= 1.4; this is Node ${oldVersion}`
    expect(r.stdout.trim().split("\n")).toEqual([
      ...ENTRIES.map((e) => `${e} caught UnsupportedRuntimeError ERR_SLOTBUS_UNSUPPORTED_RUNTIME ${message}`),
      "went on",
    ])
    expect(r.code).toBe(0)
  })

  test("uncaught, the error ends the process with its one line, as any failed import does", async () => {
    writeFileSync(join(app, "uncaught.mjs"), `import { SlotBus } from "slotbus"\nconsole.log(typeof SlotBus)\n`)
    const r = await run([node!, "--no-experimental-ffi", "uncaught.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stderr).toContain("UnsupportedRuntimeError: slotbus needs node:ffi")
    expect(r.stdout).toBe("")
    expect(r.code).toBe(1)
  })

  test("each class keeps its name under Node (an error's name is its class's)", async () => {
    writeFileSync(
      join(app, "names.mjs"),
      `const renamed = []
for (const entry of ${JSON.stringify(ENTRIES)})
  for (const [name, value] of Object.entries(await import(entry)))
    if (typeof value === "function" && /^[A-Z]/.test(name) && value.name !== name) renamed.push(name + " is " + value.name)
const { TimeoutError } = await import("slotbus")
console.log(JSON.stringify({ renamed, error: String(new TimeoutError("late")) }))
`,
    )
    const r = await run([node!, ...nodeFlags(node!), "names.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(JSON.parse(r.stdout)).toEqual({ renamed: [], error: "TimeoutError: late" })
  })

  test("a topic and a lease contest open and close under Node", async () => {
    writeFileSync(
      join(app, "rooms.mjs"),
      `import { Topic } from "slotbus/events"
import { Contest } from "slotbus/leases"
const topic = await Topic.open("node-pack-topic-" + process.pid)
const contest = await Contest.open("node-pack-contest-" + process.pid)
console.log(topic.constructor.name, contest.constructor.name)
topic.close()
contest.close()
`,
    )
    const r = await run([node!, ...nodeFlags(node!), "rooms.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stdout.trim()).toBe("Topic Contest")
    expect(r.code, r.stderr).toBe(0)
  })

  test("without the optional NATS package, a feature across hosts says the npm install it needs", async () => {
    writeFileSync(
      join(app, "missing.mjs"),
      `import { SlotBus, MissingPackageError } from "slotbus"
import { nats } from "slotbus/nats"
try {
  await SlotBus.listen("node-pack-nats-" + process.pid, { remote: nats("nats://127.0.0.1:9") })
} catch (e) {
  console.log(e instanceof MissingPackageError, e.packageName, e.message)
}
`,
    )
    const r = await run([node!, ...nodeFlags(node!), "missing.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stdout.trim()).toEndWith(": npm install @nats-io/transport-node")
    expect(r.stdout).toStartWith("true @nats-io/transport-node ")
    expect(r.code, r.stderr).toBe(0)
  })

  // Before: the hub started and said nothing; every worker, a local one too, was refused 500 for ever.
  test("without @nats-io/transport-node, createHub({ nats }) and `slotbus hub --nats` refuse to start with the npm install", async () => {
    writeFileSync(
      join(app, "hub-nats.mjs"),
      `import { MissingPackageError } from "slotbus"
import { createHub } from "slotbus/http"
try {
  const hub = await createHub({ port: 0, quiet: true, nats: "nats://127.0.0.1:9" })
  console.log("started")
  await hub.close()
} catch (e) {
  console.log(e instanceof MissingPackageError, e.packageName, e.message)
}
`,
    )
    const api = await run([node!, ...nodeFlags(node!), "hub-nats.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(api.stdout.trim()).toStartWith("true @nats-io/transport-node ")
    expect(api.stdout.trim()).toEndWith(": npm install @nats-io/transport-node")

    const entry = join(app, "node_modules", "slotbus", "dist", "cli", "entry.js")
    const cli = [node!, ...nodeFlags(node!), entry, "hub", "--port", "0", "--nats", "nats://127.0.0.1:9"]
    const r = await run(cli, { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stderr.trim()).toStartWith("slotbus hub: ")
    expect(r.stderr.trim()).toEndWith(
      "needs the package @nats-io/transport-node, which this app has not installed: npm install @nats-io/transport-node",
    )
    expect(r.stdout).not.toContain("listening")
    expect(r.code).toBe(2)
  }, 60_000)

  test("a Node front from the installed package supervises Node workers (dist/'s spawn on node:child_process)", async () => {
    writeFileSync(
      join(app, "pool.mjs"),
      `import { SlotBus, superviseWorkers } from "slotbus"
await using bus = await SlotBus.listen("node-pack-pool-" + process.pid)
const pool = superviseWorkers(bus, { command: [process.execPath, "worker.mjs", bus.name], instances: 2, stdout: "ignore" })
await bus.waitForWorkers(2, { timeoutMs: 30_000 })
const pids = pool.instances.map((i) => i.pid)
const served = bus.workers.map((w) => w.pid).every((pid) => pids.includes(pid))
console.log(served, new TextDecoder().decode(await bus.call("?runtime")))
await pool.stop() // resolves once the bus lists none of its workers
console.log(pool.state, bus.workerCount)
`,
    )
    const r = await run([node!, ...nodeFlags(node!), "pool.mjs"], { cwd: app, env, timeoutMs: 60_000 })
    expect(r.stdout.trim().split("\n"), r.stderr).toEqual([`true node ${version(node!)}`, "stopped 0"])
    expect(r.code, r.stderr).toBe(0)
  }, 90_000)

  test("examples/node from the installed package: a Bun front with Node workers, a Node front with Bun workers", async () => {
    for (const f of readdirSync(join(REPO, "examples/node"))) copyFileSync(join(REPO, "examples/node", f), join(app, f))
    const fronts = [
      { cmd: [process.execPath, "bun-front.ts"], workers: /^node v26\./ },
      { cmd: [node!, ...nodeFlags(node!), "node-front.mjs"], workers: /^bun \d/ },
    ]
    for (const { cmd, workers } of fronts) {
      const name = `examples-node-${process.pid}-${cmd.at(-1)}`
      const front = spawn(cmd, {
        cwd: app,
        env: { ...env, PORT: "0", NODE: node!, BUN: process.execPath, APP_NAME: name },
      })
      try {
        const url = (await front.waitLine(/^\w+ front listening on (\S+)$/, 60_000))[1]!.replace(/\/$/, "")
        type Answer = { runtime: string; pid: number; path: string; body: string | null }
        let last: Answer | undefined
        const answered = async () => {
          const res = await fetch(`${url}/hello`, { method: "POST", body: "hi" })
          if (res.status !== 200) return false
          last = (await res.json()) as Answer
          return true
        }
        await until(answered, `a worker answers through ${cmd.at(-1)}`, 60_000)
        expect(last).toMatchObject({ runtime: expect.stringMatching(workers), path: "/hello", body: "hi" })
        // kill -9 of the worker that answered: the pool starts another, and the front serves on
        const killed = last!.pid
        process.kill(killed, "SIGKILL")
        await until(async () => (await answered()) && last!.pid !== killed, "another worker answers", 60_000)
        front.signal("SIGTERM")
        expect(await front.exited, front.output).toBe(0)
      } finally {
        await front.kill()
      }
    }
  }, 180_000)

  // A Node team bundles its server: `bun build --target=node` takes the "node" condition, dist/. Marked external,
  // slotbus loads from node_modules and finds its prebuild; bundled whole, its code sits in the app's bundle, away
  // from the package's prebuilds/, and says so, naming the two ways out (docs/api.md, "Bundling a Node app").
  test("an app bundled for Node runs with slotbus external, and bundled whole says how to find libslotbus", async () => {
    writeFileSync(
      join(app, "server.mjs"),
      `import { SlotBus } from "slotbus"
const bus = await SlotBus.listen("node-bundle-" + process.pid)
console.log("listening " + (bus.name === "node-bundle-" + process.pid))
await bus.close()
console.log("closed")
`,
    )
    const bundle = async (out: string, flags: string[]) => {
      await runOk(["bun", "build", "--target=node", "server.mjs", "--outdir", out, ...flags], app, env)
      return readdirSync(join(app, out)) // the bundle alone: no Bun adapter, so none of its embedded prebuilds
    }
    const ran = (file: string, extra: Record<string, string> = {}) =>
      run([node!, ...nodeFlags(node!), file], { cwd: app, env: { ...env, ...extra }, timeoutMs: 30_000 })

    expect(await bundle("out-external", ["--external", "slotbus"])).toEqual(["server.js"])
    const external = await ran("out-external/server.js")
    expect([external.stdout, external.code], external.stderr).toEqual(["listening true\nclosed\n", 0])

    expect(await bundle("out-whole", [])).toEqual(["server.js"])
    const whole = await ran("out-whole/server.js")
    expect(whole.stderr).toContain(
      `NativeLibraryError: No libslotbus for ${detectPlatform()}: slotbus is bundled into ${join(app, "out-whole", "server.js")}`,
    )
    expect(whole.stderr).toContain("--external slotbus")
    expect(whole.stderr).toContain(`set SLOTBUS_LIB to node_modules/slotbus/prebuilds/${detectPlatform()}/`)
    expect(whole.code).toBe(1)

    const shipped = join(app, "node_modules", "slotbus", "prebuilds", detectPlatform(), libraryFile(detectPlatform()))
    const withLib = await ran("out-whole/server.js", { SLOTBUS_LIB: shipped })
    expect([withLib.stdout, withLib.code], withLib.stderr).toEqual(["listening true\nclosed\n", 0])

    // the build for Node run by Bun (which loads src/ when it imports slotbus itself) says so, not a missing file
    const underBun = await run(["bun", "out-whole/server.js"], { cwd: app, env, timeoutMs: 30_000 })
    expect(underBun.stderr).toContain(`UnsupportedRuntimeError: this is slotbus's build for Node`)
    expect(underBun.code).toBe(1)
  }, 90_000)

  test("the HTTP hub and the status server run, both on node:http", async () => {
    writeFileSync(
      join(app, "hub-status.mjs"),
      `import { SlotBus } from "slotbus"
import { createHub } from "slotbus/http"
import { serveStatus } from "slotbus/status"
await using bus = await SlotBus.listen("node-pack-only-" + process.pid)
const tries = {
  hub: async () => {
    await using hub = await createHub({ port: 0, tokenFile: "hub-token" })
    const health = await (await fetch(hub.url + "/health")).json()
    if (!Array.isArray(health.workers)) throw new Error("no health: " + JSON.stringify(health))
  },
  status: async () => {
    const status = await serveStatus([bus], { port: 0 })
    const metrics = await (await fetch(status.url + "/metrics")).text()
    await status.stop()
    if (!metrics.includes("nodejs_heap_size_used_bytes")) throw new Error("no metrics: " + metrics)
  },
}
for (const [what, f] of Object.entries(tries)) {
  try {
    await f()
    console.log(what, "ran")
  } catch (e) {
    console.log(what, e.name, e.message)
  }
}
`,
    )
    const r = await run([node!, ...nodeFlags(node!), "hub-status.mjs"], { cwd: app, env, timeoutMs: 30_000 })
    expect(r.stdout.trim().split("\n")).toEqual([
      "hub ran", // createHub on node:http, its /health fetched
      "status ran", // serveStatus on node:http, scraped
    ])
    expect(r.code, r.stderr).toBe(0)
  })
})

test("between 26.1 and 26.8, node:ffi missing is the --experimental-ffi error (no such Node here to run)", () => {
  const e = nodeFfiRefusal({ version: "v26.4.0", hasFfi: false, ffiDenied: false })
  expect([e?.name, e?.found, e?.needs, e?.message]).toEqual([
    "UnsupportedRuntimeError",
    "v26.4.0",
    "--experimental-ffi",
    "slotbus needs node:ffi, which Node v26.4.0 turns on only with --experimental-ffi (on by default from 26.9): run node --experimental-ffi",
  ])
  expect(nodeFfiRefusal({ version: "v26.4.0", hasFfi: true, ffiDenied: false })).toBeUndefined()
  expect(nodeFfiRefusal({ version: "v26.9.0", hasFfi: true, ffiDenied: false })).toBeUndefined()
  expect(nodeFfiRefusal({ version: "v26.0.3", hasFfi: true, ffiDenied: false })?.needs).toContain("26.9")
})
