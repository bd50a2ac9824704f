// At most once, unless the caller says otherwise: a request whose worker dies before answering fails with
// WorkerGoneError and is never sent again; one marked idempotent goes to another worker, once.
import { expect, test } from "bun:test"
import { SlotBus, WorkerGoneError } from "../../../src/index.ts"
import { bunChild, busName, rejection, spawnWorker, until } from "../../support/helpers.ts"

test("a worker killed mid-request: plain requests fail, idempotent ones are answered by another worker", async () => {
  const bus = await SlotBus.listen(busName("idem"), { timeoutMs: 30_000 })
  const hanging = bunChild("core/crash-worker.ts", [bus.name, "hang"])
  try {
    await hanging.waitLine(/^ready /)
    await bus.waitForWorkers(1)
    const plain = bus.request({ path: "/p", body: "plain" })
    const idem = bus.request({ path: "/i", body: "again" }, { idempotent: true })
    const idemCall = bus.call("raw", { idempotent: true })
    await until(() => bus.workers[0]?.inFlight === 3, "the hanging worker holds all three", 10_000)
    const echo = await spawnWorker(bus.name)
    try {
      await bus.waitForWorkers(2)
      process.kill(hanging.pid, "SIGKILL")
      expect(await rejection(plain)).toBeInstanceOf(WorkerGoneError)
      const res = await idem
      expect(res.status).toBe(200)
      expect(res.text()).toBe("again")
      expect(await idemCall).toBeInstanceOf(Uint8Array)
      expect(bus.stats().errors).toBe(1)
    } finally {
      await echo.kill()
    }
  } finally {
    await hanging.kill()
    await bus.close({ drain: false })
  }
}, 30_000)

test("idempotent is checked", async () => {
  const bus = await SlotBus.listen(busName("idem"))
  try {
    expect(await rejection(bus.request({}, { idempotent: "yes" as never }))).toBeInstanceOf(TypeError)
  } finally {
    await bus.close({ drain: false })
  }
})
