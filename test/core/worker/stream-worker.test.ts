// The worker's side of a streamed answer (docs/PROTOCOL.md §9), with the worker in a process of its own: what it
// is offered (req.streamWindow), a caller cancelling mid-stream, and a worker waiting for credit.
import { afterAll, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { stopAll, until, withHub } from "../../support/helpers.ts"

afterAll(stopAll)

test.each([
  [{}, 1024 * 1024],
  [{ streamWindowBytes: 8192 }, 8192],
  [{ streamWindowBytes: 0 }, 0],
  [{ maxBodyBytes: 20_000, maxHeadBytes: 1024 }, 16384],
])("listen options %j offer each request a stream window of %d bytes (req.streamWindow)", async (opts, window) => {
  await withHub(opts, [{}], async (bus) => {
    expect((await bus.request({ path: "/window" })).json()).toEqual({ streamWindow: window })
  })
})

test("callers that cancel streams mid-way, again and again: each time the handler's signal aborts, its body is cancelled and the slot returns", async () => {
  await withHub({ slots: 2 }, [{}], async (bus, [worker]) => {
    for (let i = 0; i < 20; i++) {
      const res = await bus.request({ path: `/endless?i=${i}` }, { stream: true })
      const reader = res.body.getReader()
      expect((await reader.read()).done).toBe(false)
      // Every other time the worker has filled the window and waits for credit when the cancel comes.
      if (i % 2) await until(() => bus.workers[0]!.slots.includes("streaming"), "the worker streams")
      await reader.cancel()
      await worker!.waitLine(new RegExp(`^cancelled /endless\\?i=${i}$`))
      await worker!.waitLine(new RegExp(`^aborted /endless\\?i=${i}$`))
      await until(() => bus.workers[0]!.inFlight === 0, "the slot went back")
    }
    expect(bus.workers[0]!.stuck).toBe(0)
    expect((await bus.request({ path: "/window" })).status).toBe(200)
  })
})

const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return (Number(f[11]) + Number(f[12])) * 10 // utime + stime, in clock ticks of 10 ms
}

test.skipIf(process.platform !== "linux")(
  "a worker whose window is full sleeps until the caller reads on (it does not spin)",
  async () => {
    await withHub({}, [{}], async (bus, [worker]) => {
      const res = await bus.request({ path: "/endless" }, { stream: true })
      const reader = res.body.getReader()
      expect((await reader.read()).done).toBe(false)
      await Bun.sleep(100) // the worker fills the window and parks
      const before = cpuMs(worker!.pid)
      const start = performance.now()
      await Bun.sleep(500)
      const used = cpuMs(worker!.pid) - before
      // Spinning it used all of it (~500 ms); asleep, nothing but a clock tick or two.
      expect(used).toBeLessThan((performance.now() - start) / 2)
      let got = 0
      while (got < 8 * 1024 * 1024) got += (await reader.read()).value!.length // and it goes on when read
      await reader.cancel()
    })
  },
)
