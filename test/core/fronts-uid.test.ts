// A shared name's election (docs/PROTOCOL.md §15.2) against a process of another uid that holds its name first:
// the owner's fronts never take it for their leader, and a plain listen is not told the name is shared.
import { afterEach, describe, expect, test } from "bun:test"
import { PeerRefusedError, SlotBus } from "../../src/index.ts"
import { busName, spawn, spawnWorker, type Child } from "../support/helpers.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

const squatSkip = whyNotAsNobody(process.execPath)

describe.skipIf(squatSkip !== null)(`a shared name's election held by a process of uid ${NOBODY}`, () => {
  /** A process of uid 65534 that binds and listens on the election's name of `name` (§15.2) before the owner. */
  async function squat(name: string): Promise<Child> {
    const script = `Bun.listen({ unix: "\\0slotbus.fronts.${name}", socket: { data() {} } }); console.log("ready"); setInterval(() => {}, 1000)`
    const c = spawn(asNobody([process.execPath, "-e", script]), { env: nobodyEnv })
    children.push(c)
    await c.waitLine(/^ready$/, 20_000)
    return c
  }

  test("makes the owner's shared listen fail with PeerRefusedError naming the uid", async () => {
    const name = busName("fronts")
    await squat(name)
    const e = await SlotBus.listen(name, { shared: true }).then(
      (bus) => bus.close({ drain: false }).then(() => bus),
      (x: unknown) => x,
    )
    expect(e).toBeInstanceOf(PeerRefusedError)
    expect(String(e)).toContain(`uid ${NOBODY}`)
  }, 30_000)

  test("is no shared front to the owner's plain listen, which gets the name", async () => {
    const name = busName("fronts")
    await squat(name)
    const bus = await SlotBus.listen(name)
    try {
      const w = await spawnWorker(name, { waitForHubMs: 10_000 })
      children.push(w)
      await bus.waitForWorkers(1, 20_000)
      expect(bus.workers.map((x) => x.pid)).toEqual([w.pid])
    } finally {
      await bus.close({ drain: false })
    }
  }, 30_000)
})
