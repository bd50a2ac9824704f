// A Node 26 worker (node:ffi, src/runtime/node/index.ts) behind a Bun front, and a Bun worker behind a Node 26 front, over
// the same name and the same libslotbus (issue 67): requests round-trip, a close and a kill -9 are seen as they are
// between two Bun processes.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { SlotBus, WorkerGoneError, type WorkerEvent } from "../../src/index.ts"
import { controlCall } from "../../src/core/internal.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, eventually, outcome, rejection, spawn, spawnWorker, stopAll, type Child } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node worker tests: no Node >= 26.1 here (${NODE_INSTALL})`)

let built: { worker: ReturnType<typeof buildForNode>; front: ReturnType<typeof buildForNode> } | undefined
let lib: string
beforeAll(async () => {
  if (node === null) return
  const worker = buildForNode("node-worker.ts")
  try {
    built = { worker, front: buildForNode("node-front.ts") }
  } catch (e) {
    worker.remove()
    throw e
  }
  lib = await libraryPath()
})
afterAll(async () => {
  await stopAll()
  built?.worker.remove()
  built?.front.remove()
})

/** Runs a built fixture under Node with the library this front loaded; waits for its first line matching `ready`. */
async function underNode(
  entry: string,
  name: string,
  ready: RegExp,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Child> {
  const child = spawn([node!, ...nodeFlags(node!), entry, name, ...args], {
    env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1", ...env },
    stdin: "pipe",
  })
  await child.waitLine(ready, 30_000).catch((e) => {
    throw new Error(`${entry} under Node did not start: ${e}\n${child.output}`)
  })
  return child
}

describe.skipIf(node === null)("a Node 26 worker behind a Bun front", () => {
  const nodeWorker = (name: string, args: string[] = []) => underNode(built!.worker.entry, name, /^ready /, args)

  test("requests round-trip: echoed bytes, many in flight at once, and its pid", async () => {
    const bus = await SlotBus.listen(busName("node"))
    const worker = await nodeWorker(bus.name)
    try {
      await bus.waitForWorkers(1, { timeoutMs: 30_000 })
      expect(new TextDecoder().decode(await bus.call("hello from bun"))).toBe("hello from bun")
      const big = new Uint8Array(200_000).map((_, i) => (i * 31) & 255)
      expect(await bus.call(big)).toEqual(big)
      const many = await Promise.all(Array.from({ length: 64 }, (_, i) => bus.call(`request ${i}`)))
      expect(many.map((b) => new TextDecoder().decode(b))).toEqual(Array.from({ length: 64 }, (_, i) => `request ${i}`))
      expect(new TextDecoder().decode(await bus.call("?pid "))).toBe(String(worker.pid))
      expect(bus.stats().workers.map((w) => w.pid)).toEqual([worker.pid])
    } finally {
      await bus.close()
    }
    // the front's close reaches the Node worker, which ends on its own
    await worker.waitLine(/^closed /, 30_000)
    expect(await worker.exited).toBe(0)
  })

  test("fetch mode: bus.fetch gets the Node worker's Response, its status, headers, JSON and a streamed body", async () => {
    const bus = await SlotBus.listen(busName("node"))
    try {
      await nodeWorker(bus.name, ["--fetch"])
      await bus.waitForWorkers(1, { timeoutMs: 30_000 })
      const hello = await bus.fetch(new Request("http://front/hello"))
      expect([hello.status, hello.headers.get("x-runtime"), await hello.text()]).toEqual([201, "node", "hi /hello"])
      const posted = new Request("http://front/json", { method: "POST", body: "payload", headers: { "x-a": "b" } })
      expect(await (await bus.fetch(posted)).json()).toEqual({ method: "POST", body: "payload", header: "b" })
      expect(await (await bus.fetch(new Request("http://front/stream"))).text()).toBe(
        "chunk0;chunk1;chunk2;chunk3;chunk4;",
      )
    } finally {
      await bus.close()
    }
  })

  test('a method no Request takes ("G\\xffT") fails alike in a Node and a Bun fetch worker, its handler never run', async () => {
    const bus = await SlotBus.listen(busName("node-method"))
    try {
      // the front lets it by (a raw worker may take any verb); Bun's Request took it as GET, Node's threw a TypeError
      for (const start of [
        () => nodeWorker(bus.name, ["--fetch"]),
        () =>
          spawn([process.execPath, join(import.meta.dir, "../support/runtime/node-worker.ts"), bus.name, "--fetch"]),
      ]) {
        const w = await start()
        await bus.waitForWorkers(1, { timeoutMs: 30_000 })
        const e = (await rejection(bus.request({ method: "G\xffT", path: "/json" }))) as Error
        expect([e.name, e.message]).toEqual([
          "RemoteError",
          'ProtocolError: the hub sent a request whose path or method no URL takes: ["GÿT","/json"]',
        ])
        await w.kill()
        expect(await eventually(() => bus.workerCount === 0, 10_000)).toBe(true)
      }
    } finally {
      await bus.close()
    }
  })

  test("kill -9 of the Node worker settles its requests in flight with WorkerGoneError and is a leave", async () => {
    const bus = await SlotBus.listen(busName("node"))
    const events: WorkerEvent[] = []
    bus.onWorker((e) => events.push(e))
    try {
      const worker = await nodeWorker(bus.name)
      await bus.waitForWorkers(1, { timeoutMs: 30_000 })
      const held = Array.from({ length: 32 }, () => outcome(bus.call("?hold"), 30_000))
      expect(await eventually(() => (bus.stats().workers[0]?.inFlight ?? 0) === 32, 30_000)).toBe(true)
      await worker.kill("SIGKILL")
      const settled = await Promise.all(held)
      expect(settled.map((s) => s.state)).toEqual(Array(32).fill("rejected"))
      for (const s of settled) expect(s.state === "rejected" && s.error).toBeInstanceOf(WorkerGoneError)
      expect(await eventually(() => events.some((e) => e.type === "leave"), 30_000)).toBe(true)
      expect(events.find((e) => e.type === "leave")?.worker.pid).toBe(worker.pid)
      expect(bus.stats().workers).toEqual([])
    } finally {
      await bus.close()
    }
  })
})

describe.skipIf(node === null)("a Bun worker behind a Node 26 front", () => {
  test("requests round-trip; kill -9 of the Bun worker fails the calls in flight with WorkerGoneError, a leave", async () => {
    const name = busName("nodefront")
    const front = await underNode(built!.front.entry, name, /^listening$/)
    try {
      const echo = await spawnWorker(name)
      await front.waitLine(new RegExp(`^join ${echo.pid}$`), 30_000)
      front.write("call 1 hello from node\n")
      await front.waitLine(/^answer 1 hello from node$/, 30_000)
      await echo.kill("SIGKILL")
      await front.waitLine(new RegExp(`^leave ${echo.pid}$`), 30_000)

      const slow = await spawnWorker(name, { delayMs: 60_000 })
      await front.waitLine(new RegExp(`^join ${slow.pid}$`), 30_000)
      // issue 67: kill -9 of a worker with 32 requests in flight settles all 32 (a Node worker at a Bun front: above)
      for (let i = 0; i < 32; i++) front.write(`call held${i} never answered\n`)
      const held = `workers ${slow.pid}:32`
      const asked = () => front.lines.includes(held) || (front.write("workers\n"), false)
      expect(await eventually(asked, 30_000)).toBe(true)
      await slow.kill("SIGKILL")
      for (let i = 0; i < 32; i++) await front.waitLine(new RegExp(`^failed held${i} WorkerGoneError$`), 30_000)
      await front.waitLine(new RegExp(`^leave ${slow.pid}$`), 30_000)
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 120_000)

  test("its control socket (connectFd over node:net) carries a request from Bun's controlCall, 4 MB each way", async () => {
    const name = busName("nodefront")
    const front = await underNode(built!.front.entry, name, /^listening$/)
    try {
      const echo = await spawnWorker(name)
      await front.waitLine(new RegExp(`^join ${echo.pid}$`), 30_000)
      const body = new Uint8Array(4 * 1024 * 1024).map((_, i) => (i * 7) & 255)
      const answer = await controlCall(name, { method: "POST", path: "/echo", body, timeoutMs: 30_000 })
      const parts: Uint8Array[] = []
      for await (const part of answer.body) parts.push(part)
      expect(answer.status).toBe(200)
      expect(answer.headers).toContainEqual(["x-pid", String(echo.pid)])
      expect(Buffer.concat(parts).equals(Buffer.from(body))).toBe(true)
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 120_000)
})

// Parked on both sides, every request and every answer is a doorbell wake-up: on Node the doorbell's uv_poll callback
// calls the pump itself (src/runtime/node/poll.ts), and an immediate runs what it queued in the same turn.
describe.skipIf(node === null)("park on both sides: a doorbell wake-up for every request and answer", () => {
  const CALLS = 300
  const parked = { SLOTBUS_TEST_IDLE: "park" }

  test("a Node worker at a Bun front answers call after call", async () => {
    const bus = await SlotBus.listen(busName("nodepark"), { idle: "park" })
    const worker = await underNode(built!.worker.entry, bus.name, /^ready /, [], parked)
    try {
      await bus.waitForWorkers(1, { timeoutMs: 30_000 })
      for (let i = 0; i < CALLS; i++) expect(new TextDecoder().decode(await bus.call(`ring ${i}`))).toBe(`ring ${i}`)
    } finally {
      await bus.close()
      await worker.kill()
    }
  }, 60_000)

  test("a Node front gets answer after answer from a Bun worker", async () => {
    const name = busName("nodeparkfront")
    const front = await underNode(built!.front.entry, name, /^listening$/, [], parked)
    try {
      const echo = await spawnWorker(name, { idle: "park" })
      await front.waitLine(new RegExp(`^join ${echo.pid}$`), 30_000)
      for (let i = 0; i < CALLS; i++) {
        front.write(`call ${i} ring ${i}\n`)
        await front.waitLine(new RegExp(`^answer ${i} ring ${i}$`), 30_000)
      }
      front.write("close\n")
      expect(await front.exited).toBe(0)
    } finally {
      await front.kill()
    }
  }, 60_000)
})
