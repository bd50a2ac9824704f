// Several fronts of one name run as one service (docs/api.md, "Running under systemd"): a reload asked of any front
// (SIGHUP, as ExecReload sends, or pool.reload()) reloads the name's one pool, and SIGTERM to a front alone (what
// KillMode=mixed sends) drains its workers with no restart. Real fronts (test/support/core/shared-front.ts), real signals.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { join } from "node:path"
import { alive, busName, FIXTURES, until, type Child } from "../../support/helpers.ts"
import {
  frontChild,
  nodeWorkerCommand,
  poolOf,
  removeFrontBuilds,
  workerPids,
  type FrontChild,
} from "../../support/core/front-child.ts"
import { PEER_RUNTIMES, peerSkip, removeNodeBuilds, type PeerRuntime } from "../../support/runtime/peers.ts"

const children: Child[] = []
const pids: number[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
  for (const pid of pids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL")
})

afterAll(() => {
  removeNodeBuilds()
  removeFrontBuilds()
})

async function twoFronts(
  name: string,
  args: string[] = [],
  runtime: PeerRuntime = "bun",
): Promise<{ a: FrontChild; b: FrontChild; before: number[] }> {
  const a = await frontChild(name, ["--pool=2", ...args], children, runtime)
  const b = await frontChild(name, ["--pool=2", ...args], children, runtime)
  await until(async () => (await poolOf(a)).pids.every((p) => p > 0), "the leader's pool started", 20_000, 100)
  const before = (await poolOf(a)).pids
  pids.push(...before)
  expect((await poolOf(b)).state).toBe("created")
  expect((await workerPids(b, 2)).sort()).toEqual([...before].sort())
  return { a, b, before }
}

/** The leader's pool after a reload: every worker new and serving both fronts, every old one gone. */
async function reloaded(a: FrontChild, b: FrontChild, before: number[]) {
  const after = (await poolOf(a)).pids
  pids.push(...after)
  expect(after.length).toBe(2)
  expect(after.filter((p) => before.includes(p))).toEqual([])
  await until(() => before.every((p) => !alive(p)), "the old workers are gone", 20_000, 100)
  expect((await workerPids(b, 2)).sort()).toEqual([...after].sort())
}

describe("a reload asked of any front of a shared name", () => {
  test.each(["leader", "standby"] as const)(
    "pool.reload() on the %s front reloads the name's one pool",
    async (which) => {
      const name = busName("reload")
      const { a, b, before } = await twoFronts(name)
      const [result] = await (which === "leader" ? a : b).ask("redeploy", /^(reloaded|reload failed .*)$/)
      expect(result).toBe("reloaded")
      await reloaded(a, b, before)
    },
    120_000,
  )

  test("SIGHUP to the front that does not run the pool reloads it", async () => {
    const name = busName("reload")
    const { a, b, before } = await twoFronts(name)
    b.child.signal("SIGHUP")
    const [, result] = (await b.child.waitLine(/^(reloaded|reload failed .*)$/, 60_000)) as string[]
    expect(result).toBe("reloaded")
    await reloaded(a, b, before)
  }, 120_000)
})

// A worker whose app has no SIGTERM listener (SlotWorker.connect and nothing else): the pool retires it through the
// front that runs the pool alone, so the other front kept sending to it until the SIGTERM, which ended it at once.
test.each(PEER_RUNTIMES)(
  "a reload of %s workers with no SIGTERM listener of their own loses nothing the other front asked",
  async (runtime) => {
    if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
    const name = busName("reload")
    const command =
      runtime === "bun"
        ? [process.execPath, join(FIXTURES, "core/pool-worker.ts"), name]
        : nodeWorkerCommand(name, "--no-sigterm")
    const { a, b, before } = await twoFronts(name, [`--command=${JSON.stringify(command)}`], runtime)
    b.child.write("load\n")
    const [result] = await a.ask("redeploy", /^(reloaded|reload failed .*)$/)
    expect(result).toBe("reloaded")
    await reloaded(a, b, before)
    const [answered, failed, wrong] = (await b.ask("report", /^report (\d+) (\d+) (\d+) /)).map(Number)
    // before: 8 to 16 WorkerGoneError a reload of two workers
    expect({ failed, wrong }).toEqual({ failed: 0, wrong: 0 })
    expect(answered).toBeGreaterThan(0)
  },
  120_000,
)

test("a standby's reload whose leader is killed mid-way fails saying the leader went, not blaming its uid", async () => {
  const { a, b } = await twoFronts(busName("reload"))
  const asked = b.ask("redeploy", /^(reloaded|reload failed .*)$/)
  await Bun.sleep(300) // the reload is under way: each successor must stay up restart.minReadyMs (1.5 s) first
  await a.child.kill("SIGKILL")
  const [result] = await asked
  // before: "… closed the connection without an answer: it refused this uid (0), or it died"
  expect(result).toStartWith("reload failed SupervisorError")
  expect(result).toContain("the front went away before it answered (it died mid-reload")
}, 120_000)

describe("SIGTERM to the fronts alone (KillMode=mixed)", () => {
  test("drains and ends every worker of the pool, with no restart and no give-up", async () => {
    const name = busName("stop")
    const { a, b, before } = await twoFronts(name)
    b.child.signal("SIGTERM")
    expect(await b.child.exited).toBe(0)
    a.child.signal("SIGTERM")
    expect(await a.child.exited).toBe(0)
    await until(() => before.every((p) => !alive(p)), "every worker of the pool is gone", 20_000, 100)
    for (const f of [a, b]) expect(f.child.stderr).not.toMatch(/restart|gave up|crash/i)
  }, 120_000)
})
