// nodeHandler over a SlotBus sends a request with no body as its head and writes a whole answer from its bytes, with
// no Request or Response made (issue 78). Here it is held to bus.fetch's way, which nodeHandler takes for anything
// that is not a SlotBus: the same requests through both, each from a raw socket, to a Bun worker and a Node worker,
// must reach the worker alike and come back with the same status, headers (Content-Length included) and bytes.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { createServer, type Server } from "node:http"
import { readFileSync } from "node:fs"
import { type AddressInfo, connect } from "node:net"
import { join } from "node:path"
import { nodeHandler, SlotBus, SlotWorker } from "../../src/index.ts"
import { MAX_PIPELINED } from "../../src/runtime/fetch-listener.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, type Child, eventually, FIXTURES, spawn, stopAll } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping nodeHandler's head way to a Node worker: no Node >= 26.1 here (${NODE_INSTALL})`)
let built: ReturnType<typeof buildForNode> | null = null
let frontBuilt: ReturnType<typeof buildForNode> | null = null
let lib = ""
beforeAll(async () => {
  if (node === null) return
  built = buildForNode("node-worker.ts")
  frontBuilt = buildForNode("node-http-front.ts") // nodeHandler(bus) on node:http, under Node
  lib = await libraryPath()
})
afterAll(() => {
  built?.remove()
  frontBuilt?.remove()
})

const servers: Server[] = []
let bus: SlotBus | null = null
afterEach(async () => {
  for (const s of servers.splice(0)) s.closeAllConnections(), s.close()
  await bus?.close({ drain: false })
  bus = null
  await stopAll()
})

async function listen(handler: ReturnType<typeof nodeHandler>): Promise<number> {
  const server = createServer(handler).listen(0, "127.0.0.1")
  servers.push(server)
  await new Promise((r) => server.once("listening", r))
  return (server.address() as AddressInfo).port
}

const nodeEnv = () => ({ ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" })

/** test/support/runtime/node-worker.ts --fetch under `runtime`, on the bus `name`. */
const spawnWorkerOf = (runtime: "bun" | "node", name: string): Child =>
  runtime === "bun"
    ? spawn([process.execPath, join(FIXTURES, "runtime", "node-worker.ts"), name, "--fetch"])
    : spawn([node!, ...nodeFlags(node!), built!.entry, name, "--fetch"], { env: nodeEnv() })

/** A bus in this process with one worker under `runtime`. */
async function busWithWorker(runtime: "bun" | "node"): Promise<{ bus: SlotBus; worker: Child }> {
  const name = busName("head")
  bus = await SlotBus.listen(name)
  const worker = spawnWorkerOf(runtime, name)
  await bus.waitForWorkers(1, { timeoutMs: 30_000 })
  return { bus, worker }
}

const big = (tag: string, kb: number) => `${tag};`.repeat(Math.ceil((kb * 1000) / (tag.length + 1)))

/**
 * Pages asked for at once, the ones that came back with bytes not their own: forty-eight clients (60 or 250 KB),
 * half of them reading nothing for 300 ms; and twenty requests pipelined on one connection, whose answers node:http
 * holds until the ones before them are written.
 */
async function slowClients(port: number): Promise<string[]> {
  const one = async (i: number) => {
    const [tag, kb] = [`r${i}`, i % 3 === 0 ? 250 : 60]
    const request = `GET /big?tag=${tag}&kb=${kb} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`
    const answer = await rawRequest(port, request, i % 2 === 0 ? 300 : 0)
    return answer.body === big(tag, kb) ? "ok" : `${tag}: ${answer.status}, ${answer.body.length} bytes, not its own`
  }
  const apart = await Promise.all(Array.from({ length: 48 }, (_, i) => one(i)))
  // 32 (MAX_PIPELINED) × 500 KB on a connection that reads nothing for a second: more than the kernel's socket buffers
  // take, so node:http holds answers written but not sent, while later ones are copied out of their slots
  const held = await pipelined(port, MAX_PIPELINED, 500, 1000)
  return [...apart, ...(await pipelined(port, 20, 60, 0)), ...held].filter((g) => g !== "ok")
}

/**
 * `n` pages of `kb` KB asked for on one connection, nothing read for `holdMs` (or until `hold` settles): "ok" for each
 * that came back as its own.
 */
function pipelined(port: number, n: number, kb: number, holdMs: number, hold?: Promise<unknown>): Promise<string[]> {
  const tags = Array.from({ length: n }, (_, i) => `p${i}`)
  const requests = tags.map((t, i) => {
    const close = i === n - 1 ? "Connection: close\r\n" : ""
    return `GET /big?tag=${t}&kb=${kb} HTTP/1.1\r\nHost: h\r\n${close}\r\n`
  })
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = connect(port, "127.0.0.1", () => {
      s.write(requests.join(""))
      if (hold) s.pause(), void hold.finally(() => s.resume())
      else if (holdMs > 0) s.pause(), setTimeout(() => s.resume(), holdMs)
    })
    s.on("data", (b: Buffer) => chunks.push(b))
    s.on("error", reject)
    s.on("close", () => {
      let all = Buffer.concat(chunks)
      resolve(
        tags.map((t) => {
          const end = all.indexOf("\r\n\r\n")
          const length = Number(/content-length: (\d+)/i.exec(all.subarray(0, end).toString("latin1"))?.[1])
          const body = all.subarray(end + 4, end + 4 + length).toString()
          all = all.subarray(end + 4 + length)
          return body === big(t, kb) ? "ok" : `${t} (pipelined, ${kb} KB): ${body.length} bytes, not its own`
        }),
      )
    })
  })
}

