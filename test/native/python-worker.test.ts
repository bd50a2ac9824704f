// examples/python-worker/echo.py over python/slotbus.py (ctypes on the shipped libslotbus), run as a user would:
// the packed tarball installed into an empty app, a hub from the installed package, `python3 echo.py NAME` as a
// real process on a PATH that holds python3 and bun and nothing else (no compiler, no pip).
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import {
  allStopped,
  busName,
  type Child,
  eventually,
  observed,
  outcome,
  randomBytes,
  spawn,
  stopAll,
} from "../support/helpers.ts"
import { zigBuild } from "../../scripts/zig.ts"
import { onlyTools, packTarball, runOk } from "../support/native/pack.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

import type { SlotBus } from "../../src/index.ts"

type Slotbus = typeof import("../../src/index.ts")

const skip = toolSkipReason("python3")
sayWhySkipped("the Python worker over the packed tarball", skip)

const GUARD_MS = 5_000
const SLEEP_MS = 10_000 // what echo.py's /sleep sleeps unless cancelled
const repo = join(import.meta.dir, "..", "..")

let packDir = ""
let consumer = ""
let installed = ""
let env: Record<string, string> = {}
let sb: Slotbus
let shipped: string[] = [] // the installed package's Python files, before any Python ran there

beforeAll(async () => {
  if (skip) return
  packDir = mkdtempSync(join(tmpdir(), "slotbus-py-pack-"))
  consumer = mkdtempSync(join(tmpdir(), "slotbus-py-app-"))
  const tarball = await packTarball(packDir)
  // python3 may be a shim (pyenv): link the interpreter itself, so PATH needs nothing else.
  const python = (await runOk(["python3", "-c", "import sys; print(sys.executable)"], repo)).trim()
  env = {
    ...onlyTools(join(consumer, ".bin"), { bun: process.execPath, python3: python }, consumer),
    BUN_INSTALL_CACHE_DIR: join(consumer, ".cache"),
  }
  for (const tool of ["zig", "cc", "gcc", "clang", "pip", "pip3"])
    expect(Bun.which(tool, { PATH: env.PATH })).toBeNull()
  writeFileSync(join(consumer, "package.json"), JSON.stringify({ name: "py-consumer", private: true, type: "module" }))
  await runOk(["bun", "add", tarball], consumer, env)
  installed = join(consumer, "node_modules", "slotbus")
  shipped = ["python", join("examples", "python-worker")].flatMap((dir) =>
    readdirSync(join(installed, dir)).map((f) => join(dir, f)),
  )
  // The hub is the installed package, loaded into this test process.
  sb = (await import(join(installed, "src", "index.ts"))) as Slotbus
}, 300_000)

afterEach(stopAll)

afterAll(() => {
  for (const dir of [packDir, consumer]) if (dir) rmSync(dir, { recursive: true, force: true })
})

// A worker whose handlers fail in each way a handler can, and one that answers with a status and a header.
const FAILING_WORKER = `import sys, slotbus
worker = slotbus.Worker.connect(sys.argv[1])
worker.route("/raise", lambda req: {}["no such thing"])
worker.route("/big", lambda req: bytes(1 << 20))
worker.route("/bad-header", lambda req: slotbus.Response("x", headers={"x-bad": "a\\nb"}))
worker.route("/made", lambda req: slotbus.Response(bytes(req.body), 201, {"X-Out": "%s %s x-in=%s" % (req.method, req.path, req.headers["x-in"])}))
worker.serve()
`

// A hub as its own process, from the installed package: 4 /sleep requests in flight, then it waits to be killed.
const SLEEPY_HUB = `import { SlotBus } from "slotbus"
const bus = await SlotBus.listen(process.argv[2], { timeoutMs: 60_000 })
await bus.waitForWorkers(1, 10_000)
for (let i = 0; i < 4; i++) bus.request({ path: "/sleep" }).catch(() => {})
console.log("sent 4")
setInterval(() => {}, 1 << 30)
`

const echoPy = () => join(installed, "examples", "python-worker", "echo.py")

/** A hub from the installed package with echo.py attached; both ended afterwards, also when the test fails. */
async function withEchoPy(body: (bus: SlotBus, worker: Child) => Promise<void>) {
  const name = busName("py")
  const bus = await sb.SlotBus.listen(name, { maxBodyBytes: 1 << 20, timeoutMs: 30_000 })
  const worker = spawn(["python3", echoPy(), name], { env, cwd: consumer })
  try {
    await worker.whileAlive(bus.waitForWorkers(1, 10_000), "echo.py")
    expect(bus.workers.map((w) => w.pid)).toEqual([worker.pid])
    await body(bus, worker)
  } finally {
    await worker.kill()
    await bus.close({ drain: false })
  }
}

