// No request ends a process: raw bytes over TCP (odd methods, Host values, targets, header names and values, chunk
// framings) to every HTTP listener slotbus ships, each in its own process: nodeHandler over a real bus and worker,
// and serveStatus, in a Node front and in a Bun front (node:http, and Bun.serve for Bun's status), and the HTTP hub
// (on Bun.serve under Bun, on node:http under Node).
// Each request gets an HTTP answer or a clean close, and the process still answers a normal request afterwards.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import fc from "fast-check"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, type Child, FIXTURES, spawn, spawnWorker, stopAll } from "../support/helpers.ts"
import { startHubProcess, startWorker } from "../support/http/http.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node fronts' request fuzz: no Node >= 26.1 here (${NODE_INSTALL})`)

/** What came back for one request: its status, or "close" for a connection ended with no answer. */
type Answer = number | "close"

/**
 * Sends `bytes` on a fresh connection and reads the status line or the close. With `endAfterMs`, a request the
 * server still waits on then (an incomplete body, a fuzzed framing) is half-closed, so it ends one way or the other.
 */
function send(port: number, bytes: Uint8Array, endAfterMs?: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = connect(port, "127.0.0.1")
    let got = ""
    const timers = [
      setTimeout(() => {
        sock.destroy()
        reject(new Error(`no answer and no close in 60 s to ${JSON.stringify(Buffer.from(bytes).toString("latin1"))}`))
      }, 60_000),
    ]
    const done = (a: Answer) => {
      for (const t of timers) clearTimeout(t)
      sock.destroy()
      resolve(a)
    }
    sock.on("data", (d: Buffer) => {
      got += d.toString("latin1")
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(got)
      if (m) done(Number(m[1]))
      else if (got.length >= 13) {
        for (const t of timers) clearTimeout(t)
        sock.destroy()
        reject(new Error(`not an HTTP answer: ${JSON.stringify(got.slice(0, 200))}`))
      }
    })
    sock.on("error", () => {}) // a reset: the close says it
    sock.on("close", () => done("close"))
    sock.on("connect", () => {
      sock.write(bytes)
      if (endAfterMs !== undefined) timers.push(setTimeout(() => sock.end(), endAfterMs))
    })
  })
}

const latin1 = (s: string) => new Uint8Array(Buffer.from(s, "latin1"))

interface Target {
  /** What it is, for the test's name. */
  name: string
  port: number
  /** The process that serves it. */
  proc: Child
  /** A path it answers 200, for the normal request after the fuzz. */
  ok: string
  /** Whether it may only close where another listener answers (Bun.serve closes on some requests it refuses). */
  closes: boolean
}

/** Known-bad requests and what each listener may answer (`OK` is the target's own path); their good Host is
 * localhost, as serveStatus on a loopback address answers no other. */
const TABLE: [string, string, Answer[]][] = [
  ["TRACE, refused by Node's Request", "TRACE OK HTTP/1.1\r\nHost: localhost\r\n\r\n", [501]],
  ["TRACE with a body", "TRACE OK HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc", [501]],
  ["TRACK", "TRACK OK HTTP/1.1\r\nHost: localhost\r\n\r\n", [400, "close"]],
  ["CONNECT", "CONNECT h:80 HTTP/1.1\r\nHost: h:80\r\n\r\n", [501, "close"]],
  ["a Host with a space", "GET OK HTTP/1.1\r\nHost: a b\r\n\r\n", [400]],
  ["a Host with an unclosed bracket", "GET OK HTTP/1.1\r\nHost: [zz\r\n\r\n", [400]],
  ["a Host with a port past 65535", "GET OK HTTP/1.1\r\nHost: a:99999\r\n\r\n", [400]],
  ["a Host with credentials", "GET OK HTTP/1.1\r\nHost: u:p@h\r\n\r\n", [400]],
  ["a Host with a path", "GET OK HTTP/1.1\r\nHost: h/p\r\n\r\n", [400]],
  ["a Host with a fragment", "GET OK HTTP/1.1\r\nHost: h#f\r\n\r\n", [400]],
  ["an empty Host", "GET OK HTTP/1.1\r\nHost: \r\n\r\n", [400]],
  ["two Hosts", "GET OK HTTP/1.1\r\nHost: localhost\r\nHost: i\r\n\r\n", [400]],
  ["a bad Host on a POST with a body", "POST OK HTTP/1.1\r\nHost: a b\r\nContent-Length: 5\r\n\r\nhello", [400]],
  ["OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n", [400]],
  ["an absolute-form target", "GET http://h.example:8080OK HTTP/1.1\r\nHost: localhost\r\n\r\n", [200]],
  ["an HTTP/1.0 request without Host", "GET OK HTTP/1.0\r\n\r\n", [200]],
  ["an IPv6 Host", "GET OK HTTP/1.1\r\nHost: [::1]:9\r\n\r\n", [200]],
  ["a header value of obs-text", "GET OK HTTP/1.1\r\nHost: localhost\r\nX-A: \xff\xfe\r\n\r\n", [200]],
  ["a header value with a control", "GET OK HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n", [400, "close"]],
  [
    "a bad chunk size",
    "POST OK HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n",
    [400, 405, "close"], // 405: a route that takes no POST answers before the body is read
  ],
]