/** `requests` written at once on one connection: each answer read off it by its Content-Length, "<status> <body>". */
function keptAlive(port: number, requests: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = connect(port, "127.0.0.1", () => s.write(requests.join("")))
    s.on("data", (b: Buffer) => chunks.push(b))
    s.on("error", reject)
    s.on("close", () => {
      let all = Buffer.concat(chunks)
      const answers: string[] = []
      while (all.length > 0) {
        const end = all.indexOf("\r\n\r\n")
        const head = all.subarray(0, end).toString("latin1")
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)
        answers.push(`${head.split(" ")[1]} ${all.subarray(end + 4, end + 4 + length).toString()}`)
        all = all.subarray(end + 4 + length)
      }
      resolve(answers)
    })
  })
}

/**
 * test/support/runtime/node-http-front.ts under Node, serving once its worker connected: node-worker.ts --fetch under
 * `runtime`, or the one `runtime(bus)` connects.
 */
async function nodeFront(
  runtime: "bun" | "node" | ((bus: string) => unknown),
): Promise<{ front: Child; port: string }> {
  const name = busName("head")
  const front = spawn([node!, ...nodeFlags(node!), frontBuilt!.entry, name], { env: nodeEnv(), stdin: "pipe" })
  const [, port] = (await front.waitLine(/^listening (\d+) /, 30_000)) as string[]
  if (typeof runtime === "function") await runtime(name)
  else spawnWorkerOf(runtime, name)
  expect(await eventuallyServes(Number(port))).toBe(true)
  return { front, port: port! }
}

