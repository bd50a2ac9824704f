import { afterAll, beforeAll, expect, test } from "bun:test"
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { execFileSync } from "node:child_process"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryFile } from "../../src/native/lib-path.ts"
import { NODE_FFI_DEFAULT } from "../../src/runtime/errors.ts"
import { fnv1a32 } from "../support/c-text.ts"
import { run } from "../support/helpers.ts"
import { onlyTools, packTarball, runOk } from "../support/native/pack.ts"
import { findZig } from "../../scripts/zig.ts"

const repo = join(import.meta.dir, "..", "..")
const platforms = ["linux-x64", "linux-arm64", "linux-x64-musl", "linux-arm64-musl", "darwin-arm64", "darwin-x64"]

let packDir = ""
let consumer = ""
let env: Record<string, string> = {}
let nodeEnv: Record<string, string> = {}

/** What the package says at import under a Node without node:ffi (Node 26 runs it: test/runtime/node-pack.test.ts). */
const NEEDS_NODE_FFI = "UnsupportedRuntimeError: slotbus under Node needs node:ffi: Node >= 26.9"
const pathNode = /^v(\d+)\.(\d+)\./.exec(
  Bun.which("node") ? execFileSync("node", ["--version"], { encoding: "utf8" }) : "",
)
/** The Node on PATH (CONTRIBUTING: Node 20+) is older than node:ffi, as these tests of the refusal need. */
const oldNode =
  pathNode !== null && (Number(pathNode[1]) < 26 || (Number(pathNode[1]) === 26 && Number(pathNode[2]) < 1))
if (!oldNode) console.log("skipping the older-Node import tests: the node on PATH has node:ffi")

beforeAll(async () => {
  packDir = mkdtempSync(join(tmpdir(), "slotbus-pack-"))
  consumer = mkdtempSync(join(tmpdir(), "slotbus-consumer-"))
  const tarball = await packTarball(packDir)

  // A user's machine: bun and nothing else, so nothing can be compiled at install or load time.
  env = {
    ...onlyTools(join(consumer, ".bin"), { bun: process.execPath }, process.env.HOME ?? consumer),
    BUN_INSTALL_CACHE_DIR: join(consumer, ".cache"),
  }
  for (const tool of ["zig", "cc", "gcc", "clang"]) expect(Bun.which(tool, { PATH: env.PATH })).toBeNull()

  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
  await runOk(["bun", "add", tarball], consumer, env)

  // Another user's machine: Node and npm (npx runs bins with sh), no Bun.
  const nodeTools: Record<string, string> = {}
  for (const tool of ["node", "npm", "npx", "sh"])
    nodeTools[tool] = Bun.which(tool) ?? missing(`${tool} (Node 20+ and npm are prerequisites, CONTRIBUTING.md)`)
  nodeEnv = {
    ...onlyTools(join(consumer, ".node-bin"), nodeTools, consumer),
    npm_config_cache: join(consumer, ".npm"),
    npm_config_update_notifier: "false",
  }
  expect(Bun.which("bun", { PATH: nodeEnv.PATH })).toBeNull()
}, 300_000)

function missing(what: string): never {
  throw new Error(`not found on PATH: ${what}`)
}

afterAll(() => {
  for (const dir of [packDir, consumer]) if (dir) rmSync(dir, { recursive: true, force: true })
})

test("the packed tarball installs with bun alone and ships a loadable library for every platform", async () => {
  const installed = join(consumer, "node_modules", "slotbus")
  for (const p of platforms) expect(existsSync(join(installed, "prebuilds", p, libraryFile(p)))).toBe(true)

  writeFileSync(
    join(consumer, "load.ts"),
    `import { dlopen, FFIType } from "bun:ffi"
import { libraryPath } from "./node_modules/slotbus/src/native/lib-path.ts"
const path = await libraryPath()
const { symbols } = dlopen(path, { sb_layout_hash: { args: [], returns: FFIType.u32 } })
console.log(JSON.stringify({ path, hash: symbols.sb_layout_hash() }))
`,
  )
  const { path, hash } = JSON.parse(await runOk(["bun", "load.ts"], consumer, env))
  expect(path).toStartWith(join(installed, "prebuilds") + "/")
  const layout = /layout hash: FNV-1a 32 of the ASCII string `([^`]+)`/.exec(
    readFileSync(join(repo, "docs", "PROTOCOL.md"), "utf8"),
  )![1]!
  expect(hash).toBe(fnv1a32(layout))
})

test("an installed package does a round trip between a hub and a worker process", async () => {
  writeFileSync(
    join(consumer, "worker.ts"),
    `import { SlotWorker } from "slotbus"
