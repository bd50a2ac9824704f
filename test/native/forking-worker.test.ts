// A C worker whose process forks without exec and exits (test/support/native/forking-worker.c): its child keeps the
// socket open, so no EOF ever reaches the hub, which must still see the worker gone (docs/PROTOCOL.md §1).
import { beforeAll, expect, test } from "bun:test"
import { join } from "node:path"
import { repoRoot, zigBuild } from "../../scripts/zig.ts"
import { SlotBus, WorkerGoneError } from "../../src/index.ts"
import { busName, type Child, eventually, FIXTURES, outcome, spawn } from "../support/helpers.ts"

let exe = ""

beforeAll(async () => {
  const source = join(FIXTURES, "native/forking-worker.c")
  const bin = await zigBuild("examples", {
    prefix: join(repoRoot, "zig-out", "forking"),
    args: [`-Dc-worker=${source}`],
  })
  exe = join(bin, "c-worker")
}, 180_000)

const decoder = new TextDecoder()

test("a worker that forks and exits is dropped though its child holds the socket: its caller gets WorkerGoneError, an idempotent request goes to another worker", async () => {
  const name = busName("forking-worker")
  const bus = await SlotBus.listen(name, { timeoutMs: 0 }) // no deadline: its callers waited for ever before
  const first = spawn([exe, name])
  let second: Child | undefined
  let child = 0
  try {
    await first.waitLine(/^ready$/)
    await bus.waitForWorkers(1)
    // the only worker gets both; it takes "fork" first, forks and exits, "abc" still in its slot
    const forked = outcome(bus.call("fork"), 10_000)
    const idempotent = outcome(bus.call("abc", { idempotent: true }), 10_000)
    child = Number((await first.waitLine(/^child (\d+)$/))[1])
    expect(await first.proc.exited).toBe(0)
    second = spawn([exe, name])
    await second.waitLine(/^ready$/)
    const f = await forked
    expect(f.state === "rejected" && f.error).toBeInstanceOf(WorkerGoneError)
    const i = await idempotent
    expect(i.state === "resolved" && decoder.decode(i.value)).toBe("cba")
    expect(await eventually(() => bus.workers.every((w) => w.pid !== first.pid), 5000)).toBe(true)
    expect(bus.workers.map((w) => w.pid)).toEqual([second.pid])
  } finally {
    if (child > 0) process.kill(child, "SIGKILL")
    await Promise.all([first.kill(), second?.kill()])
    await bus.close({ drain: false })
  }
}, 30_000)