/** Whether the front at `port` answers a page within 30 s (its worker connected). */
async function eventuallyServes(port: number): Promise<boolean> {
  const end = performance.now() + 30_000
  while (performance.now() < end) {
    const got = await rawRequest(port, "GET /big?tag=x&kb=1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    if (got.status.includes(" 200 ")) return true
    await Bun.sleep(100)
  }
  return false
}

interface Answer {
  status: string
  headers: string[]
  body: string
}

/**
 * `request` (a raw HTTP/1.1 head, Connection: close) sent on a socket of its own, which then reads nothing for
 * `pauseMs`: the answer as read off the wire.
 */
function rawRequest(port: number, request: string, pauseMs = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = connect(port, "127.0.0.1", () => {
      s.write(request)
      if (pauseMs > 0) s.pause(), setTimeout(() => s.resume(), pauseMs)
    })
    s.on("data", (b: Buffer) => chunks.push(b))
    s.on("error", reject)
    s.on("close", () => {
      const all = Buffer.concat(chunks)
      const end = all.indexOf("\r\n\r\n")
      const [status, ...lines] = all.subarray(0, end).toString("latin1").split("\r\n")
      const headers = lines
        .map((l) => l.replace(/^([^:]+):\s*/, (_, n: string) => `${n.toLowerCase()}: `))
        .filter((l) => !l.startsWith("date: "))
        .sort()
      let body: Buffer = all.subarray(end + 4)
      if (headers.includes("transfer-encoding: chunked")) body = unchunk(body)
      resolve({ status: status!, headers, body: body.toString("utf8") })
    })
  })
}

function unchunk(b: Buffer): Buffer {
  const parts: Buffer[] = []
  for (let at = 0; ; ) {
    const eol = b.indexOf("\r\n", at)
    const size = Number.parseInt(b.subarray(at, eol).toString(), 16)
    if (!(size > 0)) return Buffer.concat(parts)
    parts.push(b.subarray(eol + 2, eol + 2 + size))
    at = eol + 4 + size
  }
}

const REQUESTS: [string, string][] = [
  ["a page: its bytes, Content-Length, both set-cookie, no worker connection header", "GET /page?x=1 HTTP/1.1"],
  ["HEAD of the page: its head alone, the same Content-Length", "HEAD /page HTTP/1.1"],
  ["a 204: no body, no length", "GET /empty HTTP/1.1"],
  ["a streamed answer: chunked, each chunk", "GET /stream HTTP/1.1"],
  ["what the worker saw: method, URL, headers (repeated ones, mixed case)", "GET /seen?q=a%20b&r=/x HTTP/1.1"],
  ["a target with dot segments, as a Request rewrites it", "GET /a/./b/../seen HTTP/1.1"],
  ["a target a Request percent-encodes", 'GET /seen?q="x"<y> HTTP/1.1'],
  ["an encoded dot segment", "GET /a/%2e%2e/seen HTTP/1.1"],
  ["a POST still goes bus.fetch's way", "POST /json HTTP/1.1\r\nContent-Length: 4\r\nX-A: b"],
]