await SlotWorker.connect(process.argv[2]!, (req) => req.body.slice().reverse())
`,
  )
  writeFileSync(
    join(consumer, "hub.ts"),
    `import { SlotBus } from "slotbus"
const name = "pack-test-" + process.pid
await using bus = await SlotBus.listen(name)
const worker = Bun.spawn([process.execPath, "worker.ts", name], { stdout: "inherit", stderr: "inherit" })
try {
  await bus.waitForWorkers(1, 10_000)
  console.log(new TextDecoder().decode(await bus.call("slotbus")))
} finally {
  worker.kill("SIGKILL")
}
`,
  )
  expect((await runOk(["bun", "hub.ts"], consumer, env)).trim()).toBe("subtols")
}, 30_000)

test("without the optional NATS packages, each feature across hosts says at open which bun add it needs", async () => {
  const scoped = join(consumer, "node_modules", "@nats-io")
  expect(existsSync(scoped)).toBe(false) // optional peers: a plain install adds none of them
  writeFileSync(
    join(consumer, "across.ts"),
    `import { SlotBus, SlotWorker, MissingPackageError } from "slotbus"
import { Topic } from "slotbus/events"
import { Contest } from "slotbus/leases"
import { nats } from "slotbus/nats"
const remote = nats("nats://127.0.0.1:9") // nothing listens there: the package is missing before any connection is tried
const tries = {
  listen: () => SlotBus.listen("pack-nats-" + process.pid, { remote }),
  connect: () => SlotWorker.connect("pack-nats-" + process.pid, () => "", { remote }),
  topic: () => Topic.open("pack-nats-" + process.pid, { remote }),
  durable: () => Topic.open("pack-durable-" + process.pid, { remote, durable: true }),
  contest: () => Contest.open("pack-nats-" + process.pid, { remote }),
}
for (const [what, open] of Object.entries(tries)) {
  try {
    await open()
    console.log(what, "opened")
  } catch (e) {
    console.log(what, e instanceof MissingPackageError ? e.packageName : "other", (e as Error).message)
  }
}
`,
  )
  const lines = (await runOk(["bun", "across.ts"], consumer, env)).trim().split("\n")
  const wants = {
    listen: "transport-node",
    connect: "transport-node",
    topic: "transport-node",
    durable: "jetstream",
    contest: "kv",
  }
  for (const [i, [what, pkg]] of Object.entries(wants).entries()) {
    expect(lines[i]).toStartWith(`${what} @nats-io/${pkg} `)
    expect(lines[i]).toContain(`bun add @nats-io/${pkg}`)
  }

  // With the client linked in (as \`bun add @nats-io/transport-node\` would), the connection is tried.
  mkdirSync(scoped)
  symlinkSync(join(repo, "node_modules", "@nats-io", "transport-node"), join(scoped, "transport-node"))
  try {
    const again = (await runOk(["bun", "across.ts"], consumer, env)).trim().split("\n")
    expect(again[3]).toStartWith("durable @nats-io/jetstream ")
    expect(again[4]).toStartWith("contest @nats-io/kv ")
    // the client is there: a plain topic and a bus now fail on the connection, not on a package
    expect(again[0]).toStartWith("listen other ")
    expect(again[2]).toStartWith("topic other ")
  } finally {
    rmSync(scoped, { recursive: true, force: true })
  }
}, 60_000)

// Before: the hub started and said nothing; every worker, a local one too, was refused 500 for ever (the package
// loaded at the first registration, and its MissingPackageError became the catch-all's 500).
test("without @nats-io/transport-node, createHub({ nats }) and `slotbus hub --nats` refuse to start with the bun add", async () => {
  expect(existsSync(join(consumer, "node_modules", "@nats-io"))).toBe(false)
  writeFileSync(
    join(consumer, "hub-nats.ts"),
    `import { MissingPackageError } from "slotbus"
