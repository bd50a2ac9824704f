// Views a handler was given die with its request: kept past the handler they read empty, never the next
// request's bytes, and never crash the worker after the connection closed.
import { describe, expect, test } from "bun:test"
import { SlotBus } from "../../../src/index.ts"
import { bunChild, busName } from "../../support/helpers.ts"

const empty: Record<string, unknown> = {
  method: "",
  path: "",
  headers: {},
  bodyLength: 0,
  body: "",
  subarrayLength: 0,
  bufferLength: 0,
  replyLength: 0,
  replyBytes: 0,
  text: "",
}

/** Every probe read empty, or threw a TypeError: nothing of any request shows. */
function expectDead(seen: Record<string, unknown>) {
  expect(Object.keys(seen).sort()).toEqual(Object.keys(empty).sort())
  for (const [k, v] of Object.entries(seen))
    expect({ [k]: v === "threw TypeError" ? empty[k] : v }).toEqual({ [k]: empty[k] })
}

describe("a handler that keeps its request past settling", () => {
  test("reads empty views and strings in the next request, not that request's method, path, authorization or body", async () => {
    const name = busName("views")
    const bus = await SlotBus.listen(name, { slots: 1 })
    const worker = bunChild("core/keeper-worker.ts", [name])
    try {
      await worker.waitLine(/^ready/)
      await bus.waitForWorkers(1)
      // 8 KiB: a body that large is a view into the slot (smaller ones are copies, see below)
      const first = await bus.request({
        method: "POST",
        path: "/keep",
        headers: { authorization: "Bearer first-caller" },
        body: "first body".padEnd(8192, "."),
      })
      expect(first.text()).toBe("R".repeat(16))
      const second = await bus.request({
        method: "GET",
        path: "/inspect",
        headers: { authorization: "Bearer second-caller" },
        body: "second body",
      })
      expectDead(second.json())
      expect(second.text()).not.toContain("second")
    } finally {
      await bus.close({ drain: false })
      await worker.kill()
    }
  })

  test("a small body (a copy) kept past settling keeps its own bytes and never shows the next request's", async () => {
    const name = busName("views-small")
    const bus = await SlotBus.listen(name, { slots: 1 })
    const worker = bunChild("core/keeper-worker.ts", [name])
    try {
      await worker.waitLine(/^ready/)
      await bus.waitForWorkers(1)
      expect((await bus.request({ method: "POST", path: "/keep-small", body: "first body" })).text()).toBe("kept")
      const second = await bus.request({ method: "GET", path: "/inspect", body: "second body" })
      const seen = second.json() as Record<string, unknown>
      expect(seen.body).toBe("first body")
      expect(second.text()).not.toContain("second")
    } finally {
      await bus.close({ drain: false })
      await worker.kill()
    }
  })

  test("reading them after the connection closed neither crashes the worker nor shows bytes", async () => {
    const name = busName("views-closed")
    const bus = await SlotBus.listen(name, { slots: 1 })
    const worker = bunChild("core/keeper-worker.ts", [name])
    try {
      await worker.waitLine(/^ready/)
      await bus.waitForWorkers(1)
      await bus.request({ method: "POST", path: "/keep", body: "kept body".padEnd(8192, ".") })
      await bus.close({ drain: false })
      const line = await worker.waitLine(/^after-close (.*)$/)
      expectDead(JSON.parse(line[1]!))
      expect(await worker.proc.exited).toBe(0)
      expect(worker.proc.signalCode).toBeNull()
    } finally {
      await bus.close({ drain: false })
      await worker.kill()
    }
  })
})