describe.each(["bun", "node"] as const)("nodeHandler's head way to a %s worker answers as bus.fetch's", (runtime) => {
  test.skipIf(runtime === "node" && node === null)(
    "the same requests through both: the same status, headers and bytes, and the worker saw the same",
    async () => {
      const { bus } = await busWithWorker(runtime)
      const direct = await listen(nodeHandler(bus))
      const viaFetch = await listen(nodeHandler({ fetch: (r, o) => bus.fetch(r, o) }))
      for (const [what, line] of REQUESTS) {
        const head = `${line}\r\nHost: example.test:8080\r\nX-Dup: 1\r\nx-dup: 2\r\nConnection: close\r\n\r\n`
        const request = line.startsWith("POST") ? `${head}sent` : head
        const [got, want] = [await rawRequest(direct, request), await rawRequest(viaFetch, request)]
        expect({ what, ...got }).toEqual({ what, ...want })
      }
      const page = await rawRequest(direct, "GET /page HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      const length = Buffer.byteLength(page.body)
      expect(length).toBeGreaterThan(40_000)
      expect(page.headers).toContain(`content-length: ${length}`)
      expect(page.headers.filter((h) => h.startsWith("set-cookie: "))).toEqual(["set-cookie: a=1", "set-cookie: b=2"])
      expect(page.headers.some((h) => h.startsWith("transfer-encoding"))).toBe(false)
      const seen = await rawRequest(
        direct,
        "GET /seen HTTP/1.1\r\nHost: h\r\nX-Dup: 1\r\nx-dup: 2\r\nConnection: close\r\n\r\n",
      )
      expect(JSON.parse(seen.body).headers).toContainEqual(["x-dup", "1, 2"])
      // a Blob's type is its content-type (Bun gave it only to a Response whose headers were read before its body)
      const typed = await rawRequest(direct, "GET /typed HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
      expect(typed.headers.find((h) => h.startsWith("content-type:"))).toStartWith("content-type: text/css")
    },
    60_000,
  )

  test.skipIf(runtime === "node" && node === null)(
    "a worker's wrong content-length: the bytes sent are what the length says, kept-alive answers stay apart",
    async () => {
      const { bus } = await busWithWorker(runtime)
      for (const port of [await listen(nodeHandler(bus)), await listen(nodeHandler({ fetch: (r) => bus.fetch(r) }))]) {
        // a GET (the head way), a POST (bus.fetch's), each saying 3, 11 or 100 bytes of 13, then one more request,
        // all on one connection: each answer must be whole and its own
        const ask = (method: string, n: number) =>
          `${method} /lies?n=${n} HTTP/1.1\r\nHost: h\r\nContent-Length: ${method === "POST" ? 1 : 0}\r\n\r\n${method === "POST" ? "x" : ""}`
        const asks = [3, 11, 100].flatMap((n) => [ask("GET", n), ask("POST", n)])
        const answers = await keptAlive(port, [...asks, "GET /empty HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"])
        expect(answers).toEqual([...asks.map(() => "200 héllo wörld"), "204 "])
        // a HEAD's content-length is the worker's: the length its GET would have
        const head = await rawRequest(port, "HEAD /lies?n=13 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        expect(head.headers).toContain("content-length: 13")
      }
    },
    60_000,
  )

  test.skipIf(runtime === "node" && node === null)(
    "answers at once, their clients slow to read: each body its own bytes, in this process's node:http",
    async () => {
      const { bus } = await busWithWorker(runtime)
      expect(await slowClients(await listen(nodeHandler(bus)))).toEqual([])
    },
    60_000,
  )

  test.skipIf(node === null)(
    "answers at once, their clients slow to read: each body its own bytes, in a Node front (a buffer is reused only once written)",
    async () => {
      const { front, port } = await nodeFront(runtime)
      expect(await slowClients(Number(port))).toEqual([])
      front.write("close\n")
      expect(await front.exited).toBe(0)
    },
    60_000,
  )

  test.skipIf(node === null)(
    "a client that pipelines 500 GETs to a Node front and reads nothing is cut off, not 500 answers queued for it",
    async () => {
      const { front, port } = await nodeFront(runtime)
      const sock = connect(Number(port), "127.0.0.1")
      try {
        sock.pause() // node:http parses every request it has read before the first answer is written
        let closed = false
        sock.on("error", () => {})
        sock.on("close", () => void (closed = true))
        const get = "GET /big?tag=p&kb=200 HTTP/1.1\r\nHost: h\r\n\r\n"
        sock.write(get.repeat(500)) // before: 500 answers of 200 KB held for it (2,000 of them: 0.5 GB)
        // a paused socket hears of the cut only when it writes (EPIPE, ECONNRESET): one more request each time
        expect(await eventually(() => closed || (sock.write(get), false), 20_000)).toBe(true)
        expect(await eventuallyServes(Number(port))).toBe(true)
      } finally {
        sock.destroy()
      }
      front.write("close\n")
      expect(await front.exited).toBe(0)
    },
    60_000,
  )

  test.skipIf(runtime === "node" && node === null)(
    "a client that hangs up before the answer cancels its request: the worker's signal aborts, nothing stays in flight",
    async () => {
      const { bus, worker } = await busWithWorker(runtime)
      // the request's own timeout far off: only the hang-up can cancel it within the wait below
      const port = await listen(nodeHandler(bus, { fetch: { timeoutMs: 300_000 } }))
      const inFlight = () => bus.stats().workers.reduce((n, w) => n + w.inFlight, 0)
      const s = connect(port, "127.0.0.1", () => s.write("GET /wait HTTP/1.1\r\nHost: h\r\n\r\n"))
      expect(await eventually(() => inFlight() === 1, 10_000)).toBe(true)
      s.destroy()
      await worker.waitLine(/^aborted \/wait$/, 20_000)
      expect(await eventually(() => inFlight() === 0, 10_000)).toBe(true)
    },
    60_000,
  )
})

test("a worker's answer without a status (0) is a 200 with its Content-Length on the head way too", async () => {
  bus = await SlotBus.listen(busName("head"))
  const worker = await SlotWorker.connect(bus.name, () => ({ status: 0, body: "abc" }))
  try {
    await bus.waitForWorkers(1)
    const port = await listen(nodeHandler(bus))
    for (const method of ["GET", "POST"]) {
      const got = await rawRequest(
        port,
        `${method} /x HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      )
      // before: a GET's came chunked, a POST's with its length
      expect({ method, status: got.status, length: got.headers.includes("content-length: 3"), body: got.body }).toEqual(
        {
          method,
          status: "HTTP/1.1 200 OK",
          length: true,
          body: "abc",
        },
      )
    }
  } finally {
    await worker.close()
  }
})

test.skipIf(node === null)(
  "eight clients pipelining 32 GETs of 2 MB to a Node front and reading nothing hold a few MB each there, not 64",
  async () => {
    // whole answers, copied out of their slots as they come: a raw worker's bytes, here
    let worker: SlotWorker | null = null
    const connectWorker = async (name: string) => {
      worker = await SlotWorker.connect(name, (req) => {
        const q = new URL(req.path, "http://h").searchParams
        return new TextEncoder().encode(big(q.get("tag")!, Number(q.get("kb"))))
      })
    }
    const { front, port } = await nodeFront(connectWorker)
    try {
      // the front's own memory (its heap and buffers), not the bus's shared slots it maps
      const anon = () => 1024 * Number(/RssAnon:\s+(\d+)/.exec(readFileSync(`/proc/${front.pid}/status`, "utf8"))![1])
      const before = anon()
      const get = (c: number) => `GET /big?tag=c${c}&kb=2000 HTTP/1.1\r\nHost: h\r\n\r\n`
      const socks = Array.from({ length: 7 }, (_, c) => {
        const s = connect(Number(port), "127.0.0.1", () => s.write(get(c).repeat(MAX_PIPELINED)))
        s.pause()
        s.on("error", () => {})
        return s
      })
      let measured = () => {}
      const read = pipelined(Number(port), MAX_PIPELINED, 2000, 0, new Promise<void>((r) => (measured = r)))
      try {
        // each connection holds at most PIPELINE_BYTES and an answer or two (8 × 5 MB); before, each one's 32 answers
        // were copied out of their slots as they came (8 × 64 MB): waited for until the memory stays put two
        // seconds, or is past the bound
        const bound = 96 * 2 ** 20
        const samples = [anon()]
        const steady = () => {
          const [a, b, c] = samples.slice(-3)
          return c !== undefined && Math.max(a!, b!, c) - Math.min(a!, b!, c) < 2 ** 20
        }
        while (!steady() && samples.at(-1)! - before < bound) await Bun.sleep(1000), samples.push(anon())
        console.log(`front memory: +${((anon() - before) / 2 ** 20).toFixed(1)} MiB, 8 clients reading nothing`)
        expect(anon() - before).toBeLessThan(bound)
      } finally {
        measured()
        for (const s of socks) s.destroy()
      }
      // its requests were only held: once read, each answer comes, its own bytes
      expect((await read).filter((g) => g !== "ok")).toEqual([])
    } finally {
      front.write("close\n")
      expect(await front.exited).toBe(0)
      await (worker as SlotWorker | null)?.close()
    }
  },
  120_000,
)