import { createHub } from "slotbus/http"
try {
  const hub = await createHub({ port: 0, quiet: true, nats: "nats://127.0.0.1:9" })
  console.log("started")
  await hub.close()
} catch (e) {
  console.log(e instanceof MissingPackageError, (e as MissingPackageError).packageName, (e as Error).message)
}
`,
  )
  const api = (await runOk(["bun", "hub-nats.ts"], consumer, env, 30_000)).trim()
  expect(api).toStartWith("true @nats-io/transport-node ")
  expect(api).toEndWith(": bun add @nats-io/transport-node")

  const cli = ["bun", join(consumer, "node_modules", "slotbus", "bin", "slotbus.ts"), "hub", "--port", "0"]
  const r = await run([...cli, "--nats", "nats://127.0.0.1:9"], { cwd: consumer, env, timeoutMs: 30_000 })
  expect(r.stderr.trim()).toStartWith("slotbus hub: ")
  expect(r.stderr.trim()).toEndWith(
    "needs the package @nats-io/transport-node, which this app has not installed: bun add @nats-io/transport-node",
  )
  expect(r.stdout).not.toContain("listening")
  expect(r.code).toBe(2)
}, 60_000)

test("the package carries the bench and the protocol, and leaves the perf notes in the repository", async () => {
  const installed = join(consumer, "node_modules", "slotbus")
  for (const f of ["bench/cli.ts", "bench/slots/floor.c", "docs/PROTOCOL.md", "docs/api.md", "docs/model/slotbus.pml"])
    expect(existsSync(join(installed, f))).toBe(true)
  expect(existsSync(join(installed, "docs", "perf"))).toBe(false)
  const help = await runOk(["bun", join(installed, "bin", "slotbus.ts"), "bench", "events", "--help"], consumer, env)
  expect(help).toContain("usage: slotbus bench events")
})

test("the package ships what slotbus bench runs, and none of the repository's own comparison scripts", async () => {
  const installed = join(consumer, "node_modules", "slotbus")
  const slotbus = join(installed, "bin", "slotbus.ts")
  // every room of `slotbus bench` loads from the package alone
  for (const room of [
    "",
    "soak",
    "events",
    "leases",
    "stdio",
    "rpc",
    "stream",
    "remote",
    "realwork",
    "fronts",
    "compare",
  ]) {
    const out = await runOk(["bun", slotbus, "bench", ...(room ? [room] : []), "--help"], consumer, env)
    expect(out).toContain(`slotbus bench${room ? ` ${room}` : ""}`)
  }
  // the scripts run with bun from a clone (mitata micro-benchmarks, perf runs) stay there
  const shipped = readdirSync(join(installed, "bench"), { recursive: true })
    .map(String)
    .filter((f) => statSync(join(installed, "bench", f)).isFile())
  const devOnly = shipped.filter((f) => /from "mitata"/.test(readFileSync(join(installed, "bench", f), "utf8")))
  expect({ devOnly, http: existsSync(join(installed, "bench", "http")) }).toEqual({ devOnly: [], http: false })
  expect(existsSync(join(installed, "scripts", "leftovers.ts"))).toBe(false)
}, 180_000)

// The C test programs (csrc/test) and scripts/timings.ts were shipped: no user runs them
test("the package leaves out the C test programs and the test scripts, and zig still builds from it what users build", async () => {
  const installed = join(consumer, "node_modules", "slotbus")
  const gone = ["csrc/test", "scripts/timings.ts", "scripts/leftovers.ts"].filter((f) => existsSync(join(installed, f)))
  expect(gone).toEqual([])
  // a user with zig: the library for this host, the C worker and the bench's floor (bench/slots/cc.ts), from the package
  const zig = findZig()
  const out = join(consumer, "zig-built")
  const r = await run(
    ["bun", join(installed, "scripts", "zig.ts"), "build", "native", "examples", "floor", "--prefix", out],
    { cwd: consumer, env: { ...env, ZIG: zig }, timeoutMs: 240_000 },
  )
  expect(r.stderr).toBe("")
  expect(r.code).toBe(0)
  for (const exe of ["c-worker", "floor"]) expect(existsSync(join(out, "bin", exe))).toBe(true)
}, 300_000)

test.each([
  ["rpc", "tinypool,piscina", "tinypool piscina"],
  ["stdio", "mcp", "@modelcontextprotocol/sdk @modelcontextprotocol/server-everything"],
])(
  "slotbus bench %s --only %s without the repository's dev dependencies says which to add before measuring",
  async (room, only, add) => {
    const r = await run(
      ["bun", join(consumer, "node_modules", "slotbus", "bin", "slotbus.ts"), "bench", room, "--only", only],
      {
        cwd: consumer,
        env,
        timeoutMs: 30_000,
      },
    )
    expect(r.stderr).toContain(`bun add -d ${add}`)
    expect(r.stdout).toBe("")
    expect(r.code).toBe(2)
  },
  60_000,
)

const entries = [
  "slotbus",
  "slotbus/http",
  "slotbus/events",
  "slotbus/leases",
  "slotbus/stdio",
  "slotbus/status",
  "slotbus/nats",
]

test.skipIf(!oldNode).each(entries)(
  "under a Node older than 26.1, a static import of every name %s exports finds each and prints the version needed",
  async (entry) => {
    const names: string[] = JSON.parse(
      await runOk(["bun", "-e", `console.log(JSON.stringify(Object.keys(await import("${entry}"))))`], consumer, env),
    )
    expect(names.length).toBeGreaterThan(0)
    const file = `static-${entry.replace("/", "-")}.mjs`
    writeFileSync(join(consumer, file), `import { ${names.join(", ")} } from "${entry}"\nconsole.log(${names[0]})\n`)
    const r = await run(["node", file], { cwd: consumer, env: nodeEnv, timeoutMs: 30_000 })
    expect(r.stderr).toContain(NEEDS_NODE_FFI)
    expect(r.code).toBe(1)
  },
)

test("the fallback for other runtimes (src/other-runtime.mjs) has every name an entry exports", async () => {
  const text = readFileSync(join(repo, "src", "other-runtime.mjs"), "utf8")
  const fallback = new Set(text.slice(text.indexOf("export let")).match(/\b[A-Za-z_]\w*\b/g))
  const names: string[] = JSON.parse(
    await runOk(
      [
        "bun",
        "-e",
        `const n = []; for (const e of ${JSON.stringify(entries)}) n.push(...Object.keys(await import(e))); console.log(JSON.stringify(n))`,
      ],
      consumer,
      env,
    ),
  )
  expect(names.filter((n) => !fallback.has(n))).toEqual([])
})

test("a bundle for browsers (neither the bun nor the node condition) throws the line naming both runtimes", async () => {
  writeFileSync(join(consumer, "browser.mjs"), `import { SlotBus } from "slotbus"\nconsole.log(SlotBus)\n`)
  await runOk(["bun", "build", "--target=browser", "browser.mjs", "--outfile", "browser-bundle.mjs"], consumer, env)
  const r = await run(["node", "browser-bundle.mjs"], { cwd: consumer, env: nodeEnv, timeoutMs: 30_000 })
  expect(r.stderr).toContain(`slotbus runs on Bun >= 1.4 or Node >= ${NODE_FFI_DEFAULT.join(".")}`)
  expect(r.code).toBe(1)
})

test.skipIf(!oldNode).each([
  ["require()", "require.cjs", `require("slotbus")`],
  ["a dynamic import()", "dynamic.mjs", `await import("slotbus")`],
])("under a Node older than 26.1, %s of slotbus prints the version needed", async (_, file, code) => {
  writeFileSync(join(consumer, file), `${code}\n`)
  const r = await run(["node", file], { cwd: consumer, env: nodeEnv, timeoutMs: 30_000 })
  expect(r.stderr).toContain(NEEDS_NODE_FFI)
  expect(r.code).toBe(1)
})

test("`npx slotbus ls` on a machine with a Node older than 26.9 and no Bun says which Node it needs, in one line", async () => {
  const r = await run(["npx", "slotbus", "ls"], { cwd: consumer, env: nodeEnv, timeoutMs: 60_000 })
  expect(r.stderr).toContain(`slotbus: ${NEEDS_NODE_FFI}`)
  expect(r.stderr.trim().split("\n")).toHaveLength(1)
  expect(r.code).toBe(1)
}, 60_000)

test("`slotbus --version` prints the package's version, run by npx with Bun on PATH, by bunx and as the bin itself", async () => {
  const { version } = JSON.parse(readFileSync(join(consumer, "node_modules", "slotbus", "package.json"), "utf8"))
  expect(version).toMatch(/^\d+\.\d+\.\d+/)
  const withBun = { ...nodeEnv, PATH: `${nodeEnv.PATH}:${env.PATH}` }
  expect(await runOk(["npx", "slotbus", "--version"], consumer, withBun)).toBe(`${version}\n`)
  expect(await runOk(["bun", "x", "slotbus", "--version"], consumer, env)).toBe(`${version}\n`)
  expect(await runOk([join(consumer, "node_modules", ".bin", "slotbus"), "--version"], consumer, env)).toBe(
    `${version}\n`,
  )
}, 60_000)
