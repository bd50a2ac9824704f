// HTTP from a Node 26 front (issue 67), tested as a user runs it: a Node process serving slotbus's status
// (serveStatus on node:http: scraped with fetch, checked by promtool), and bus.fetch behind node:http (nodeHandler)
// and Hono's Node server, to a Bun worker and a Node worker: JSON, 1 MB each way, streams, a client that hangs up
// mid-body, a worker killed -9 mid-request.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { createHash, randomBytes } from "node:crypto"
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs"
import { connect as tcpConnect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, type Child, eventually, spawn, spawnWorker, stopAll } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"
import { rawAnswer } from "../support/runtime/raw-http.ts"
import { promtool } from "../support/status/prometheus.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

const node = findNode()
if (!node) console.log(`skipping the Node HTTP tests: no Node >= 26.1 here (${NODE_INSTALL})`)
const promtoolSkip = toolSkipReason("promtool")
sayWhySkipped("promtool check metrics of a Node front's status", promtoolSkip)

// Hono's Node server comes with a dev dependency (@modelcontextprotocol/sdk's): its tests skip without it
const honoSkip = (() => {
  try {
    import.meta.resolve("@hono/node-server")
    return null
  } catch {
    return "@hono/node-server is not installed (npm i -D @hono/node-server)"
  }
})()
sayWhySkipped("bus.fetch behind Hono's Node server", honoSkip)

const builds = new Map<string, ReturnType<typeof buildForNode>>()
/** A fixture of test/support/runtime built for Node, once per file. */
const entry = (fixture: string) => {
  let b = builds.get(fixture)
  if (!b) builds.set(fixture, (b = buildForNode(fixture)))
  return b.entry
}
let lib: string
beforeAll(async () => {
  if (node !== null) lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  for (const b of builds.values()) b.remove()
})

