// `slotbus call <bus> <path>` from a second process against a bus that serves no status: the bus's control socket
// (docs/PROTOCOL.md §14) is all it takes. The test process is the app (SlotBus.listen), the workers are
// test/support/echo-worker.ts processes.
import { afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { freeHostName } from "../../src/native/ffi.ts"
import { busName, run, spawn, spawnWorker, stopAll, until, type Child } from "../support/helpers.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const SLOTBUS = join(import.meta.dir, "..", "..", "bin", "slotbus.ts")
const call = (args: string[], env?: Record<string, string | undefined>) =>
  run([process.execPath, SLOTBUS, "call", ...args], { env, timeoutMs: 60_000 })

const buses: SlotBus[] = []
afterEach(async () => {
  await stopAll()
  for (const b of buses.splice(0)) await b.close({ drain: false })
})

async function app(workers = 1): Promise<{ bus: SlotBus; procs: Child[] }> {
  const bus = await SlotBus.listen(busName("call"))
  buses.push(bus)
  const procs: Child[] = []
  for (let i = 0; i < workers; i++) procs.push(await spawnWorker(bus.name))
  await bus.waitForWorkers(workers)
  return { bus, procs }
}

/** The control socket's file in the socket directory (docs/PROTOCOL.md §1.1, §14). */
const ctlPath = (name: string) => freeHostName("slotbus-ctl.", name).path

/** A raw client of the control socket, as `slotbus call` speaks it. */
async function raw(name: string, bytes: Uint8Array | string): Promise<string> {
  const { promise, resolve } = Promise.withResolvers<void>()
  let got = ""
  const s = await Bun.connect({
    unix: ctlPath(name),
    socket: {
      data: (_s, d) => void (got += Buffer.from(d).toString("latin1")),
      close: () => resolve(),
      error: () => resolve(),
    },
  })
  s.write(bytes)
  await promise
  return got
}
const frame = (n: number) => {
  const b = new Uint8Array(4)
  new DataView(b.buffer).setUint32(0, n, true)
  return b
}
const request = (head: object, body = "") => {
  const line = new TextEncoder().encode(`${JSON.stringify(head)}\n`)
  const bytes = new TextEncoder().encode(body)
  return Buffer.concat(body ? [line, frame(bytes.length), bytes, frame(0)] : [line, frame(0)])
}

describe("slotbus call", () => {
  test("a second process gets a worker's answer: the status and headers with -i, then the body it posted", async () => {
    const { bus, procs } = await app()
    const r = await call([
      bus.name,
      "/greet?x=1",
      "hello there",
      "-i",
      "-H",
      "x-status: 201",
      "-H",
      'x-reply-headers: [["x-mine","yes"]]',
    ])
    expect(r.stderr).toBe("")
    expect(r.code).toBe(0)
    const [head, body] = r.stdout.split("\n\n")
    expect(head!.split("\n")[0]).toBe("HTTP 201")
    expect(head).toContain("x-mine: yes")
    expect(head).toContain(`x-pid: ${procs[0]!.pid}`)
    expect(head).toContain("x-path: /greet?x=1")
    expect(body).toBe("hello there")
    const described = await call([bus.name, "/describe", "-H", "x-a:b"])
    expect(described.code).toBe(0)
    expect(JSON.parse(described.stdout)).toMatchObject({ method: "GET", path: "/describe", headers: { "x-a": "b" } })
    const piped = await run([process.execPath, SLOTBUS, "call", bus.name, "/echo", "-"], { stdin: "from stdin" })
    expect(piped).toMatchObject({ code: 0, stdout: "from stdin" })
    const big = await call([bus.name, "/large?bytes=3000000"])
    expect(big.code).toBe(0)
    expect(big.stdout.length).toBe(3_000_000)
  })

  test("an answer of 400 or more exits 1 with its status; a handler that throws exits 3 with the bus's error", async () => {
    const { bus } = await app()
    const missing = await call([bus.name, "/x", "-H", "x-status:404"])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toContain(`the bus "${bus.name}" answered 404`)
    const thrown = await call([bus.name, "/fail", "-H", "x-message:broken on purpose"])
    expect(thrown.code).toBe(3)
    expect(thrown.stderr).toContain("broken on purpose")
    // the worker's words (another host's, over NATS) reach the terminal with their controls escaped
    const escapes = await call([bus.name, "/fail?controls", "-H", "x-message:red"])
    expect(escapes.code).toBe(3)
    expect(escapes.stderr).toContain("red \\x1b[31m \\u202e")
    expect(escapes.stderr.includes("\x1b") || escapes.stderr.includes("\u202e")).toBe(false)
  })

  test("a call to a bus that does not exist exits 3 saying no bus of that name listens here", async () => {
    const name = busName("nobus")
    const r = await call([name, "/x"])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(`no bus named "${name}" is listening on this host`)
    expect(r.stderr).not.toContain("    at ")
  })

  test("the control socket goes with the bus: after close() a call finds no bus", async () => {
    const { bus } = await app()
    expect((await call([bus.name, "/x"])).code).toBe(0)
    await bus.close({ drain: false })
    const r = await call([bus.name, "/x"])
    expect(r.code).toBe(3)
    expect(r.stderr).toContain("no bus named")
  })

  test("a worker killed while it holds the call gives a clear WorkerGoneError, exit 3", async () => {
    const { bus, procs } = await app()
    const child = spawn([process.execPath, SLOTBUS, "call", bus.name, "/slow", "-H", "x-delay-ms: 30000"])
    await until(() => bus.workers.some((w) => w.inFlight > 0), "the call to reach the worker")
    await procs[0]!.kill("SIGKILL")
    expect(await child.exited).toBe(3)
    expect(child.stderr).toMatch(/WorkerGoneError/)
    expect(child.stderr).toMatch(/worker/i)
  })

  test("a worker killed in the middle of a streamed answer: the answer is 'cut off', exit 3", async () => {
    const { bus, procs } = await app()
    const child = Bun.spawn([process.execPath, SLOTBUS, "call", bus.name, "/endless"], {
      stdout: "pipe",
      stderr: "pipe",
    })
    try {
      // the answer has begun: its first bytes reached the tool's stdout (a loaded machine may take a while)
      const out = child.stdout.getReader()
      expect((await out.read()).done).toBe(false)
      void (async () => {
        while (!(await out.read()).done) {}
      })()
      await procs[0]!.kill("SIGKILL")
      expect(await child.exited).toBe(3)
      expect(await new Response(child.stderr).text()).toContain("the answer was cut off")
    } finally {
      child.kill("SIGKILL")
    }
  }, 30_000)

  test.skipIf(process.platform !== "linux")(
    "the bus refuses a request whose line or body is past its bound, or that is not JSON, and says why",
    async () => {
      const { bus } = await app()
      const long = await raw(bus.name, `{"v":1,"path":"/${"x".repeat(70_000)}"}\n`)
      expect(JSON.parse(long)).toMatchObject({ type: "TooLarge" })
      const junk = await raw(bus.name, "not json\n")
      expect(JSON.parse(junk)).toMatchObject({ type: "BadRequest" })
      const noPath = await raw(bus.name, request({ v: 1, path: "no-slash" }))
      expect(JSON.parse(noPath)).toMatchObject({ type: "BadRequest", error: expect.stringContaining("path") })
      // four connections that never finish their request hold every place: a fifth is turned away, and served
      // again once they go
      const held = await Promise.all(
        [1, 2, 3, 4].map(() => Bun.connect({ unix: ctlPath(bus.name), socket: { data() {} } })),
      )
      try {
        // (a probe the bus accepts before the four is simply served)
        await until(
          async () => (await raw(bus.name, request({ v: 1, path: "/x" }))).includes('"type":"Busy"'),
          "a fifth connection to be turned away",
        )
      } finally {
        for (const h of held) h.end()
      }
      await until(async () => !(await raw(bus.name, request({ v: 1, path: "/x" }))).includes("Busy"), "a place again")
      const ok = await raw(bus.name, request({ v: 1, method: "POST", path: "/echo" }, "abc"))
      const [head, ...rest] = ok.split("\n")
      expect(JSON.parse(head!)).toMatchObject({ status: 200 })
      expect(rest.join("\n")).toContain("abc")
      expect(rest.join("\n")).toContain('{"ok":true}')
    },
  )
})

const skipUid = whyNotAsNobody(SLOTBUS)
if (skipUid) console.warn(`call-cli uid tests skipped: ${skipUid}`)

describe.skipIf(skipUid !== null)(`slotbus call as uid ${NOBODY}`, () => {
  test("is refused: the tool will not talk to another user's bus, and the bus closes a raw connection unanswered", async () => {
    const { bus, procs } = await app()
    const served = async () => JSON.parse((await call([bus.name, "/stats"])).stdout) as { served: number; pid: number }
    const before = (await served()).served
    const r = await run(asNobody([process.execPath, SLOTBUS, "call", bus.name, "/x"]), {
      env: nobodyEnv,
      timeoutMs: 60_000,
    })
    expect(r.code).toBe(3)
    // the socket directory is private (docs/PROTOCOL.md §1.1): another uid does not even find the bus
    expect(r.stderr).toContain("no bus named")
    // a client that skips the tool and names the file: the directory does not let it in, and no worker sees it
    const script = `let got = 0
try {
  const s = await Bun.connect({ unix: ${JSON.stringify(ctlPath(bus.name))}, socket: { data(_s, d) { got += d.length }, close() { console.log("closed, got " + got); process.exit(0) } } })
  s.write(Buffer.from(${JSON.stringify(request({ v: 1, method: "POST", path: "/stats" }, "x").toString("base64"))}, "base64"))
} catch (e) { console.log("refused " + e.code + ", got " + got) }`
    const rawAsNobody = await run(asNobody([process.execPath, "-e", script]), { env: nobodyEnv, timeoutMs: 30_000 })
    expect(rawAsNobody.stdout.trim()).toBe("refused EACCES, got 0")
    expect((await served()).served).toBe(before + 1) // the first /stats call only
    expect(procs[0]!.running).toBe(true)
  })
})
