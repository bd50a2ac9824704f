// Canaries for Bun's quirks (src/runtime/bun/quirks.ts): each asserts the quirk is still there, on real processes and
// sockets, and fails when a Bun release fixes it, naming the workaround that can then go. No timing: each counts
// send calls, reads what a process printed or what a call left on disk.
import { afterEach, expect, test } from "bun:test"
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { connect } from "node:net"
import { join } from "node:path"
import { BUN_QUIRKS } from "../../src/runtime/bun/quirks.ts"
import { NODE_QUIRKS } from "../../src/runtime/node/quirks.ts"
import type { Quirk } from "../../src/runtime/index.ts"
import { run as runCmd, spawn, stopAll } from "../support/helpers.ts"
import { findNode, NODE_INSTALL } from "../support/runtime/node.ts"
import { sendsPerAnswer, straceSkip, straced, tracees } from "../support/strace.ts"

const cleanup: (() => void)[] = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) f()
  await stopAll()
})

/** A fresh directory, removed after the test. */
function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-quirk-"))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Fails, saying what can go, when Bun no longer shows the quirk. */
function stillThere(quirk: Quirk, shown: boolean, measured: string) {
  if (!shown)
    throw new Error(
      `Bun ${Bun.version} no longer shows the quirk "${quirk.what}" (seen in ${quirk.seenIn}; ${measured}). ` +
        `Its workaround can go: ${quirk.workaround}; then drop its entry in src/runtime/bun/quirks.ts and this canary.`,
    )
}

/** Runs a script of `source` to its end: its exit code and stdout. */
async function run(dir: string, name: string, source: string): Promise<{ code: number; out: string }> {
  const file = join(dir, name)
  writeFileSync(file, source)
  const child = spawn([process.execPath, file])
  const code = await child.exited
  return { code, out: child.lines.join("\n") }
}

