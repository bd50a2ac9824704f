// What stalled SSE readers cost the MCP HTTP front (`bus.listen("http:…")`: Bun.serve under Bun, node:http under
// Node 26), run as its own process (test/support/runtime/mcp-http-front.ts) whose memory is read from /proc. Each
// session of a worker gets each of its notifications: one encoded for all of them, not one per session.
import { afterAll, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { connect, type Socket } from "node:net"
import { join } from "node:path"
import { REPO, until } from "../support/helpers.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { mcpPost } from "../support/stdio/stdio.ts"

const MCP_WORKER = join(REPO, "test", "stdio", "workers", "mcp-worker.ts")
const MiB = 1024 * 1024
const QUEUE = 256 * 1024 // max_output_queue
const REPLAY = 256 * 1024 // replayBufferBytes, its default
const STALLED = 12
const COUNT = 1000 // notifications of SIZE characters per flood: 50 MB, far more than a stalled reader may hold
const SIZE = 50_000
const EVERY = 2 // the worker pauses 1 ms after each 2 of them: a client that reads keeps up (the socket buffers the rest)
afterAll(removeNodeBuilds)

/** A figure of /proc/<pid>/status, in bytes: VmRSS now, VmHWM the peak so far. */
function vm(pid: number, what: "VmRSS" | "VmHWM"): number {
  const m = new RegExp(`${what}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (!m) throw new Error(`no ${what} for ${pid}`)
  return Number(m[1]) * 1024
}

describe.each(PEER_RUNTIMES)('bus.listen("http:") under %s', (runtime) => {
  const skip = peerSkip(runtime)
  if (skip) console.log(`skipping the ${runtime} MCP HTTP front: ${skip}`)
  test.skipIf(skip !== null)(
    `${STALLED} GET streams that read nothing are cut off and cost about max_output_queue each; a reader gets every event`,
    async () => {
      const front = await peerChild(
        runtime,
        "runtime/mcp-http-front.ts",
        [process.execPath, MCP_WORKER, String(QUEUE), "listen"],
        { stdin: "pipe" },
      )
      const sockets: Socket[] = []
      try {
        const [, port] = await front.waitLine(/^ready (\d+)$/, 60_000)
        const url = `http://127.0.0.1:${port}/mcp`
        const post = mcpPost(url)
        const open = async () => {
          const init = { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } }
          const r = await post({ jsonrpc: "2.0", id: 1, method: "initialize", params: init })
          await r.text()
          const id = r.headers.get("mcp-session-id")!
          await (await post({ jsonrpc: "2.0", method: "notifications/initialized" }, id)).text()
          return id
        }
        const caller = await open()
        const flood = async (id: number) => {
          const call = { name: "flood", arguments: { count: COUNT, size: SIZE, every: EVERY } }
          const r = await post({ jsonrpc: "2.0", id, method: "tools/call", params: call }, caller)
          expect(JSON.stringify(await r.json())).toContain(`flooded ${COUNT}`)
        }
        const getStream = async (id: string) => {
          const socket = connect(Number(port), "127.0.0.1")
          sockets.push(socket)
          await new Promise((r) => socket.once("connect", r))
          socket.write(
            `GET /mcp HTTP/1.1\r\nhost: 127.0.0.1\r\naccept: text/event-stream\r\nmcp-session-id: ${id}\r\n\r\n`,
          )
          await new Promise((r) => socket.once("data", r))
          return socket
        }
        // a client that reads its GET stream as it comes: every notification of both floods (counted on the wire)
        const reader = await getStream(await open())
        const EVENT = "\nevent: message\ndata: "
        let events = 0
        let tail = ""
        let readerClosed = false
        reader.on("data", (b: Buffer) => {
          const text = tail + b.toString("latin1")
          for (let at = text.indexOf(EVENT); at >= 0; at = text.indexOf(EVENT, at + 1)) events++
          tail = text.slice(-(EVENT.length - 1))
        })
        reader.on("close", () => (readerClosed = true))
        // a first flood with no stalled reader: what passing the notifications through costs the front by itself
        await flood(2)
        const peak0 = vm(front.pid, "VmHWM")
        // the stalled readers: GET streams on sockets that read nothing once their response has begun
        const closed: Promise<number>[] = []
        for (let i = 0; i < STALLED; i++) {
          const socket = await getStream(await open())
          socket.pause()
          closed.push(
            new Promise<number>((resolve) => {
              let bytes = 0
              socket.on("data", (b) => (bytes += b.length))
              socket.on("close", () => resolve(bytes))
              socket.on("error", () => {})
            }),
          )
        }
        await flood(3)
        const growth = vm(front.pid, "VmHWM") - peak0
        const bound = 48 * MiB + STALLED * (QUEUE + REPLAY) * 2
        console.log(
          `${runtime}: the front's peak RSS grew ${(growth / MiB).toFixed(1)} MiB with ${STALLED} stalled readers (bound ${bound / MiB} MiB)`,
        )
        // each session encoded each notification itself before (12 × 50 MB): 72–118 MiB under Node 26, 15–18 now
        expect(growth).toBeLessThan(bound)
        // the front closed each stalled reader's connection (-1: it kept it open, its events queued)
        for (const s of sockets) s.resume()
        const got = await Promise.all(closed.map((c) => Promise.race([c, Bun.sleep(30_000).then(() => -1)])))
        for (const bytes of got) {
          expect(bytes).toBeGreaterThan(0)
          expect(bytes).toBeLessThan(COUNT * SIZE)
        }
        // the reading client was not cut off with them: it has every notification, its stream still open
        await until(() => events >= 2 * COUNT || readerClosed, "the reading client's notifications", 30_000)
        expect(readerClosed).toBe(false)
        expect(events).toBe(2 * COUNT)
        front.write("stop\n")
        await front.waitLine(/^stopped stopped$/, 30_000)
        expect(await front.exited).toBe(0)
      } finally {
        for (const s of sockets) s.destroy()
        await front.kill()
      }
    },
    120_000,
  )
})