const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "TRACK", "CONNECT", "PROPFIND"]
const chars = (min: number, max: number, length: number) =>
  fc.array(fc.integer({ min, max }), { maxLength: length }).map((cs) => String.fromCharCode(...cs))
/** Mostly `usual`, one time in five `odd`: each part of a request odd alone, so most requests reach the listener. */
const mostly = <T>(usual: fc.Arbitrary<T>, odd: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: usual, weight: 4 }, { arbitrary: odd, weight: 1 })
const hex = (data: string) => data.length.toString(16)
const token = (length: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9!#$%&'*+.^_\`|~-]{1,${length}}$`))

/** A raw request: a well-formed one with, often, one part or more made odd. */
const rawRequest = (ok: string) =>
  fc
    .record({
      method: mostly(fc.constantFrom(...METHODS), fc.oneof(token(8), chars(0x20, 0xff, 6))),
      target: mostly(
        fc.constantFrom(ok, `${ok}?q=1&r`, `${ok}#f`),
        fc.oneof(
          fc.constantFrom("*", "/", "//x", "?", "/%zz", "/a/../b", "http://h/x", `http://u:p@h${ok}`, `HTTP://H${ok}`),
          chars(0x21, 0x7e, 12).map((s) => `/${s}`),
          chars(0x20, 0xff, 12),
        ),
      ),
      version: mostly(fc.constant("HTTP/1.1"), fc.constantFrom("HTTP/1.0", "HTTP/2.0", "HTTP/1.x", "")),
      hosts: mostly(
        fc.constant<string[]>(["localhost"]),
        fc.array(
          fc.oneof(
            fc.constantFrom("h:80", "[::1]", "[zz", "a b", "a:99999", "u:p@h", "", "h:", "h/p", "h?q", "h#f", "%zz"),
            chars(0x20, 0xff, 16),
          ),
          { maxLength: 2 },
        ),
      ),
      headers: fc.array(
        fc.tuple(mostly(token(10), chars(0x20, 0xff, 8)), mostly(chars(0x20, 0x7e, 16), chars(0, 0xff, 16))),
        { maxLength: 3 },
      ),
      body: fc.oneof(
        fc.constant({ head: "", bytes: "" }),
        fc.tuple(chars(0x20, 0xff, 20), mostly(fc.constant(-1), fc.integer({ min: 0, max: 30 }))).map(([b, n]) => ({
          head: `Content-Length: ${n < 0 ? b.length : n}\r\n`,
          bytes: b,
        })),
        fc
          .array(fc.tuple(chars(0x20, 0xff, 12), mostly(fc.constant(""), chars(0x20, 0x7e, 4))), { maxLength: 3 })
          .map((chunks) => ({
            head: "Transfer-Encoding: chunked\r\n",
            // an odd size is one that is no hex count of the data that follows
            bytes: `${chunks.map(([data, odd]) => `${odd || hex(data)}\r\n${data}\r\n`).join("")}0\r\n\r\n`,
          })),
      ),
    })
    .map(({ method, target, version, hosts, headers, body }) => {
      const lines = [`${method} ${target} ${version}`, ...hosts.map((h) => `Host: ${h}`)]
      for (const [n, v] of headers) lines.push(`${n}: ${v}`)
      return `${lines.join("\r\n")}\r\n${body.head}\r\n${body.bytes}`
    })

let lib = ""
const dirs: string[] = []
const built: { remove(): void }[] = []
beforeAll(async () => {
  lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  for (const b of built) b.remove()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

/** A front (node-http-front.ts under Node or Bun): nodeHandler over a bus with an echo worker, and serveStatus. */
async function front(runtime: "node" | "bun"): Promise<{ procs: Child[]; targets: Target[] }> {
  const name = busName("fuzzfront")
  let cmd: string[]
  if (runtime === "node") {
    const b = buildForNode("node-http-front.ts")
    built.push(b)
    cmd = [node!, ...nodeFlags(node!), b.entry]
  } else cmd = [process.execPath, join(FIXTURES, "runtime/node-http-front.ts")]
  const proc = spawn([...cmd, name, "--status=tcp"], {
    env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
    stdin: "pipe",
  })
  const m = await proc.waitLine(/^listening (\d+) http:\/\/127\.0\.0\.1:(\d+)$/, 30_000)
  const worker = await spawnWorker(name)
  const status = runtime === "node" ? "serveStatus on node:http" : "serveStatus on Bun.serve"
  return {
    procs: [proc, worker],
    targets: [
      { name: `nodeHandler on ${runtime}'s node:http`, port: Number(m[1]), proc, ok: "/ok", closes: false },
      { name: status, port: Number(m[2]), proc, ok: "/status.json", closes: runtime === "bun" },
    ],
  }
}

/** The HTTP hub (`slotbus hub`: Bun.serve under Bun, node:http under Node) with a shop worker (Bun's). */
async function hub(runtime: "node" | "bun"): Promise<{ procs: Child[]; targets: Target[] }> {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-fuzz-hub-"))
  dirs.push(dir)
  const tokenFile = join(dir, "token")
  const args = ["--port", "0", "--token-file", tokenFile]
  let proc: Child
  if (runtime === "node") {
    const b = buildForNode("http/http-hub.ts")
    built.push(b)
    proc = spawn([node!, ...nodeFlags(node!), b.entry, ...args], {
      env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
    })
  } else proc = startHubProcess(args)
  const m = await proc.waitLine(/listening on http:\/\/127\.0\.0\.1:(\d+)/, 30_000)
  const worker = await startWorker(`http://127.0.0.1:${m[1]}`, "shop", [`--token-file=${tokenFile}`])
  const name = runtime === "node" ? "the HTTP hub on node:http" : "the HTTP hub on Bun.serve"
  return {
    procs: [proc, worker],
    targets: [{ name, port: Number(m[1]), proc, ok: "/items/7", closes: runtime === "bun" }],
  }
}

/** bus.fetch behind Bun.serve, as the README's first example writes it (test/support/core/fetch-front.ts). */
async function busFetchFront(): Promise<{ procs: Child[]; targets: Target[] }> {
  const proc = spawn([process.execPath, join(FIXTURES, "core/fetch-front.ts")])
  const m = await proc.waitLine(/^ready (\d+) \d+$/, 30_000)
  return {
    procs: [proc],
    targets: [{ name: "bus.fetch behind Bun.serve", port: Number(m[1]), proc, ok: "/big/4/4", closes: true }],
  }
}

/** The normal request afterwards: answered 200, by a process that has not exited. */
async function stillServes(t: Target) {
  let exited: number | null = null
  void t.proc.exited.then((c) => (exited = c))
  const res = await fetch(`http://127.0.0.1:${t.port}${t.ok}`)
  expect([res.status, exited]).toEqual([200, null])
  await res.arrayBuffer()
}

function suite(name: string, start: () => Promise<{ procs: Child[]; targets: Target[] }>, table = true) {
  describe(name, () => {
    let procs: Child[] = []
    let targets: Target[] = []
    beforeAll(async () => {
      ;({ procs, targets } = await start())
    }, 120_000)
    afterAll(async () => {
      for (const p of procs) await p.kill()
    })

    if (table)
      test("each known-bad request is answered (400, 501) or closed, and the process still serves", async () => {
        for (const t of targets) {
          const got: string[] = []
          const want: string[] = []
          for (const [what, raw, answers] of TABLE) {
            const a = await send(t.port, latin1(raw.replaceAll("OK", t.ok)))
            const allowed = t.closes && answers[0] !== 200 ? [...answers, "close"] : answers
            got.push(`${t.name}: ${what}: ${allowed.includes(a) ? "as allowed" : a}`)
            want.push(`${t.name}: ${what}: as allowed`)
          }
          expect(got).toEqual(want)
          await stillServes(t)
        }
      }, 120_000)

    test("fuzzed raw requests each get an HTTP answer or a close, and the process still serves", async () => {
      for (const t of targets) {
        const answers = new Map<Answer, number>()
        await fc.assert(
          fc.asyncProperty(rawRequest(t.ok), async (raw) => {
            const a = await send(t.port, latin1(raw), 500)
            answers.set(a, (answers.get(a) ?? 0) + 1)
          }),
          // the plain request first, as a run of its own: 150 fuzzed ones held none the listener serves once in CI
          { numRuns: 150, examples: [[`GET ${t.ok} HTTP/1.1\r\nHost: localhost\r\n\r\n`]] },
        )
        // the requests reach the listener: some are served, some refused (not every one closed by the parser)
        expect([...answers.keys()].some((a) => a !== "close" && a < 300)).toBe(true)
        expect([...answers.keys()].some((a) => a !== "close" && a >= 400)).toBe(true)
        await stillServes(t)
      }
    }, 300_000)
  })
}

if (node !== null) suite("a Node front: nodeHandler and serveStatus on node:http", () => front("node"))
suite("a Bun front: nodeHandler on Bun's node:http, serveStatus on Bun.serve", () => front("bun"))
suite("the HTTP hub under Bun", () => hub("bun"))
if (node !== null) suite("the HTTP hub under Node", () => hub("node"))

// the app's own server, not slotbus's listener: Bun.serve hands every request on, so only bus.fetch's part is checked
suite("bus.fetch behind Bun.serve", busFetchFront, false)
test("bus.fetch routes Bun.serve's bare-path Request (no Host, or one Bun could not use) by its path", async () => {
  const { procs, targets } = await busFetchFront()
  try {
    const [t] = targets
    for (const host of ["", "Host: a b\r\n", "Host: [zz\r\n"])
      expect(await send(t!.port, latin1(`GET ${t!.ok} HTTP/1.0\r\n${host}\r\n`))).toBe(200)
  } finally {
    for (const p of procs) await p.kill()
  }
}, 60_000)
