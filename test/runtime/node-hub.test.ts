// The HTTP hub under Node 26 (`slotbus hub`'s entry built for Node, on node:http through the runtime's serveHttp),
// with a hubWorker under Bun and one under Node: routes, a 1 MB POST body each way, Set-Cookie lines, an SSE route
// and GET /events, a worker killed -9 mid-request (502), /health, /metrics, and the requests it refuses (a bad Host,
// TRACE), the socket files of a hub killed with kill -9 removed by the next on its port, and a stopping hub's 503
// closing its kept-alive connection (under Bun too). The hub's full behaviour runs under Bun in test/http/;
// test/runtime/request-fuzz.test.ts fuzzes this hub too.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { type Child, FIXTURES, pattern, sha256, spawn, stopAll, until } from "../support/helpers.ts"
import { socketDir } from "../support/fds.ts"
import { SseReader } from "../support/http/http.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the HTTP hub under Node: no Node >= 26.1 here (${NODE_INSTALL})`)

let lib = ""
let dir = ""
const built: { entry: string; remove(): void }[] = []
beforeAll(async () => {
  if (!node) return
  lib = await libraryPath()
  dir = mkdtempSync(join(tmpdir(), "slotbus-node-hub-"))
  built.push(buildForNode("http/http-hub.ts"), buildForNode("node-hub-worker.ts"))
})
afterAll(async () => {
  await stopAll()
  for (const b of built) b.remove()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

/** A hub under Node (`slotbus hub`'s entry), its URL once it listens. */
async function nodeHub(tokenFile: string, args: string[] = [], port = "0"): Promise<{ hub: Child; base: string }> {
  const hub = spawn([node!, ...nodeFlags(node!), built[0]!.entry, "--port", port, "--token-file", tokenFile, ...args], {
    env: nodeEnv(),
  })
  const m = await hub.waitLine(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000).catch((e) => {
    throw new Error(`the Node hub did not start: ${e}\n${hub.output}`)
  })
  return { hub, base: m[1]! }
}

/** Emits `items` through the hub's internal endpoint (as a worker's app.emit over HTTP does). */
async function emit(base: string, tokenFile: string, items: { type: string; data: string }[]) {
  const res = await fetch(`${base}/_slotbus/emit`, {
    method: "POST",
    headers: { authorization: `Bearer ${readFileSync(tokenFile, "utf8").trim()}` },
    body: JSON.stringify(items),
  })
  expect(res.status).toBe(200)
  await res.arrayBuffer()
}

const nodeEnv = () => ({ ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" })

/** The raw status line's code for `head` sent on a fresh connection (or "close"). */
function rawStatus(port: number, head: string): Promise<number | "close"> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1", () => sock.write(head))
    let got = ""
    sock.on("data", (d: Buffer) => {
      got += d.toString("latin1")
      const m = /^HTTP\/1\.[01] (\d{3}) /.exec(got)
      if (m) {
        sock.destroy()
        resolve(Number(m[1]))
      }
    })
    sock.on("error", () => {})
    sock.on("close", () => resolve("close"))
  })
}

for (const workerRuntime of ["bun", "node"] as const)
  describe.skipIf(!node)(`a Node hub with a ${workerRuntime} worker`, () => {
    let hub: Child
    let worker: Child
    let base = ""
    let tokenFile = ""
    const startWorker = async () => {
      const workerEntry = built[1]!.entry
      const cmd =
        workerRuntime === "node"
          ? [node!, ...nodeFlags(node!), workerEntry!]
          : [process.execPath, join(FIXTURES, "runtime/node-hub-worker.ts")]
      const w = spawn([...cmd, base, "shop", tokenFile], { env: nodeEnv() })
      await w.waitLine(/^ready \d+$/, 30_000).catch((e) => {
        throw new Error(`the worker did not start: ${e}\n${w.output}`)
      })
      return w
    }
    beforeAll(async () => {
      tokenFile = join(dir, `token-${workerRuntime}`)
      ;({ hub, base } = await nodeHub(tokenFile))
      worker = await startWorker()
    }, 90_000)
    afterAll(async () => {
      await worker?.kill()
      await hub?.stop()
    })

    test("routes, a 1 MB body each way, one over the limit (413), Set-Cookie lines, 404 and 405", async () => {
      const item = await fetch(`${base}/items/7`)
      expect([item.status, await item.json()]).toEqual([200, { id: "7", runtime: workerRuntime }])
      const body = pattern(1 << 20, 3)
      const echo = await fetch(`${base}/echo`, { method: "POST", body })
      const back = new Uint8Array(await echo.arrayBuffer())
      expect([echo.status, echo.headers.get("x-sha256"), back.length, sha256(back)]).toEqual([
        200,
        sha256(body),
        body.length,
        sha256(body),
      ])
      // past maxRequestBodyBytes (8 MiB): node:http limits no body, the hub counts what it reads
      const over = await fetch(`${base}/echo`, { method: "POST", body: new Uint8Array(9 << 20) })
      expect([over.status, ((await over.json()) as { error: string }).error]).toEqual([413, "too-large"])
      const large = await fetch(`${base}/large?bytes=${1 << 20}`)
      expect(sha256(new Uint8Array(await large.arrayBuffer()))).toBe(sha256(pattern(1 << 20, 0)))
      const cookies = await fetch(`${base}/cookies`)
      expect([await cookies.text(), cookies.headers.getSetCookie()]).toEqual([
        "cookies",
        ["a=1; Path=/", "b=2; Path=/"],
      ])
      const missing = await fetch(`${base}/nothing`)
      expect([missing.status, ((await missing.json()) as { error: string }).error]).toEqual([404, "not-found"])
      const wrong = await fetch(`${base}/items/7`, { method: "DELETE" })
      expect([wrong.status, wrong.headers.get("allow"), ((await wrong.json()) as { error: string }).error]).toEqual([
        405,
        "GET",
        "method-not-allowed",
      ])
    }, 60_000)

    test("an SSE route and GET /events stream on node:http", async () => {
      const route = await fetch(`${base}/sessions/s1/events`)
      const events = await fetch(`${base}/events`)
      expect([route.status, route.headers.get("content-type"), events.status]).toEqual([
        200,
        "text/event-stream; charset=utf-8",
        200,
      ])
      const r = new SseReader(route)
      const e = new SseReader(events)
      try {
        expect(JSON.parse((await r.next((m) => m.event === "welcome")).data)).toEqual({ session: "s1" })
        const emitted = await fetch(`${base}/emit/tick`, { method: "POST", body: JSON.stringify({ n: 1 }) })
        expect(emitted.status).toBe(200)
        const got = await e.next((m) => m.event === "tick")
        expect(JSON.parse(got.data)).toEqual({ n: 1 })
      } finally {
        await r.close()
        await e.close()
      }
    }, 60_000)

    test("/health lists the worker and /metrics has the hub's series", async () => {
      const health = (await (await fetch(`${base}/health`)).json()) as { workers: { name: string }[] }
      expect(health.workers.map((w) => w.name)).toContain("shop")
      const metrics = await fetch(`${base}/metrics`)
      const text = await metrics.text()
      expect(metrics.headers.get("content-type")).toContain("text/plain")
      expect(text).toMatch(/^slotbus_hub_requests_total \d+$/m)
    }, 30_000)

    test("a bad Host is a 400 and TRACE a 501; the hub still serves", async () => {
      const port = Number(new URL(base).port)
      expect(await rawStatus(port, "GET /items/7 HTTP/1.1\r\nHost: a b\r\n\r\n")).toBe(400)
      expect(await rawStatus(port, "TRACE /items/7 HTTP/1.1\r\nHost: h\r\n\r\n")).toBe(501)
      expect((await fetch(`${base}/items/8`)).status).toBe(200)
    }, 30_000)

    test("a worker killed -9 mid-request is a 502; a new one serves", async () => {
      const hanging = fetch(`${base}/hang`)
      await worker.waitLine(/^hang$/, 15_000)
      await worker.kill("SIGKILL")
      const res = await hanging
      expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([502, "bad-gateway"])
      worker = await startWorker()
      expect((await fetch(`${base}/items/9`)).status).toBe(200)
    }, 60_000)
  })

describe.skipIf(!node)("a Node hub's streams", () => {
  let hub: Child | undefined
  afterAll(async () => {
    await hub?.stop()
  })

  test("a client that stops reading is dropped (node:http's backpressure reaches the SSE queue); a reading one gets every event", async () => {
    const tokenFile = join(dir, "token-slow")
    const started = await nodeHub(tokenFile)
    hub = started.hub
    const { base } = started
    const fast = new SseReader(await fetch(`${base}/events`))
    const slow = connect(Number(new URL(base).port), "127.0.0.1")
    try {
      let got = 0
      slow.on("data", (d: Buffer) => {
        got += d.length
        slow.pause() // the head, then nothing: the kernel's buffers fill, then node:http's, then the hub's queue
      })
      slow.write("GET /events HTTP/1.1\r\nhost: x\r\n\r\n")
      await until(() => got > 0, "the slow client is connected")
      const dropped = async () =>
        ((await (await fetch(`${base}/health`)).json()) as { counters: { sseDropped: number } }).counters.sseDropped
      const payload = "x".repeat(32 * 1024)
      let batch = 0
      await until(
        async () => {
          const mark = String(++batch)
          await emit(base, tokenFile, [
            ...Array.from({ length: 8 }, () => ({ type: "bulk", data: payload })),
            { type: "mark", data: mark },
          ])
          // the reading client reads each batch before the next is sent, however slowly this process runs: it is
          // never more than one batch (256 KiB) behind, under the hub's 1 MiB limit
          await fast.next((m) => m.event === "mark" && m.data === mark, 30_000)
          return (await dropped()) > 0
        },
        "the slow client is dropped",
        60_000,
      )
      expect(await dropped()).toBe(1)
      await emit(base, tokenFile, [{ type: "last", data: "done" }])
      expect((await fast.next((m) => m.event === "last", 30_000)).data).toBe("done")
    } finally {
      slow.destroy()
      await fast.close()
      await hub.stop()
    }
  }, 120_000)

  test("a client that pipelines 500 GET /metrics and reads nothing is cut off (not 500 answers queued for it); others are served", async () => {
    const started = await nodeHub(join(dir, "token-pipelined"))
    hub = started.hub
    const port = Number(new URL(started.base).port)
    const sock = connect(port, "127.0.0.1")
    try {
      sock.pause() // reads nothing: node:http parses every request before the first answer is written
      let closed = false
      sock.on("error", () => {})
      sock.on("close", () => void (closed = true))
      const get = "GET /metrics HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n"
      sock.write(get.repeat(500))
      // a paused socket hears of the cut only when it writes (EPIPE, ECONNRESET): one more request each time
      await until(() => closed || (sock.write(get), false), "the hub cuts the connection off", 10_000)
      expect((await fetch(`${started.base}/health`)).status).toBe(200)
    } finally {
      sock.destroy()
      await hub.stop()
    }
  }, 60_000)

  test("a connection idle mid-head is closed after the idle timeout; an SSE stream open as long is not", async () => {
    const tokenFile = join(dir, "token-idle")
    // --timeout-ms 1000: a 10 s idle timeout (the hub's floor), shorter than the 15 s heartbeat
    const started = await nodeHub(tokenFile, ["--timeout-ms", "1000"])
    hub = started.hub
    const { base } = started
    const events = new SseReader(await fetch(`${base}/events`))
    const idle = connect(Number(new URL(base).port), "127.0.0.1")
    try {
      let closedAt = 0
      idle.on("error", () => {})
      idle.on("close", () => (closedAt = performance.now()))
      // half a head: node:http's own timers (headersTimeout 60 s, keepAliveTimeout after an answer) are not it
      idle.write("GET /health HTTP/1.1\r\n")
      await until(() => closedAt > 0, "the idle connection is closed", 50_000, 100)
      await emit(base, tokenFile, [{ type: "late", data: "still open" }])
      expect((await events.next((m) => m.event === "late", 30_000)).data).toBe("still open")
    } finally {
      idle.destroy()
      await events.close()
      await hub.stop()
    }
  }, 120_000)
})

describe.skipIf(!node)("a Node hub killed with kill -9", () => {
  test("the next Node hub on its port removes its buses' socket files", async () => {
    const tokenFile = join(dir, "token-restart")
    const first = await nodeHub(tokenFile)
    const port = new URL(first.base).port
    const filesOf = (start: string) =>
      readdirSync(socketDir()).filter((f) => f.startsWith(`slotbus.${start}`) || f.startsWith(`slotbus-ctl.${start}`))
    const worker = spawn(
      [process.execPath, join(FIXTURES, "runtime/node-hub-worker.ts"), first.base, "shop", tokenFile],
      {
        env: nodeEnv(),
      },
    )
    await worker.waitLine(/^ready \d+$/, 30_000)
    const dead = filesOf(`hub${port}.shop.`) // its bus's socket file and its control socket's
    expect(dead.length).toBe(2)
    await first.hub.kill() // kill -9: the files stay, under names with the dead hub's tag that nobody binds again
    await worker.kill()
    expect(dead.every((f) => existsSync(join(socketDir(), f)))).toBe(true)
    const second = await nodeHub(tokenFile, [], port)
    try {
      expect(dead.filter((f) => existsSync(join(socketDir(), f)))).toEqual([])
    } finally {
      await second.hub.stop()
    }
  }, 120_000)
})

/** A keep-alive connection: `ask` sends a GET and resolves with its answer's status and Connection header. */
function keptAlive(port: number) {
  const sock = connect(port, "127.0.0.1")
  let got = ""
  let waiter: (() => void) | undefined
  const closed = new Promise<void>((r) => sock.on("close", () => r()))
  sock.on("error", () => {})
  sock.on("data", (d: Buffer) => {
    got += d.toString("latin1")
    waiter?.()
  })
  const ask = async (path: string) => {
    got = ""
    sock.write(`GET ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`)
    for (;;) {
      const end = got.indexOf("\r\n\r\n")
      const length = /\r\ncontent-length: *(\d+)/i.exec(got)?.[1]
      if (end >= 0 && (length === undefined ? got.endsWith("\r\n0\r\n\r\n") : got.length >= end + 4 + Number(length)))
        break
      if (sock.destroyed) throw new Error(`closed before a whole answer: ${JSON.stringify(got)}`)
      await Promise.race([new Promise<void>((r) => (waiter = r)), closed])
    }
    // no Connection header (Bun's): HTTP/1.1's default, keep-alive
    return `${/^HTTP\/1\.1 (\d{3})/.exec(got)?.[1]} ${/\r\nconnection: *([^\r]*)/i.exec(got)?.[1] ?? "keep-alive"}`
  }
  return { ask, closed, sock }
}

describe("a hub stopping (SIGTERM)", () => {
  test.each(["bun", "node"] as const)(
    "under %s: a request on a kept-alive connection gets 503 saying close, and its connection is closed after it",
    async (runtime) => {
      if (runtime === "node" && !node) return
      const tokenFile = join(dir, `token-stop-${runtime}`)
      const release = join(dir, `release-stop-${runtime}`)
      const { hub, base } =
        runtime === "node"
          ? await nodeHub(tokenFile)
          : await (async () => {
              const args = ["--port", "0", "--token-file", tokenFile]
              const hub = spawn([process.execPath, join(FIXTURES, "http/http-hub.ts"), ...args], { env: nodeEnv() })
              const m = await hub.waitLine(/listening on (http:\/\/127\.0\.0\.1:\d+)/, 30_000)
              return { hub, base: m[1]! }
            })()
      const worker = spawn(
        [process.execPath, join(FIXTURES, "runtime/node-hub-worker.ts"), base, "shop", tokenFile, release],
        { env: nodeEnv() },
      )
      const conn = keptAlive(Number(new URL(base).port))
      try {
        await worker.waitLine(/^ready \d+$/, 30_000)
        expect(await conn.ask("/items/1")).toBe("200 keep-alive")
        // a request in flight holds the hub in its drain, refusing new ones, until `release` exists
        const held = fetch(`${base}/hold`, { method: "POST", body: "h" })
        await worker.waitLine(/^held h$/, 30_000)
        hub.signal("SIGTERM")
        await until(
          async () => (await fetch(`${base}/items/2`, { headers: { connection: "close" } })).status === 503,
          "the hub refuses",
        )
        // before: node:http's answer said keep-alive (the hub's `connection: close` dropped as hop-by-hop)
        expect(await conn.ask("/items/3")).toBe("503 close")
        await conn.closed // by the hub, after its answer: the held request is still running
        writeFileSync(release, "")
        expect((await held).status).toBe(201)
        expect(await hub.exited).toBe(0)
      } finally {
        conn.sock.destroy()
        writeFileSync(release, "")
        await worker.kill()
        await hub.stop()
      }
    },
    90_000,
  )
})
