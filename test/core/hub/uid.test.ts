// The rendezvous checks SO_PEERCRED: a worker running as another uid is refused unless the hub allows it.
import { describe, expect, test } from "bun:test"
import { SlotBus, type SlotResponse } from "../../../src/index.ts"
import { busName, type Child, eventually, FIXTURES, spawn } from "../../support/helpers.ts"
import { join } from "node:path"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../../support/uid.ts"

const FIXTURE = join(FIXTURES, "core/crash-worker.ts")
const BUN = process.execPath
const skipReason = whyNotAsNobody(FIXTURE)
if (skipReason) console.warn(`uid.test skipped: ${skipReason}`)

function nobodyWorker(name: string, ...flags: string[]) {
  return spawn(asNobody([BUN, FIXTURE, name, "echo", ...flags]), { env: nobodyEnv })
}

describe.skipIf(skipReason !== null)(`a worker running as uid ${NOBODY}`, () => {
  test("is refused by a hub that does not allow its uid: PeerRefusedError on its side, refusedPeers on the hub's", async () => {
    const name = busName("uid-refused")
    const bus = await SlotBus.listen(name, { allowUids: [4242] }) // a door (docs/PROTOCOL.md §1.1), not for nobody
    const worker = nobodyWorker(name, "--hub-uid=0") // it trusts the hub; the hub must say no
    try {
      expect((await worker.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error PeerRefusedError")
      expect(await worker.proc.exited).toBe(2)
      expect(await eventually(() => bus.stats().refusedPeers === 1)).toBe(true)
      expect(bus.workers).toEqual([])
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)

  test("does not find a hub running as root unless told the hub's uid, and never becomes one of its workers", async () => {
    const name = busName("uid-distrust")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = nobodyWorker(name) // expects a hub of its own uid: it looks in its own socket directory (§1.1)
    try {
      expect((await worker.waitLine(/^(ready|error) (\S+)/))[0]).toBe("error HubNotFoundError")
      expect(await worker.proc.exited).toBe(2)
      await Bun.sleep(50) // a few accept ticks: the connection it dropped must not become a worker
      expect(bus.workers).toEqual([])
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)

  test("is accepted with allowUids and serves requests when it names the hub's uid", async () => {
    const name = busName("uid-allowed")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = nobodyWorker(name, "--hub-uid=0")
    try {
      expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} ${NOBODY}`)
      await bus.waitForWorkers(1)
      expect(bus.workers.map((w) => [w.pid, w.uid])).toEqual([[worker.pid, NOBODY]])
      const raw = await Promise.all(Array.from({ length: 32 }, (_, i) => bus.call(`as-nobody-${i}`)))
      expect(raw.map((b) => new TextDecoder().decode(b))).toEqual(
        Array.from({ length: 32 }, (_, i) => `as-nobody-${i}`.split("").reverse().join("")),
      )
      const r = (await bus.request({ method: "POST", path: "/who", body: "hi" })) as SlotResponse
      expect([r.status, r.headers.get("x-pid"), r.text()]).toEqual([200, String(worker.pid), "hi"])
      expect(bus.stats().refusedPeers).toBe(0)
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)
})

describe.skipIf(skipReason !== null)("a hub with allowUids", () => {
  test("still accepts workers of its own uid, as docs/PROTOCOL.md §1 says (own uid, or one it was configured to allow)", async () => {
    const name = busName("uid-own")
    const bus = await SlotBus.listen(name, { allowUids: [NOBODY] })
    const worker = spawn([BUN, FIXTURE, name, "echo"])
    try {
      expect((await worker.waitLine(/^(ready|error) .*/))[0]).toBe(`ready ${worker.pid} 0`)
      await bus.waitForWorkers(1)
      expect(new TextDecoder().decode(await bus.call("root"))).toBe("toor")
      expect(bus.stats().refusedPeers).toBe(0)
    } finally {
      await worker.kill()
      await bus.close()
    }
  }, 15_000)
})
