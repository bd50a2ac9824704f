// closeGracefully under keep-alive load, as a user's front meets SIGTERM: Bun.serve under Bun and node:http with
// nodeHandler under Node and under Bun, over a pool of two workers, 32 keep-alive connections from a raw-socket
// client. Every request sent is answered 200, every connection is told `Connection: close`, and the front exits 0.
// The figures (answers, how long from the front's last answer to closed) are printed, not asserted.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { connect } from "node:net"
import { join } from "node:path"
import { createServer } from "node:http"
import { closeGracefully, SlotBus } from "../../src/index.ts"
import { leaving } from "../../src/core/hub/fetch-body.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, ECHO_WORKER, FIXTURES, spawn, stopAll, until } from "../support/helpers.ts"
import { keepAliveLoad } from "../support/runtime/keep-alive-load.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping closeGracefully under Node: no Node >= 26.1 here (${NODE_INSTALL})`)
let built: ReturnType<typeof buildForNode> | undefined
let lib = ""
beforeAll(async () => {
  if (node === null) return
  built = buildForNode("graceful-front.ts")
  lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  built?.remove()
})

const CONNECTIONS = 32

function startFront(runtime: "bun" | "node", server: "bun" | "node" | "own" | "head", timeoutMs?: number) {
  const args = [busName("graceful"), server, process.execPath, ECHO_WORKER]
  if (timeoutMs !== undefined) args.push(String(timeoutMs))
  return runtime === "bun"
    ? spawn([process.execPath, join(FIXTURES, "runtime/graceful-front.ts"), ...args])
    : spawn([node!, ...nodeFlags(node!), built!.entry, ...args], {
        env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
      })
}

async function sigtermUnderLoad(runtime: "bun" | "node", server: "bun" | "node" | "own", reconnect: boolean) {
  const front = startFront(runtime, server)
  const port = Number((await front.waitLine(/^ready (\d+)$/, 30_000))[1])
  const load = keepAliveLoad(port, CONNECTIONS, reconnect)
  try {
    await until(() => load.result.answered >= 1000, "1000 answers under load", 30_000)
    front.signal("SIGTERM")
    expect(await front.exited).toBe(0)
    let ended = false
    void load.ended.then(() => (ended = true))
    await until(() => ended, "every connection ended", 10_000)
  } finally {
    await load.stop()
  }
  const r = load.result
  const closed = front.lines.find((l) => l.startsWith("closed "))
  console.log(
    `${{ bun: "Bun.serve", node: "node:http", own: "node:http answering itself" }[server]} under ${runtime}, ${reconnect ? "reconnecting" : "leaving"} client: ${r.answered} answered, ${r.failed.length} failed, ${r.toldToClose} told to close, ${r.refused} refused; closed ${closed?.slice(7)} ms after the last answer`,
  )
  expect(r.failed).toEqual([])
  expect(r.toldToClose).toBeGreaterThanOrEqual(CONNECTIONS)
}

describe("a SIGTERM'd front closed with closeGracefully under keep-alive load fails no request", () => {
  test("Bun.serve under Bun, its clients leaving when told", () => sigtermUnderLoad("bun", "bun", false), 90_000)
  test("node:http under Bun, its clients leaving when told", () => sigtermUnderLoad("bun", "node", false), 90_000)
  test.skipIf(node === null)(
    "node:http under Node, its clients leaving when told",
    () => sigtermUnderLoad("node", "node", false),
    90_000,
  )
  // an app's own routes (Express's, Fastify's) answer without nodeHandler: closeGracefully tells their clients too
  test(
    "node:http answering itself under Bun, its clients leaving when told",
    () => sigtermUnderLoad("bun", "own", false),
    90_000,
  )
  test.skipIf(node === null)(
    "node:http answering itself under Node, its clients leaving when told",
    () => sigtermUnderLoad("node", "own", false),
    90_000,
  )
  test.skipIf(node === null)(
    "node:http under Node, its clients connecting again (refused: it no longer listens)",
    () => sigtermUnderLoad("node", "node", true),
    90_000,
  )
})