/** Runs Python code in the app, with the installed module importable; its stdout parsed as JSON. */
async function python(code: string, extraEnv: Record<string, string> = {}): Promise<unknown> {
  const out = await runOk(["python3", "-c", code], consumer, {
    ...env,
    PYTHONPATH: join(installed, "python"),
    ...extraEnv,
  })
  return JSON.parse(out)
}

describe.skipIf(skip !== null)("the Python worker (python/slotbus.py) from the packed tarball", () => {
  test("the package ships the module and the example, and no Python bytecode from the checkout", () => {
    expect(shipped.sort()).toEqual(
      ["examples/python-worker/README.md", "examples/python-worker/echo.py", "python/slotbus.py"].sort(),
    )
  })

  test("speaks the ABI version and the sb_msg layout of csrc/slotbus.h, and loads the package's prebuild", async () => {
    const header = readFileSync(join(repo, "csrc", "slotbus.h"), "utf8")
    const abi = Number(/#define SB_ABI_VERSION (\d+)u/.exec(header)![1])
    const msgFields = [.../typedef struct sb_msg \{([^}]*)\}/.exec(header)![1]!.matchAll(/(u?int32_t) (\w+);/g)].map(
      (m) => [m[2], m[1] === "int32_t" ? "c_int" : "c_uint"],
    )
    const got = (await python(`import json, ctypes, slotbus
lib = slotbus._library()
print(json.dumps({"abi": slotbus.ABI_VERSION, "lib_abi": lib.sb_abi_version(), "path": slotbus.library_path(),
  "fields": [[n, t.__name__] for n, t in slotbus._Msg._fields_], "size": ctypes.sizeof(slotbus._Msg)}))`)) as {
      abi: number
      lib_abi: number
      path: string
      fields: string[][]
      size: number
    }
    expect([got.abi, got.lib_abi]).toEqual([abi, abi])
    expect(got.path).toStartWith(join(installed, "prebuilds") + "/")
    expect(got.fields).toEqual(msgFields)
    expect(got.size).toBe(4 * msgFields.length)
  })

  test("echo.py answers 1,000 echoes on /echo byte for byte, a 1 MiB body among them, and raw calls too (with a trace context as well)", async () => {
    await withEchoPy(async (bus) => {
      const sizes = Array.from({ length: 1000 }, (_, i) => (i === 500 ? 1 << 20 : (i * 7919) % 70_000))
      const bodies = sizes.map((n) => randomBytes(n))
      for (let at = 0; at < bodies.length; at += 50) {
        const batch = bodies.slice(at, at + 50)
        const answers = await Promise.all(
          batch.map((body) =>
            bus.request({ method: "POST", path: "/echo", body }).then((r) => [r.status, r.body] as const),
          ),
        )
        answers.forEach(([status, got], k) => {
          expect(status).toBe(200)
          expect(Buffer.from(got).equals(Buffer.from(batch[k]!))).toBe(true)
        })
      }
      expect(sizes).toContain(1 << 20)
      const raw = randomBytes(4096)
      expect(Buffer.from(await bus.call(raw)).equals(Buffer.from(raw))).toBe(true)
      // a raw call with a trace context has a head (PROTOCOL.md §6.2): the body is still at body_off
      const traceparent = "00-0af7651916cd43dd8448eb7b319ad0a1-b7ad6b7169203331-01"
      expect(Buffer.from(await bus.call(raw, { traceparent })).equals(Buffer.from(raw))).toBe(true)
      expect(bus.stats()).toMatchObject({ inFlight: 0, errors: 0 })
    })
  }, 120_000)

  test("kill -9 of the Python worker with 8 requests in flight rejects all 8 with WorkerGoneError", async () => {
    await withEchoPy(async (bus, worker) => {
      const calls = Array.from({ length: 8 }, () => observed(bus.request({ path: "/sleep" })))
      await eventually(() => worker.lines.filter((l) => l.startsWith("sleeping ")).length === 8, GUARD_MS)
      expect(worker.lines.filter((l) => l.startsWith("sleeping ")).length).toBe(8) // all 8 are in its handlers
      expect(bus.stats().inFlight).toBe(8)
      worker.signal("SIGKILL")
      const outcomes = await Promise.all(calls.map((c) => outcome(c, GUARD_MS)))
      for (const o of outcomes) expect(o.state === "rejected" && o.error).toBeInstanceOf(sb.WorkerGoneError)
      expect(bus.workers).toEqual([])
    })
  }, 30_000)

  test("an abort and a timeout reach the Python handler, which ends its 10 s sleep early, and the slot comes back", async () => {
    await withEchoPy(async (bus, worker) => {
      const ac = new AbortController()
      const started = performance.now()
      const aborted = observed(bus.request({ path: "/sleep" }, { signal: ac.signal }))
      const id = (await worker.waitLine(/^sleeping (\d+)$/))[1]
      ac.abort(new Error("caller gave up"))
      expect(await outcome(aborted, GUARD_MS)).toMatchObject({ state: "rejected" })
      await worker.waitLine(new RegExp(`^cancelled ${id}$`), SLEEP_MS / 2)
      expect(performance.now() - started).toBeLessThan(SLEEP_MS / 2) // the handler saw it, not its sleep's end

      const timedOut = observed(bus.request({ path: "/sleep" }, { timeoutMs: 300 }))
      const second = (await worker.waitLine(new RegExp(`^sleeping (?!${id}$)(\\d+)$`)))[1]
      const o = await outcome(timedOut, GUARD_MS)
      expect(o.state === "rejected" && o.error).toBeInstanceOf(sb.TimeoutError)
      await worker.waitLine(new RegExp(`^cancelled ${second}$`), SLEEP_MS / 2)
      expect(await eventually(() => bus.stats().inFlight === 0, GUARD_MS)).toBe(true) // the 499s came back
      const after = await bus.request({ method: "POST", path: "/echo", body: "after" })
      expect(after.text()).toBe("after")
    })
  }, 30_000)

  test("echo.py answers 404 for a path it has no handler for, and matches a path without its query string", async () => {
    await withEchoPy(async (bus) => {
      const missing = await bus.request({ path: "/nope?x=1" })
      expect([missing.status, missing.text()]).toEqual([404, "no handler for GET /nope?x=1"])
      const query = await bus.request({ method: "POST", path: "/echo?q=1", body: "with a query" })
      expect([query.status, query.text()]).toEqual([200, "with a query"])
    })
  }, 30_000)

  test("a hub process from the installed package killed with kill -9: echo.py cancels its 4 /sleep handlers and exits 0", async () => {
    writeFileSync(join(consumer, "sleepy-hub.ts"), SLEEPY_HUB)
    const name = busName("py-hub-kill")
    const hub = spawn(["bun", "sleepy-hub.ts", name], { env, cwd: consumer })
    const worker = spawn(["python3", echoPy(), name], { env, cwd: consumer })
    try {
      await hub.waitLine(/^sent 4$/)
      await eventually(() => worker.lines.filter((l) => l.startsWith("sleeping ")).length === 4, GUARD_MS)
      const ids = worker.lines.filter((l) => l.startsWith("sleeping ")).map((l) => l.split(" ")[1])
      expect(ids.length).toBe(4)
      hub.signal("SIGKILL")
      expect(await outcome(worker.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
      for (const id of ids) expect(worker.lines).toContain(`cancelled ${id}`)
    } finally {
      await worker.kill()
      await hub.kill()
    }
  }, 30_000)

  test("a hub killed with kill -9 while a handler ignores its cancellation: the worker still exits 0, soon", async () => {
    // a handler that never looks at req.cancelled: before, serve() joined its thread, so the worker stayed 60 s
    const stubborn = `import sys, time
sys.path.insert(0, ${JSON.stringify(join(installed, "python"))})
import slotbus
worker = slotbus.Worker.connect(sys.argv[1])
@worker.route("/sleep")
def sleep(req):
    print("sleeping %d" % req.id, flush=True)
    time.sleep(60)
    return "slept"
print("ready", flush=True)
worker.serve()
`
    writeFileSync(join(consumer, "stubborn.py"), stubborn)
    writeFileSync(join(consumer, "sleepy-hub.ts"), SLEEPY_HUB)
    const name = busName("py-stubborn")
    const hub = spawn(["bun", "sleepy-hub.ts", name], { env, cwd: consumer })
    const worker = spawn(["python3", join(consumer, "stubborn.py"), name], { env, cwd: consumer })
    try {
      await hub.waitLine(/^sent 4$/)
      await eventually(() => worker.lines.some((l) => l.startsWith("sleeping ")), GUARD_MS)
      hub.signal("SIGKILL")
      expect(await outcome(worker.exited, 3 * GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    } finally {
      await worker.kill()
      await hub.kill()
    }
  }, 60_000)

  test("a handler's exception, an answer too large for the slot and a bad header come back as typed errors", async () => {
    writeFileSync(join(consumer, "failing.py"), FAILING_WORKER)
    const name = busName("py-fail")
    const bus = await sb.SlotBus.listen(name, { maxBodyBytes: 64 * 1024 })
    const worker = spawn(["python3", "failing.py", name], {
      env: { ...env, PYTHONPATH: join(installed, "python") },
      cwd: consumer,
    })
    try {
      await worker.whileAlive(bus.waitForWorkers(1, 10_000), "failing.py")
      const raised = (await outcome(bus.request({ path: "/raise" }), GUARD_MS)) as {
        error: InstanceType<Slotbus["RemoteError"]>
      }
      expect(raised.error).toBeInstanceOf(sb.RemoteError)
      expect(raised.error.message).toBe("KeyError: 'no such thing'")
      expect(raised.error.remoteStack).toContain("Traceback")
      const big = await outcome(bus.request({ path: "/big" }), GUARD_MS)
      expect(big.state === "rejected" && big.error).toBeInstanceOf(sb.PayloadTooLargeError)
      expect(big.state === "rejected" && (big.error as Error).message).toContain("raise maxBodyBytes on the hub")
      const header = await outcome(bus.request({ path: "/bad-header" }), GUARD_MS)
      expect(header.state === "rejected" && (header.error as Error).message).toBe(
        "ValueError: header x-bad: the value holds NUL, CR or LF",
      )
      const made = await bus.request({ method: "PUT", path: "/made", headers: { "x-in": "1" }, body: "ü" })
      expect([made.status, Object.fromEntries(made.headers), made.text()]).toEqual([
        201,
        { "x-out": "PUT /made x-in=1" },
        "ü",
      ])
    } finally {
      await worker.kill()
      await bus.close({ drain: false })
    }
  }, 30_000)

  test("a hub that hands over a /dev/zero fd for its region is refused with ProtocolError (SB_ECORRUPT)", async () => {
    const name = busName("py-hostile")
    const hub = spawn([join(await zigBuild("hostile"), "hostile"), "hub", "devzero", name])
    try {
      await hub.waitLine(/^listening$/)
      const got = await python(`import json, slotbus
try:
    slotbus.Worker.connect("${name}")
    print(json.dumps(None))
except slotbus.SlotbusError as e:
    print(json.dumps([type(e).__name__, e.errno_name]))`)
      expect(got).toEqual(["ProtocolError", "SB_ECORRUPT"])
    } finally {
      await hub.kill()
    }
  }, 180_000)

  test.each([
    ["a bad bus name", `slotbus.Worker.connect("no spaces")`, {}, "InvalidNameError", "EINVAL"],
    [
      "no hub",
      `slotbus.Worker.connect("py-nobody-${process.pid}", wait_for_hub_ms=0)`,
      {},
      "HubNotFoundError",
      "ECONNREFUSED",
    ],
    [
      "SLOTBUS_LIB naming a missing file",
      `slotbus.library_path()`,
      { SLOTBUS_LIB: "/nonexistent/libslotbus.so" },
      "NativeLibraryError",
      null,
    ],
  ])("%s is a typed SlotbusError naming its errno", async (_, call, extraEnv, error, errnoName) => {
    const got = await python(
      `import json, slotbus
try:
    ${call}
    print(json.dumps(None))
except slotbus.SlotbusError as e:
    print(json.dumps([type(e).__name__, e.errno_name, str(e)]))`,
      extraEnv,
    )
    expect(got).toMatchObject([error, errnoName, expect.any(String)])
  })

  test("a bus name a topic's or an election's socket file would have is an InvalidNameError, also with a live topic of it", async () => {
    // before, "topic.<name>" reached a live topic's socket and failed with a plain SlotbusError (EPROTO)
    const events = (await import(
      join(installed, "src", "events", "index.ts")
    )) as typeof import("../../src/events/index.ts")
    const name = busName("py-topic")
    await using _topic = await events.Topic.open(name)
    const got = await python(`import json, slotbus
out = []
for prefix in ("topic.", "fronts.", "fronts-cover.", "bridge."):
    try:
        slotbus.Worker.connect(prefix + "${name}", wait_for_hub_ms=0)
        out.append(None)
    except slotbus.SlotbusError as e:
        out.append([type(e).__name__, e.errno_name, str(e)])
print(json.dumps(out))`)
    expect(got).toEqual(
      ["topic.", "fronts.", "fronts-cover.", "bridge."].map((prefix) => [
        "InvalidNameError",
        "EINVAL",
        expect.stringContaining(`bus name "${prefix}${name}" starts with "${prefix}"`),
      ]),
    )
  })

  test("a hub stopped with SIGSTOP fails connect with ConnectTimeoutError once wait_for_hub_ms=300 is over, not 5 s later", async () => {
    // the hub accepts (the kernel does) but sends no hello: before, connect waited its fixed 5 s for one
    const hubScript = `import { SlotBus } from "slotbus"
const bus = await SlotBus.listen(process.argv[2])
console.log("listening")
setInterval(() => {}, 1 << 30)
`
    writeFileSync(join(consumer, "idle-hub.ts"), hubScript)
    const name = busName("py-stopped")
    const hub = spawn(["bun", "idle-hub.ts", name], { env, cwd: consumer })
    try {
      await hub.waitLine(/^listening$/)
      hub.signal("SIGSTOP")
      expect(await eventually(() => allStopped(hub.pid), GUARD_MS)).toBe(true)
      const got = (await python(`import json, time, slotbus
started = time.monotonic()
try:
    slotbus.Worker.connect("${name}", wait_for_hub_ms=300)
    print(json.dumps(None))
except slotbus.SlotbusError as e:
    print(json.dumps([type(e).__name__, e.errno_name, (time.monotonic() - started) * 1000]))`)) as [
        string,
        string,
        number,
      ]
      expect(got.slice(0, 2)).toEqual(["ConnectTimeoutError", "ETIMEDOUT"])
      expect(got[2]).toBeLessThan(3000) // the wait asked for (at least 1 s for the hello), where it was 5 s
    } finally {
      hub.signal("SIGCONT")
      await hub.kill()
    }
  }, 30_000)

  test.each([
    ["wait_for_hub_ms", `wait_for_hub_ms="5"`, "TypeError", "wait_for_hub_ms must be a number >= 0, not str"],
    ["wait_for_hub_ms", `wait_for_hub_ms=None`, "TypeError", "wait_for_hub_ms must be a number >= 0, not NoneType"],
    ["wait_for_hub_ms", `wait_for_hub_ms=-1`, "ValueError", "wait_for_hub_ms must be a number >= 0, not -1"],
    ["wait_for_hub_ms", `wait_for_hub_ms=float("nan")`, "ValueError", "wait_for_hub_ms must be a number >= 0, not nan"],
    ["threads", `wait_for_hub_ms=0, threads="4"`, "TypeError", "threads must be an int >= 1, not str"],
    ["threads", `wait_for_hub_ms=0, threads=True`, "TypeError", "threads must be an int >= 1, not bool"],
    ["threads", `wait_for_hub_ms=0, threads=0`, "ValueError", "threads must be an int >= 1, not 0"],
  ])("connect checks %s up front: %s is a %s naming it", async (_, arg, error, message) => {
    const got = await python(`import json, slotbus
try:
    slotbus.Worker.connect("py-nobody-${process.pid}", ${arg})
    print(json.dumps(None))
except Exception as e:
    print(json.dumps([type(e).__name__, str(e)]))`)
    expect(got).toEqual([error, message])
  })

  test("serve(handle_sigterm=...) that is not a bool is a TypeError naming it, before serving starts", async () => {
    const name = busName("py-serve-arg")
    const bus = await sb.SlotBus.listen(name)
    try {
      const got = await python(`import json, slotbus
worker = slotbus.Worker.connect("${name}")
try:
    worker.serve(handle_sigterm="no")
    print(json.dumps(None))
except Exception as e:
    print(json.dumps([type(e).__name__, str(e)]))`)
      expect(got).toEqual(["TypeError", "handle_sigterm must be a bool, not str"])
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("SIGTERM cancels the Python worker's in-flight /sleep, answers it and exits 0; so does the hub closing", async () => {
    await withEchoPy(async (bus, worker) => {
      const sleeping = observed(bus.request({ path: "/sleep" }))
      const id = (await worker.waitLine(/^sleeping (\d+)$/))[1]
      worker.signal("SIGTERM")
      const o = await outcome(sleeping, GUARD_MS)
      expect(o.state === "resolved" && [o.value.status, o.value.text()]).toEqual([499, "cancelled"])
      await worker.waitLine(new RegExp(`^cancelled ${id}$`), GUARD_MS)
      expect(await outcome(worker.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    })
    const name = busName("py-close")
    const bus = await sb.SlotBus.listen(name)
    const worker = spawn(["python3", echoPy(), name], { env, cwd: consumer })
    try {
      await worker.whileAlive(bus.waitForWorkers(1, 10_000), "echo.py")
      await bus.close({ drain: false })
      expect(await outcome(worker.exited, GUARD_MS)).toMatchObject({ state: "resolved", value: 0 })
    } finally {
      await worker.kill()
      await bus.close({ drain: false })
    }
  }, 30_000)
})
