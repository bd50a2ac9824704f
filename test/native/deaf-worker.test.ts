// A C worker that ignores cancellation (test/support/native/deaf-worker.c, docs/PROTOCOL.md §3 allows it): a request
// of its that timed out must not leave it spinning, nor blind to its hub going.
import { beforeAll, describe, expect, test } from "bun:test"
import { readFileSync } from "node:fs"
import { join } from "node:path"
import { repoRoot, zigBuild } from "../../scripts/zig.ts"
import { SlotBus } from "../../src/index.ts"
import { busName, eventually, FIXTURES, outcome, spawn } from "../support/helpers.ts"

let exe = ""
let ticksPerSecond = 100

beforeAll(async () => {
  const source = join(FIXTURES, "native/deaf-worker.c")
  const bin = await zigBuild("examples", { prefix: join(repoRoot, "zig-out", "deaf"), args: [`-Dc-worker=${source}`] })
  exe = join(bin, "c-worker")
  ticksPerSecond = Number(Bun.spawnSync(["getconf", "CLK_TCK"]).stdout.toString().trim()) || 100
}, 180_000)

/** CPU time the process used so far, user and system, in clock ticks (/proc/<pid>/stat fields 14 and 15). */
function cpuTicks(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
  return Number(fields[11]) + Number(fields[12])
}

const decoder = new TextDecoder()

describe.each([
  { mode: "adaptive", idle: "0" },
  { mode: "park (doorbell)", idle: "2" },
  { mode: "park (futex)", idle: "3" },
])("a C worker that never reads cancel_seq, idling in $mode mode", ({ idle }) => {
  test("sleeps again after a request of its timed out, and exits when the hub closes", async () => {
    const name = busName("deaf-worker")
    const bus = await SlotBus.listen(name, { timeoutMs: 100 })
    const worker = spawn([exe, name, idle])
    try {
      await worker.waitLine(/^ready$/)
      await bus.waitForWorkers(1)
      expect(decoder.decode(await bus.call("abc"))).toBe("cba")
      const late = await outcome(bus.call("sleep"), 5000) // 300 ms of work against a 100 ms timeout: a cancel
      expect(late.state === "rejected" && (late.error as Error).name).toBe("TimeoutError")
      expect(await eventually(() => bus.stats().inFlight === 0, 5000)).toBe(true) // its late answer came back
      const before = cpuTicks(worker.pid)
      await Bun.sleep(1000)
      // parked it uses next to nothing; spinning (before: the cancel it never read woke every park) a whole second
      expect(cpuTicks(worker.pid) - before).toBeLessThan(ticksPerSecond / 5)
      expect(decoder.decode(await bus.call("still"))).toBe("llits")
      await bus.close()
      expect(await outcome(worker.proc.exited, 5000)).toMatchObject({ state: "resolved", value: 0 })
    } finally {
      await worker.kill()
      await bus.close({ drain: false })
    }
  }, 20_000)
})