const nodeEnv = () => ({ ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" })

/** A Node front (node-http-front.ts, or node-hono-front.ts): its HTTP base URL and its status URL ("-" without one). */
async function nodeFront(name: string, args: string[] = [], fixture = "node-http-front.ts") {
  const child = spawn([node!, ...nodeFlags(node!), entry(fixture), name, ...args], {
    env: nodeEnv(),
    stdin: "pipe",
  })
  const m = await child.waitLine(/^listening (\d+) (\S+)$/, 30_000).catch((e) => {
    throw new Error(`the Node front did not start: ${e}\n${child.output}`)
  })
  return { child, base: `http://127.0.0.1:${m[1]}`, status: m[2]! }
}

async function nodeWorker(name: string): Promise<Child> {
  const child = spawn([node!, ...nodeFlags(node!), entry("node-worker.ts"), name, "--fetch"], { env: nodeEnv() })
  await child.waitLine(/^ready /, 30_000)
  return child
}

/** The front's requests in flight at its bus, asked on stdin. */
async function inflight(front: Child): Promise<number> {
  const from = front.lines.length
  front.write("inflight\n")
  let n = Number.NaN
  const seen = () => {
    const line = front.lines.slice(from).find((l) => l.startsWith("inflight "))
    if (line !== undefined) n = Number(line.slice(9))
    return line !== undefined
  }
  if (!(await eventually(seen, 30_000))) throw new Error(`no answer to "inflight":\n${front.output}`)
  return n
}
async function untilInflight(front: Child, want: number): Promise<boolean> {
  const end = performance.now() + 30_000
  while (performance.now() < end) if ((await inflight(front)) === want) return true
  return false
}

async function closeFront(front: Child) {
  front.write("close\n")
  expect(await front.exited).toBe(0)
}

const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex")

describe.skipIf(node === null)("serveStatus in a Node process (node:http)", () => {
  test("on a TCP port: /metrics passes promtool with the Node front's and its worker's series, /status.json, /stream", async () => {
    const name = busName("nodestatus")
    const { child: front, status } = await nodeFront(name, ["--status=tcp"])
    try {
      const worker = await spawnWorker(name)
      expect(await untilInflight(front, 0)).toBe(true)
      const metrics = await fetch(`${status}/metrics`)
      expect(metrics.status).toBe(200)
      expect(metrics.headers.get("content-type")).toStartWith("text/plain; version=0.0.4")
      const text = await metrics.text()
      if (promtoolSkip === null) expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
      expect(text).toMatch(new RegExp(`^slotbus_workers\\{bus="${name}"[^}]*\\} 1$`, "m"))
      expect(text).toMatch(/^nodejs_heap_size_used_bytes \d+/m) // the front's own, read under Node
      expect(text).toMatch(new RegExp(`^process_open_fds\\{bus="${name}",worker="0"\\} \\d+$`, "m"))

      const report = (await (await fetch(`${status}/status.json`)).json()) as {
        pid: number
        sections: { kind: string; name: string }[]
      }
      expect(report.pid).toBe(front.pid)
      expect(report.sections.map((s) => [s.kind, s.name])).toEqual([["bus", name]])
      const head = await fetch(`${status}/metrics`, { method: "HEAD" })
      expect([head.status, await head.text()]).toEqual([200, ""])
      const wrong = await fetch(`${status}/metrics`, { method: "POST" })
      expect([wrong.status, wrong.headers.get("allow")]).toEqual([405, "GET, HEAD"])
      expect((await fetch(`${status}/nothing`)).status).toBe(404)

      // the stream's first report comes at once; the viewer leaving ends it at the server (stop() does not wait)
      const ac = new AbortController()
      const stream = await fetch(`${status}/stream`, { signal: ac.signal })
      expect(stream.headers.get("content-type")).toBe("text/event-stream")
      const reader = stream.body!.getReader()
      let seen = ""
      while (!seen.includes("event: status")) seen += new TextDecoder().decode((await reader.read()).value)
      expect(seen).toContain(`"name":"${name}"`)
      ac.abort()
      await worker.kill()
      await closeFront(front)
    } finally {
      await front.kill()
    }
  }, 120_000)

  test("its /metrics text is computed once for the scrapes of metricsMaxAgeMs, at once or after a request", async () => {
    const name = busName("nodestatus")
    const { child: front, base, status } = await nodeFront(name, ["--status=tcp", "--metrics-max-age-ms=600000"])
    try {
      const worker = await spawnWorker(name)
      expect(await untilInflight(front, 0)).toBe(true)
      const requests = (text: string) =>
        Number(new RegExp(`^slotbus_requests_total\\{bus="${name}"\\} (\\d+)$`, "m").exec(text)?.[1])
      const scrapes = await Promise.all(
        Array.from({ length: 8 }, async () => (await fetch(`${status}/metrics`)).text()),
      )
      expect(new Set(scrapes).size).toBe(1) // one computation: the same lag, heap and CPU figures in every answer
      const before = requests(scrapes[0]!)
      expect(before).toBe(0)
      expect((await fetch(`${base}/describe`)).status).toBe(200)
      const after = await (await fetch(`${status}/metrics`)).text()
      expect([requests(after), after === scrapes[0]]).toEqual([before, true]) // the text of a moment ago
      await worker.kill()
      await closeFront(front)
    } finally {
      await front.kill()
    }
  }, 120_000)

  test("on a unix socket: made 0600, scraped over it, removed at stop", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-node-status-"))
    const path = join(dir, "status.sock")
    const { child: front, status } = await nodeFront(busName("nodestatus"), [`--status=unix:${path}`])
    try {
      expect(status).toBe(`unix:${path}`)
      expect(statSync(path).mode & 0o777).toBe(0o600)
      const res = await fetch("http://localhost/metrics", { unix: path })
      expect(res.status).toBe(200)
      const text = await res.text()
      if (promtoolSkip === null) expect(await promtool(text)).toEqual({ code: 0, out: "", err: "" })
      await closeFront(front)
      expect(existsSync(path)).toBe(false)
    } finally {
      await front.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
})

type WorkerKind = "bun" | "node"
const startWorker = (kind: WorkerKind, name: string) => (kind === "bun" ? spawnWorker(name) : nodeWorker(name))
// the echo routes: echo-worker.ts's /hash and node-worker.ts's /echo both answer the body with x-sha256
const ECHO: Record<WorkerKind, string> = { bun: "/hash", node: "/echo" }

/** kill -9 of the worker while it holds a request: the front answers 502 naming WorkerGoneError, nothing hung. */
async function expectGoneMidRequest(kind: WorkerKind, base: string, front: Child, worker: Child) {
  const held = kind === "bun" ? fetch(`${base}/held`, { headers: { "x-delay-ms": "120000" } }) : fetch(`${base}/hold`)
  expect(await untilInflight(front, 1)).toBe(true)
  await worker.kill("SIGKILL")
  const failed = await held
  expect(failed.status).toBe(502)
  expect(await failed.json()).toMatchObject({ error: "bad-gateway", name: "WorkerGoneError" })
}

describe.skipIf(node === null)("bus.fetch behind node:http in a Node front (nodeHandler)", () => {
  for (const kind of ["bun", "node"] as const)
    test(`to a ${kind === "bun" ? "Bun" : "Node"} worker: JSON, 1 MB each way, a stream, hang-ups, a kill -9 mid-request`, async () => {
      const name = busName("nodehttp")
      const { child: front, base } = await nodeFront(name)
      let worker = await startWorker(kind, name)
      try {
        expect(await untilInflight(front, 0)).toBe(true)
        // small JSON: method, path, a header and the body reach the worker
        if (kind === "bun") {
          const res = await fetch(`${base}/describe?x=1`, { method: "PUT", body: "hi", headers: { "x-a": "b" } })
          const seen = (await res.json()) as { method: string; path: string; headers: Record<string, string> }
          expect([seen.method, seen.path, seen.headers["x-a"]]).toEqual(["PUT", "/describe?x=1", "b"])
        } else {
          const res = await fetch(`${base}/json`, { method: "POST", body: "payload", headers: { "x-a": "b" } })
          expect(res.headers.get("content-type")).toStartWith("application/json")
          expect(await res.json()).toEqual({ method: "POST", body: "payload", header: "b" })
        }

        // 1 MB up and the same 1 MB back
        const big = new Uint8Array(randomBytes(1024 * 1024))
        const echoed = await fetch(`${base}${ECHO[kind]}`, { method: "POST", body: big })
        expect(echoed.status).toBe(200)
        expect(echoed.headers.get("x-sha256")).toBe(sha(big))
        const back = new Uint8Array(await echoed.arrayBuffer())
        expect([back.length, sha(back)]).toEqual([big.length, sha(big)])

        // a streamed answer, read as it comes; the client hanging up mid-body cancels it at the worker
        const ac = new AbortController()
        const endless = await fetch(`${base}/endless`, { signal: ac.signal })
        const reader = endless.body!.getReader()
        let got = 0
        while (got < 512 * 1024) got += (await reader.read()).value!.length
        ac.abort()
        await worker.waitLine(/^cancelled \/endless$/, 30_000)
        expect(await untilInflight(front, 0)).toBe(true)

        // a client hanging up mid-way through its request body: nothing is left in flight, the next request works
        const sock = tcpConnect(Number(new URL(base).port), "127.0.0.1")
        await new Promise((r) => sock.once("connect", r))
        sock.write(`POST ${ECHO[kind]} HTTP/1.1\r\nhost: x\r\ncontent-length: 1048576\r\n\r\n`)
        sock.write(big.subarray(0, 100_000))
        await Bun.sleep(200)
        sock.destroy()
        expect(await untilInflight(front, 0)).toBe(true)
        expect(await (await fetch(`${base}${ECHO[kind]}`, { method: "POST", body: "after" })).text()).toBe("after")

        // kill -9 of the worker while it holds the request: a 502 naming WorkerGoneError, nothing hung
        await expectGoneMidRequest(kind, base, front, worker)
        expect(await untilInflight(front, 0)).toBe(true)

        // and the front serves the next worker
        worker = await startWorker(kind, name)
        const again = await fetch(`${base}${ECHO[kind]}`, { method: "POST", body: "again" })
        expect(await again.text()).toBe("again")

        // kill -9 while the answer's body streams: the connection is cut, the client's read fails (no hang, no
        // complete-looking answer), nothing stays in flight
        const streaming = (await fetch(`${base}/endless`)).body!.getReader()
        await streaming.read()
        await worker.kill("SIGKILL")
        const cut = await (async () => {
          for (;;) if ((await streaming.read()).done) return "ended as if complete"
        })().catch(() => "cut")
        expect(cut).toBe("cut")
        expect(await untilInflight(front, 0)).toBe(true)
        await closeFront(front)
      } finally {
        await worker.kill()
        await front.kill()
      }
    }, 180_000)

  test("a whole answer carries its Content-Length, 15–64 KiB too (Bun.serve's late-write workaround is not Node's)", async () => {
    const name = busName("nodelen")
    const { child: front, base } = await nodeFront(name)
    const worker = await nodeWorker(name)
    try {
      for (const size of [1024, 15 * 1024 + 1, 20 * 1024, 64 * 1024, 200 * 1024]) {
        const body = new Uint8Array(randomBytes(size))
        const res = await fetch(`${base}/echo`, { method: "POST", body })
        const back = new Uint8Array(await res.arrayBuffer())
        expect([size, res.status, back.length, sha(back)]).toEqual([size, 200, size, sha(body)])
        if (size > 64 * 1024) continue // more than a slot: the answer streams
        expect([size, res.headers.get("content-length"), res.headers.get("transfer-encoding")]).toEqual([
          size,
          String(size),
          null,
        ])
      }
      await closeFront(front)
    } finally {
      await worker.kill()
      await front.kill()
    }
  }, 120_000)

  test("a target whose URL would name another path (dot segments, %2e, a backslash) is 400; the worker sees the sent paths", async () => {
    const name = busName("nodepath")
    const { child: front, base } = await nodeFront(name)
    const worker = await spawnWorker(name)
    try {
      const port = Number(new URL(base).port)
      for (const target of [
        "/a/../describe",
        "/a/./describe",
        "/a/%2E%2e/describe",
        "/a\\..\\describe",
        "http://h/a/../describe",
      ])
        for (const method of ["GET", "POST"]) {
          const answer = await rawAnswer(port, `${method} ${target} HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nhi`)
          expect([method, target, answer.status, answer.json.error]).toEqual([method, target, 400, "bad-request"])
        }
      // what only looks like one is a path of its own, and reaches the worker as it was sent
      for (const target of ["/x?next=/a/../b", "/x/.../y/..z", "/x/..%2fz", "/x/%2e%2e%2e"]) {
        const answer = await rawAnswer(port, `GET ${target} HTTP/1.1\r\nHost: h\r\n\r\n`)
        expect([answer.status, answer.headers["x-path"]]).toEqual([200, target])
      }
      await closeFront(front)
    } finally {
      await worker.kill()
      await front.kill()
    }
  }, 120_000)

  test("no worker within nodeHandler's fetch timeoutMs: 504 naming TimeoutError, JSON", async () => {
    const { child: front, base } = await nodeFront(busName("nodehttp"), ["--timeout-ms=200"])
    try {
      const res = await fetch(`${base}/x`)
      expect([res.status, res.headers.get("content-type")]).toEqual([504, expect.stringContaining("json")])
      expect(await res.json()).toMatchObject({ error: "timeout", name: "TimeoutError" })
      await closeFront(front)
    } finally {
      await front.kill()
    }
  }, 120_000)

  test("a client that declares a body and stops sending gets a 504 at nodeHandler's timeoutMs, the worker untouched", async () => {
    const name = busName("nodestall")
    const { child: front, base } = await nodeFront(name, ["--timeout-ms=300"])
    const worker = await spawnWorker(name)
    try {
      const head = "POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 50000000\r\n\r\n"
      const answer = await rawAnswer(Number(new URL(base).port), `${head}${"x".repeat(100_000)}`)
      expect([answer.status, answer.json.name]).toEqual([504, "TimeoutError"]) // before: nothing until Node's 300 s
      expect(await (await fetch(`${base}/x`, { method: "POST", body: "hi" })).text()).toBe("hi")
      await closeFront(front)
    } finally {
      await worker.kill()
      await front.kill()
    }
  }, 120_000)

  test("a client that hangs up mid-upload counts as a cancel in /metrics, not an error", async () => {
    const name = busName("nodeleft")
    const { child: front, base, status } = await nodeFront(name, ["--status=tcp", "--metrics-max-age-ms=0"])
    const worker = await spawnWorker(name)
    try {
      const total = (text: string, family: string) =>
        [...text.matchAll(new RegExp(`^slotbus_${family}\\{bus="${name}"[^}]*\\} (\\d+)$`, "gm"))]
          .map((m) => Number(m[1]))
          .reduce((a, b) => a + b, 0)
      const sock = tcpConnect(Number(new URL(base).port), "127.0.0.1")
      sock.on("error", () => {})
      await new Promise((r) => sock.once("connect", r))
      sock.write(`POST /upload HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n${"x".repeat(5000)}`)
      sock.end() // 5 KB of 100 KB, then gone
      const counts = async () => {
        const text = await (await fetch(`${status}/metrics`)).text()
        return { cancels: total(text, "request_cancels_total"), errors: total(text, "request_errors_total") }
      }
      let seen = await counts()
      const end = performance.now() + 20_000
      while (seen.cancels + seen.errors === 0 && performance.now() < end) await Bun.sleep(100), (seen = await counts())
      expect(seen).toEqual({ cancels: 1, errors: 0 }) // before: an error of kind "Error", no cancel
      await closeFront(front)
    } finally {
      await worker.kill()
      await front.kill()
    }
  }, 120_000)
})

describe.skipIf(node === null || honoSkip !== null)("bus.fetch behind Hono's Node server (@hono/node-server)", () => {
  for (const kind of ["bun", "node"] as const)
    test(`to a ${kind === "bun" ? "Bun" : "Node"} worker: 1 MB each way, a streamed answer, a kill -9 mid-request`, async () => {
      const name = busName("nodehono")
      const { child: front, base } = await nodeFront(name, [], "node-hono-front.ts")
      const worker = await startWorker(kind, name)
      try {
        const big = new Uint8Array(randomBytes(1024 * 1024))
        const echoed = await fetch(`${base}${ECHO[kind]}`, { method: "POST", body: big })
        expect(echoed.headers.get("x-sha256")).toBe(sha(big))
        expect(sha(new Uint8Array(await echoed.arrayBuffer()))).toBe(sha(big))
        const ac = new AbortController()
        const reader = (await fetch(`${base}/endless`, { signal: ac.signal })).body!.getReader()
        let got = 0
        while (got < 256 * 1024) got += (await reader.read()).value!.length
        ac.abort()
        await worker.waitLine(/^cancelled \/endless$/, 30_000)
        // a kill -9 mid-request, through failureResponse: the 502 nodeHandler gives
        await expectGoneMidRequest(kind, base, front, worker)
        await closeFront(front)
      } finally {
        await worker.kill()
        await front.kill()
      }
    }, 120_000)
})
