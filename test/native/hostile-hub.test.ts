// A worker against a hub that breaks docs/PROTOCOL.md (csrc/test/hostile.c): it refuses what it was sent
// with a typed error or keeps waiting, never hangs its event loop or spins on a bad fd.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { busName, type Child, FIXTURES, run, spawn, stopAll } from "../support/helpers.ts"
import { sayWhySkipped, toolSkipReason } from "../support/tools.ts"

let bin = ""
const gccSkip = toolSkipReason("gcc") // hostile-asan is built by the system gcc
sayWhySkipped("hostile-asan", gccSkip)

beforeAll(async () => {
  bin = await zigBuild("hostile")
  if (gccSkip === null) await zigBuild("hostile-asan")
}, 180_000)

afterAll(stopAll)

async function hostileHub(mode: string): Promise<string> {
  const name = busName(`hostile-${mode}`)
  const hub = spawn([join(bin, "hostile"), "hub", mode, name])
  await hub.waitLine(/^listening$/)
  return name
}

function trustingWorker(name: string): Child {
  const worker = spawn([process.execPath, join(FIXTURES, "native/trusting-worker.ts"), name])
  return worker
}

test.each(gccSkip === null ? ["hostile", "hostile-asan"] : ["hostile"])(
  "%s: the C worker refuses bad fds, rides out partial hellos and floods, refuses stale completions, wakes once per cancel it never reads; publish refuses a bad kind (-EINVAL) apart from a large request (-E2BIG)",
  async (program) => {
    const { stdout, stderr, code } = await run([join(bin, program), "test"], {
      env: {
        ...process.env,
        ASAN_OPTIONS: "halt_on_error=1 detect_leaks=1",
        UBSAN_OPTIONS: "halt_on_error=1 print_stacktrace=1",
      },
    })
    if (code !== 0) throw new Error(`${program} test exited with ${code}:\n${stderr.slice(-4000)}`)
    expect(stdout).toMatch(/^hostile ok: \d+ cases$/m)
  },
  60_000,
)

describe("a SlotWorker against a hostile hub", () => {
  test.each(["devzero", "blocking", "eventfd", "dgram", "pipe", "devzero-region"])(
    "a hub sending %s fds is refused with a ProtocolError saying so, the worker's event loop running throughout",
    async (mode) => {
      const worker = trustingWorker(await hostileHub(mode))
      const [line] = await worker.waitLine(/^(connected|rejected .*)$/)
      expect(line).toStartWith("rejected ProtocolError:")
      expect(line).toContain("sent a malformed hello or region") // was "error 1000"
      expect(await worker.proc.exited).toBe(0)
    },
    15_000,
  )

  test("a hub that sends part of its hello and stalls never blocks the worker's event loop; it gives up with HubNotFoundError", async () => {
    const worker = trustingWorker(await hostileHub("partial"))
    // Timers keep firing while the hello is incomplete: before, the worker blocked in recvmsg for good.
    await worker.waitLine(/^tick 30$/)
    const [line] = await worker.waitLine(/^(connected|rejected .*)$/, 15_000)
    expect(line).toStartWith("rejected HubNotFoundError:")
    expect(await worker.proc.exited).toBe(0)
  }, 20_000)

  test("a version 3 hub (eventfd doorbells) is refused with a ProtocolError that names the version mismatch", async () => {
    const worker = trustingWorker(await hostileHub("v3"))
    const [line] = await worker.waitLine(/^(connected|rejected .*)$/)
    expect(line).toStartWith("rejected ProtocolError:")
    expect(line).toContain("another version of the slotbus wire protocol than this worker (4")
    expect(await worker.proc.exited).toBe(0)
  }, 15_000)

  test("the same hand-made hub with honest fds is accepted, so what was refused above is the fds alone", async () => {
    const worker = trustingWorker(await hostileHub("honest"))
    const [line] = await worker.waitLine(/^(connected|rejected .*)$/)
    expect(line).toBe("connected")
  }, 15_000)
})