/** What came back on a connection until it closed: each answer's status line, Connection header and body. */
function answersOn(all: Buffer): string[] {
  const out: string[] = []
  while (all.length > 0) {
    const end = all.indexOf("\r\n\r\n")
    const head = all.subarray(0, end).toString("latin1")
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0)
    const connection = /\r\nconnection: (\S+)/i.exec(head)?.[1]?.toLowerCase() ?? "-"
    out.push(`${head.split("\r\n")[0]} ${connection} ${all.subarray(end + 4, end + 4 + length).toString()}`)
    all = all.subarray(end + 4 + length)
  }
  return out
}

test("closeGracefully refuses what is not a server, bus or pool, and leaves the bus as it was", async () => {
  // before: closeGracefully(null, { bus }) threw "Cannot read properties of null (reading 'stop')" with the bus
  // already marked leaving (its answers said Connection: close from then on) and never closed
  const bus = await SlotBus.listen(busName("graceful-args"))
  try {
    for (const server of [null, undefined, {}, "server", { stop: 1 }])
      await expect(closeGracefully(server as never, { bus })).rejects.toThrow(
        "closeGracefully takes the front's server",
      )
    const server = createServer()
    await expect(closeGracefully(server, { bus: {} as never })).rejects.toThrow("bus must be a SlotBus")
    await expect(closeGracefully(server, { bus, pool: {} as never })).rejects.toThrow("pool must be")
    expect(leaving.has(bus)).toBe(false)
  } finally {
    await bus.close()
  }
})

describe("closeGracefully and a client's pipelined requests", () => {
  test.each([
    ["bun", "node"],
    ["node", "node"],
    ["node", "head"],
  ] as const)(
    "node:http under %s (%s): each request sent before SIGTERM is answered, the last saying close",
    async (runtime, kind) => {
      if (runtime === "node" && node === null) return
      const front = startFront(runtime, kind)
      const port = Number((await front.waitLine(/^ready (\d+)$/, 30_000))[1])
      const chunks: Buffer[] = []
      const socket = connect(port, "127.0.0.1")
      const closed = new Promise((r) => socket.on("close", r))
      socket.on("data", (b: Buffer) => chunks.push(b))
      const ask = (method: string, path: string, body = "") =>
        `${method} ${path} HTTP/1.1\r\nHost: h\r\nx-delay-ms: 400\r\ncontent-length: ${body.length}\r\n\r\n${body}`
      socket.write(ask("GET", "/a") + ask("GET", "/b") + ask("POST", "/c", "last"))
      await Bun.sleep(150) // all three in flight or waiting behind the first
      front.signal("SIGTERM")
      await closed
      expect(await front.exited).toBe(0)
      // before: the first answer said close and the other two were dropped
      expect(answersOn(Buffer.concat(chunks))).toEqual([
        "HTTP/1.1 200 OK keep-alive ",
        "HTTP/1.1 200 OK keep-alive ",
        "HTTP/1.1 200 OK close last",
      ])
    },
    60_000,
  )
})

describe("closeGracefully with a timeoutMs past 2^31 − 1 ms waits for the requests in flight", () => {
  // before: the timeout went to a bare setTimeout, which fires at once past 2^31 − 1 ms (a TimeoutOverflowWarning):
  // closeGracefully cut every connection some 10 ms after SIGTERM, the request in flight reset
  test.each([
    ["Bun.serve", "bun", "bun"],
    ["node:http", "node", "node"],
  ] as const)(
    "%s under %s: a request 1.5 s long, in flight at SIGTERM, is answered 200",
    async (_label, server, runtime) => {
      if (runtime === "node" && node === null) return
      const front = startFront(runtime, server, 2 ** 31)
      const port = Number((await front.waitLine(/^ready (\d+)$/, 30_000))[1])
      const answer = fetch(`http://127.0.0.1:${port}/slow-one`, {
        headers: { "x-delay-ms": "1500" },
        body: "in flight",
        method: "POST",
      }).then(
        async (r) => `${r.status} ${await r.text()}`,
        (e: Error) => `failed: ${e.message}`,
      )
      await Bun.sleep(300) // the request is with its worker
      front.signal("SIGTERM")
      expect(await answer).toBe("200 in flight")
      expect(await front.exited).toBe(0)
    },
    60_000,
  )
})
