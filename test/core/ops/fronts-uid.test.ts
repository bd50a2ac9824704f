// Another uid against a user's host-wide names (issue 64 item 2, docs/PROTOCOL.md §1.1): a process of uid 65534 binds
// every abstract name version 2 used for the user's bus, its control socket, its shared fronts' election, a topic and
// a contest, before the owner starts and while a leader dies. The owner's names are files in its own 0700 socket
// directory, where no other uid can make anything: the squats hold nothing of the owner's.
import { afterEach, describe, expect, test } from "bun:test"
import { SlotBus } from "../../../src/index.ts"
import { controlCall } from "../../../src/core/ops/control-client.ts"
import { Topic } from "../../../src/events/index.ts"
import { Contest } from "../../../src/leases/index.ts"
import { alive, busName, spawn, spawnWorker, until, type Child } from "../../support/helpers.ts"
import { frontChild, poolOf } from "../../support/core/front-child.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../../support/uid.ts"

const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

const squatSkip = whyNotAsNobody(process.execPath)
const euid = process.geteuid?.() ?? 0

/** A process of uid 65534 that binds and listens on each abstract name (retrying every 0.5 ms one that is taken, for
 * as long as it runs) and holds every connection: "ready" once it tried each once, "bound <name>" for each it holds. */
function squat(names: string[]): Child {
  const script = `
    const names = ${JSON.stringify(names)}
    const held = new Set()
    const tryAll = () => {
      for (const n of names) {
        if (held.has(n)) continue
        try {
          Bun.listen({ unix: "\\0" + n, socket: { data() {} } })
          held.add(n)
          console.log("bound " + n)
        } catch {}
      }
    }
    tryAll()
    console.log("ready")
    setInterval(tryAll, 0.5)`
  const c = spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv })
  children.push(c)
  return c
}

describe.skipIf(squatSkip !== null)(`version 2's abstract names held by a process of uid ${NOBODY}`, () => {
  test("before the owner starts: its shared fronts lead, its control socket, topic and contest open", async () => {
    const name = busName("sq")
    const sq = squat([
      `slotbus.fronts.${name}`,
      `slotbus-ctl.${name}`,
      `slotbus.topic.${euid}.${name}`,
      `slotbus-lease.${name}`,
      `slotbus-lease-cluster.${name}.${process.pid}`,
    ])
    await sq.waitLine(/^ready$/, 20_000)
    expect(sq.lines).toContain(`bound slotbus.fronts.${name}`) // the squat is real: the name was free to take
    const bus = await SlotBus.listen(name, { shared: true }) // version 2: PeerRefusedError naming uid 65534
    try {
      expect(bus.front?.leader).toBe(true)
      const w = await spawnWorker(name, { waitForHubMs: 10_000 })
      children.push(w)
      await bus.waitForWorkers(1, 20_000)
      const answer = await controlCall(name, { method: "POST", path: "/echo", body: new TextEncoder().encode("hi") })
      expect(answer.status).toBe(200)
      answer.close()
      const topic = await Topic.open(name)
      topic.close()
      const contest = await Contest.open(name)
      contest.close()
    } finally {
      await bus.close({ drain: false })
    }
  }, 60_000)

  test("at the leader's death, retried every 0.5 ms while the other front is stopped: that front leads and runs the pool", async () => {
    const name = busName("sq")
    const a = await frontChild(name, ["--pool=1"], children)
    const b = await frontChild(name, ["--pool=1"], children)
    expect((await poolOf(a)).state).toBe("running")
    const sq = squat([`slotbus.fronts.${name}`])
    await sq.waitLine(/^ready$/, 20_000)
    // B cannot stand again until the squatter had all the time it needs to bind the name first
    process.kill(b.child.pid, "SIGSTOP")
    try {
      process.kill(a.child.pid, "SIGKILL")
      await until(() => !alive(a.child.pid), "the leader is dead", 10_000)
      await Bun.sleep(300)
    } finally {
      process.kill(b.child.pid, "SIGCONT")
    }
    // version 2: the squatter holds the election, B stands every 100 ms and never leads, no pool runs
    await until(async () => (await poolOf(b)).state === "running", "B runs the pool", 20_000, 100)
    await until(async () => (await poolOf(b)).pids.length === 1, "B's pool has its worker", 20_000, 100)
  }, 60_000)
})