test.skipIf(straceSkip !== null)(
  "LATE_WRITE: Bun.serve sends a 40 KB Response resolved a turn late in more than 5 send calls",
  async () => {
    const dir = scratch()
    const server = join(dir, "late-server.ts")
    writeFileSync(
      server,
      `const bytes = new Uint8Array(40_000).fill(120)
const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Promise((r) => setImmediate(() => r(new Response(bytes)))) })
process.on("SIGTERM", () => process.exit(0))
console.log("ready " + s.port + " " + process.pid)
`,
    )
    const log = join(dir, "strace.log")
    const strace = straced(log, [process.execPath, server])
    cleanup.push(() => {
      for (const pid of tracees(strace.pid)) process.kill(pid, "SIGKILL") // strace's death leaves them running
    })
    const [, port, pid] = await strace.waitLine(/^ready (\d+) (\d+)$/, 20_000)
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/`)
      expect((await res.arrayBuffer()).byteLength).toBe(40_000)
    }
    process.kill(Number(pid), "SIGTERM")
    expect(await strace.exited).toBe(0)
    const { answers, sends } = sendsPerAnswer(log)
    expect(answers).toBe(10)
    // 1.4.5: ~15 a answer (each piece of the head its own sendto); fixed (corked, as in the callback's turn): 1–2
    stillThere(BUN_QUIRKS.LATE_WRITE, sends > 5 * answers, `${sends} send calls for ${answers} answers`)
  },
  60_000,
)

test("TIMER_OVERFLOW: setTimeout past 2^31−1 ms fires at once", async () => {
  const dir = scratch()
  // the overflowing timer fires before the 2 s one, or, fixed, the 2 s one ends the process
  const { code, out } = await run(
    dir,
    "timer.ts",
    `setTimeout(() => (console.log("fired"), process.exit(0)), 2 ** 31)
setTimeout(() => (console.log("waited"), process.exit(0)), 2000)
`,
  )
  expect(code).toBe(0)
  stillThere(BUN_QUIRKS.TIMER_OVERFLOW, out === "fired", `a timer of 2^31 ms printed "${out}"`)
}, 30_000)

test("UNCAUGHT_KEEPS_ALIVE: an uncaught error does not end a process whose top-level await is pending", async () => {
  const dir = scratch()
  const body = `setTimeout(() => { throw new Error("a bug") }, 1)
setTimeout(() => (console.log("alive"), process.exit(0)), 500)
`
  // the control: without the pending await, Bun ends the process on the error, as Node does
  const control = await run(dir, "plain.ts", body)
  expect(control).toEqual({ code: 1, out: "" })
  const awaiting = await run(dir, "awaiting.ts", `${body}await new Promise(() => {})\n`)
  stillThere(
    BUN_QUIRKS.UNCAUGHT_KEEPS_ALIVE,
    awaiting.code === 0 && awaiting.out === "alive",
    `exit code ${awaiting.code}, printed "${awaiting.out}"`,
  )
}, 30_000)

test("NO_UNIX_DATAGRAM: udpSocket given a unix path binds no unix socket", async () => {
  const path = join(scratch(), "notify.sock")
  let made = false
  try {
    const socket = await Bun.udpSocket({ unix: path } as unknown as Parameters<typeof Bun.udpSocket>[0])
    made = existsSync(path)
    socket.close()
  } catch {} // refused: no unix datagram socket either
  stillThere(BUN_QUIRKS.NO_UNIX_DATAGRAM, !made, `udpSocket({ unix }) made ${path}`)
})

test("STREAM_ERROR_PRINTED: Bun.serve prints the Error a Response body's stream fails with", async () => {
  const dir = scratch()
  const server = join(dir, "stream-error.ts")
  // a server and its one client in one process: the client sees a cut connection, the server's stderr the Error
  writeFileSync(
    server,
    `const s = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response(new ReadableStream({
  start(c) { c.enqueue(new Uint8Array([97])); setTimeout(() => c.error(new Error("canary: the body failed")), 5) },
})) })
const res = await fetch("http://127.0.0.1:" + s.port + "/")
await res.text().catch(() => {})
await Bun.sleep(100)
s.stop(true)
console.log("done")
`,
  )
  const child = spawn([process.execPath, server])
  expect(await child.exited).toBe(0)
  expect(child.lines).toEqual(["done"])
  const printed = child.stderr.includes("canary: the body failed")
  stillThere(BUN_QUIRKS.STREAM_ERROR_PRINTED, printed, `stderr: ${JSON.stringify(child.stderr.slice(0, 300))}`)
}, 30_000)

test("NO_GC_EVENTS: PerformanceObserver has no gc entries", () => {
  const types = PerformanceObserver.supportedEntryTypes
  stillThere(BUN_QUIRKS.NO_GC_EVENTS, !types.includes("gc"), `supportedEntryTypes: ${types.join(", ")}`)
})

test("STRING_RESPONSE_UNTYPED: a string Response's headers have no Content-Type, which Bun.serve sends; its blob is typed as a bytes one's", async () => {
  const quirk = BUN_QUIRKS.STRING_RESPONSE_UNTYPED
  using server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: (req) => (req.url.endsWith("/text") ? new Response("text") : new Response(new Uint8Array([65]))),
  })
  const served = await fetch(`${server.url}text`).then((r) => r.headers.get("content-type"))
  const inHeaders = new Response("text").headers.get("content-type")
  const [text, bytes] = await Promise.all([new Response("text").blob(), new Response(new Uint8Array([65])).blob()])
  const bytesServed = await fetch(`${server.url}bytes`).then((r) => r.headers.get("content-type"))
  stillThere(
    quirk,
    inHeaders === null &&
      served?.startsWith("text/plain") === true &&
      text.type === bytes.type &&
      bytesServed !== served,
    `headers ${inHeaders}, served ${served}; blob types ${text.type} and ${bytes.type}, bytes served ${bytesServed}`,
  )
})

test("SERVE_PIPELINE_CLOSES: two pipelined GETs to an async handler get nothing, the connection closed", async () => {
  const quirk = BUN_QUIRKS.SERVE_PIPELINE_CLOSES
  using server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch: async () => {
      await Bun.sleep(2)
      return new Response("ok")
    },
  })
  const two = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n"
  const answers: number[] = []
  for (let i = 0; i < 5; i++) {
    const { promise, resolve } = Promise.withResolvers<string>()
    let got = ""
    const s = connect(server.port!, "127.0.0.1", () => s.write(two))
    s.on("data", (d) => (got += d))
    s.on("close", () => resolve(got))
    s.on("error", () => resolve(got))
    const guard = setTimeout(() => s.destroy(), 2000)
    answers.push((await promise).split("HTTP/1.1 200").length - 1)
    clearTimeout(guard)
  }
  stillThere(
    quirk,
    answers.every((n) => n === 0),
    `answers on 5 connections: ${answers.join(", ")}`,
  )
})

/** CONNECT_FD_UNTYPED's canary is a type check, never run: `bunx tsc --noEmit` fails here once Bun's types take fd. */
export function connectFdUntyped(fd: number) {
  // @ts-expect-error BUN_QUIRKS.CONNECT_FD_UNTYPED: when this errors as unused, drop the cast in connectFd (src/runtime/bun/net.ts)
  return Bun.connect({ fd, socket: { data() {} } })
}

// Node's quirks (src/runtime/node/quirks.ts), each asserted on a Node process: a canary fails once a Node release no
// longer shows it. NO_PROMISE_PEEK and FFI_CALLBACK_NO_MICROTASKS are held by the runtime contract and node-worker tests.
const node = findNode()
if (!node) console.log(`skipping Node's quirk canaries: no Node >= 26.1 here (${NODE_INSTALL})`)

/** Fails, saying what can go, when Node no longer shows the quirk. */
function stillOnNode(quirk: Quirk, shown: boolean, measured: string) {
  if (!shown)
    throw new Error(
      `This Node no longer shows the quirk "${quirk.what}" (seen in ${quirk.seenIn}; ${measured}). ` +
        `Its workaround can go: ${quirk.workaround}; then drop its entry in src/runtime/node/quirks.ts and this canary.`,
    )
}

test.skipIf(node === null)(
  "Node FFI_EXPERIMENTAL_WARNING: taking node:ffi prints an ExperimentalWarning",
  async () => {
    const r = await runCmd([node!, "-e", 'process.getBuiltinModule("node:ffi"); console.log("taken")'], {
      timeoutMs: 30_000,
    })
    expect([r.code, r.stdout.trim()]).toEqual([0, "taken"])
    stillOnNode(NODE_QUIRKS.FFI_EXPERIMENTAL_WARNING, /ExperimentalWarning: FFI/.test(r.stderr), `stderr: ${r.stderr}`)
  },
  30_000,
)

test.skipIf(node === null)(
  "Node TIMER_OVERFLOW: a setTimeout of 2^31 ms fires at once",
  async () => {
    const script =
      'setTimeout(() => (console.log("fired"), process.exit(0)), 2 ** 31)\n' +
      'setTimeout(() => (console.log("waited"), process.exit(0)), 2000)'
    const r = await runCmd([node!, "-e", script], { timeoutMs: 30_000 })
    expect(r.code).toBe(0)
    stillOnNode(
      NODE_QUIRKS.TIMER_OVERFLOW,
      r.stdout.trim() === "fired",
      `a timer of 2^31 ms printed "${r.stdout.trim()}"`,
    )
  },
  30_000,
)
