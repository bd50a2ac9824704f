// A worker that breaks its streamed answer (docs/PROTOCOL.md §9.6): the hub reads each frame header once, refuses
// what the protocol does not allow, cuts that worker off, fails its caller's stream, and goes on serving.
import { afterEach, expect, test } from "bun:test"
import { ProtocolError, SlotBus, type StreamedResponse } from "../../../src/index.ts"
import { bunChild, busName, rejection, spawnWorker, type Child } from "../../support/helpers.ts"

let cleanup: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})

const SCENARIOS = ["length", "type", "head", "zero", "produced", "notify", "random 1", "random 7", "random 42"]

test.each(SCENARIOS)(
  "a stream broken as %s: the caller's stream fails, the worker is cut off, others serve on",
  async (s) => {
    const [scenario, seed = "1"] = s.split(" ")
    const bus = await SlotBus.listen(busName("stream-hostile"), {
      streamWindowBytes: 4096,
      slots: 4,
      maxBodyBytes: 65536,
    })
    cleanup.push(() => bus.close({ drain: false }))
    const hostile: Child = bunChild("core/stream-hostile.ts", [bus.name, scenario!, seed])
    cleanup.push(async () => void (await hostile.kill()))
    await hostile.waitLine(/^ready$/, 10_000)
    await bus.waitForWorkers(1)
    const res = (await bus.request({ path: "/" }, { stream: true })) as StreamedResponse
    expect(res.status).toBe(200)
    await hostile.waitLine(/^broken$/, 10_000)
    const err = await rejection(new Response(res.body).arrayBuffer())
    expect(err).toBeInstanceOf(ProtocolError)
    await hostile.waitLine(/^hub hung up$/, 10_000)
    expect(bus.stats().protocolErrors).toBe(1)
    const echo = await spawnWorker(bus.name)
    cleanup.push(async () => void (await echo.kill()))
    await bus.waitForWorkers(1)
    expect((await bus.request({ path: "/echo", body: "still here" })).status).toBe(200)
  },
  30_000,
)
