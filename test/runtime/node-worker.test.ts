// A Node 26 worker (node:ffi, src/runtime/node.ts) behind a Bun front, over the same name and the same libslotbus
// (issue 67): requests round-trip, a graceful close and a kill -9 are seen by the front as they are for a Bun worker.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SlotBus, WorkerGoneError, type WorkerEvent } from "../../src/index.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, eventually, outcome, spawn, stopAll, type Child } from "../support/helpers.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/node.ts"

const node = findNode()
if (!node) console.log(`skipping the Node worker tests: no Node >= 26.1 here (${NODE_INSTALL})`)

describe.skipIf(node === null)("a Node 26 worker behind a Bun front", () => {
  let built: ReturnType<typeof buildForNode>
  let lib: string
  beforeAll(async () => {
    built = buildForNode("node-worker.ts")
    lib = await libraryPath()
  })
  afterAll(async () => {
    await stopAll()
    built?.remove()
  })

  async function nodeWorker(name: string): Promise<Child> {
    const child = spawn([node!, ...nodeFlags(node!), built.entry, name], {
      env: { ...process.env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
    })
    await child.waitLine(/^ready /, 30_000).catch((e) => {
      throw new Error(`the Node worker did not connect: ${e}\n${child.output}`)
    })
    return child
  }

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
