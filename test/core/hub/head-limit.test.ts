// A request whose head (method, path, headers) is over the bus's maxHeadBytes is refused with HeadTooLargeError (a
// PayloadTooLargeError), which a front answers 431 Request Header Fields Too Large; a body over maxBodyBytes stays
// 413. Through bus.request, and through a front as users run one: Bun.serve with failureResponse, node:http with
// nodeHandler under Bun and a Node front (test/support/runtime/node-http-front.ts) under Node 26.
import { afterAll, expect, test } from "bun:test"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import {
  failureResponse,
  HeadTooLargeError,
  nodeHandler,
  PayloadTooLargeError,
  ProtocolError,
  SlotBus,
  SlotWorker,
} from "../../../src/index.ts"
import { busName, rejection, spawnWorker, stopAll } from "../../support/helpers.ts"
import { peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

const LIMITS = { maxHeadBytes: 1024, maxBodyBytes: 4096 }
const BIG_HEADER = { "x-big": "y".repeat(2000) } // under every front's own limit (16 KiB), over maxHeadBytes

afterAll(async () => {
  await stopAll()
  removeNodeBuilds()
})

test("bus.request rejects a head over maxHeadBytes with HeadTooLargeError, still a PayloadTooLargeError", async () => {
  await using bus = await SlotBus.listen(busName("head-limit"), LIMITS)
  const head = await rejection(bus.request({ path: "/", headers: BIG_HEADER }))
  expect(head).toBeInstanceOf(HeadTooLargeError)
  expect(head).toBeInstanceOf(PayloadTooLargeError)
  expect((head as Error).message).toContain("over maxHeadBytes 1024")
  const body = await rejection(bus.request({ method: "POST", path: "/", body: new Uint8Array(5000) }))
  expect(body).toBeInstanceOf(PayloadTooLargeError)
  expect(body).not.toBeInstanceOf(HeadTooLargeError)
  expect((body as Error).message).toBe(
    "request body is 5000 bytes, over maxBodyBytes 4096; raise maxBodyBytes in SlotBus.listen's options",
  )
})

/** A front on a bus with LIMITS and a worker: its base URL, and how to stop it. */
async function front(kind: string): Promise<{ base: string; stop(): Promise<void> }> {
  const name = busName("head-front")
  if (kind === "node:http under Node") {
    const child = await peerChild(
      "node",
      "runtime/node-http-front.ts",
      [name, `--max-head-bytes=${LIMITS.maxHeadBytes}`, `--max-body-bytes=${LIMITS.maxBodyBytes}`],
      { stdin: "pipe" },
    )
    const [, port] = (await child.waitLine(/^listening (\d+) /, 30_000))!
    await spawnWorker(name)
    return {
      base: `http://127.0.0.1:${port}`,
      stop: async () => {
        child.write("close\n")
        await child.proc.exited
      },
    }
  }
  const bus = await SlotBus.listen(name, LIMITS)
  await spawnWorker(name)
  if (kind === "Bun.serve") {
    const server = Bun.serve({ port: 0, fetch: (req) => bus.fetch(req), error: failureResponse })
    return { base: `http://127.0.0.1:${server.port}`, stop: async () => (server.stop(true), await bus.close()) }
  }
  const server = createServer(nodeHandler(bus)).listen(0, "127.0.0.1")
  await new Promise((r) => server.once("listening", r))
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stop: async () => (server.closeAllConnections(), server.close(), await bus.close()),
  }
}

test.each(["Bun.serve", "node:http under Bun", "node:http under Node"])(
  "a %s front answers a head over maxHeadBytes 431 head-too-large, a body over maxBodyBytes 413",
  async (kind) => {
    if (kind.endsWith("Node") && peerSkip("node")) return console.log(`skipped: ${peerSkip("node")}`)
    const { base, stop } = await front(kind)
    try {
      const head = await fetch(`${base}/x`, { headers: BIG_HEADER })
      expect([head.status, await head.json()]).toMatchObject([
        431,
        { error: "head-too-large", name: "HeadTooLargeError" },
      ])
      const body = await fetch(`${base}/x`, { method: "POST", body: new Uint8Array(5000) })
      const refused = (await body.json()) as { message: string }
      expect([body.status, refused]).toMatchObject([413, { error: "too-large", name: "PayloadTooLargeError" }])
      // the option its caller can set: the bus's (nodeHandler has none), not a hub's
      expect(refused.message).toEndWith("over maxBodyBytes 4096; raise maxBodyBytes in SlotBus.listen's options")
      // streamed, no Content-Length: refused as it is read
      const streamed = await fetch(`${base}/x`, {
        method: "POST",
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(1000))
            c.close()
          },
        }),
        duplex: "half",
      } as RequestInit)
      expect(streamed.status).toBe(413)
      expect(((await streamed.json()) as { message: string }).message).toMatch(
        /^request body is over \d+ bytes, over maxBodyBytes 4096; raise maxBodyBytes in SlotBus.listen's options$/,
      )
      const ok = await fetch(`${base}/x`, { method: "POST", body: "ok" })
      expect([ok.status, await ok.text()]).toEqual([200, "ok"]) // the front still serves
    } finally {
      await stop()
    }
  },
  60_000,
)

test("a worker's answer with more than 2000 header fields is a ProtocolError, whole or streamed; 2000 pass", async () => {
  // before: decoded into a Web Response whatever its count, which Bun does in time quadratic in it: a C worker's
  // 512 KiB of distinct names held the front's event loop 6.8 s, 8 MiB of them ~110 s
  await using bus = await SlotBus.listen(busName("answer-fields"))
  const fields = (n: number) => Array.from({ length: n }, (_, i): [string, string] => [`x-${i}`, "v"])
  const worker = await SlotWorker.connect(bus.name, (req) => {
    const [, how, n] = req.path.split("/")
    const body = how === "stream" ? new Blob(["streamed"]).stream() : "whole"
    return new Response(body, { headers: fields(Number(n)) })
  })
  try {
    for (const how of ["whole", "stream"]) {
      const ok = await bus.fetch(new Request(`http://x/${how}/2000`))
      expect([ok.headers.get("x-1999"), await ok.text()]).toEqual(["v", how === "stream" ? "streamed" : "whole"])
      const e = await rejection(bus.fetch(new Request(`http://x/${how}/2001`)))
      expect(e).toBeInstanceOf(ProtocolError)
      expect((e as Error).message).toContain("answered with 2001 header fields, more than the 2000")
      expect(failureResponse(e).status).toBe(502)
    }
    expect((await bus.fetch(new Request("http://x/whole/3"))).headers.get("x-2")).toBe("v") // it serves on
  } finally {
    await worker.close()
  }
})
