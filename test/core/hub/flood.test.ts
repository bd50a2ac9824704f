// Peers that flood the hub (control bytes, junk, doorbell rings, connections) are cut off or refused and
// counted, and the other workers' requests all complete correctly meanwhile.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { PeerRefusedError, SlotBus, SlotWorker } from "../../../src/index.ts"
import {
  bunChild,
  busName,
  type Child,
  eventually,
  FIXTURES,
  linuxBackend,
  rejection,
  REPO,
  spawn,
} from "../../support/helpers.ts"
import { Errno, FullMask, HubConfig } from "../../../src/native/ffi.ts"
import { libraryPath } from "../../../src/native/lib-path.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../../support/runtime/node.ts"
import { nobodyEnv } from "../../support/uid.ts"

const reversed = (s: string) => s.split("").reverse().join("")
const decoder = new TextDecoder()

/** `rounds` batches of 16 raw calls to `bus`, each checked against its request; returns how many were right. */
async function served(bus: SlotBus, rounds: number): Promise<number> {
  let ok = 0
  for (let r = 0; r < rounds; r++) {
    const batch = Array.from({ length: 16 }, (_, i) => `call-${r}-${i}`)
    const answers = await Promise.all(batch.map((b) => bus.call(b, { timeoutMs: 10_000 })))
    answers.forEach((a, i) => (ok += decoder.decode(a) === reversed(batch[i]!) ? 1 : 0))
  }
  return ok
}

describe("a worker flooding its rendezvous socket or doorbell", () => {
  test.each(["control-flood", "junk-flood", "doorbell-flood", "doorbell-flood-wide"])(
    "(%s) is cut off with ProtocolError and counted, while the other worker answers every request correctly",
    async (scenario) => {
      const name = busName("flood")
      const bus = await SlotBus.listen(name, { slots: 16 })
      const procs: Child[] = []
      try {
        const healthy = bunChild("core/crash-worker.ts", [name, "echo"])
        procs.push(healthy)
        await healthy.waitLine(/^ready /)
        await bus.waitForWorkers(1)
        const hostile = bunChild("core/hostile-worker.ts", [name, scenario, "1", "0"])
        procs.push(hostile)
        await hostile.waitLine(/^flooding$/)
        expect(await served(bus, 40)).toBe(640)
        expect((await hostile.waitLine(/^flooded \d+.*/))[0]).toEndWith(" until hung up")
        expect((await hostile.waitLine(/^hub (hung up|kept me)$/))[0]).toBe("hub hung up")
        expect(await eventually(() => bus.workerCount === 1)).toBe(true)
        expect(bus.stats().protocolErrors).toBe(1)
        expect(await served(bus, 4)).toBe(64)
      } finally {
        await Promise.all(procs.map((p) => p.kill()))
        await bus.close({ drain: false })
      }
    },
    60_000,
  )
})

const node = findNode()
if (!node) console.log(`skipping the Node hub's doorbell floods: no Node >= 26.1 here (${NODE_INSTALL})`)

describe.skipIf(node === null)("a worker flooding the doorbell of a Node 26 hub", () => {
  let front: ReturnType<typeof buildForNode> | undefined
  beforeAll(() => void (front = buildForNode("node-front.ts")))
  afterAll(() => front?.remove())

  test.each(["doorbell-flood", "doorbell-flood-wide"])(
    "(%s) is cut off while it floods, and the other worker answers every call meanwhile",
    async (scenario) => {
      const name = busName("node-flood")
      const env = { ...process.env, SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1", SLOTBUS_TEST_SLOTS: "16" }
      const hub = spawn([node!, ...nodeFlags(node!), front!.entry, name], { env, stdin: "pipe" })
      const procs: Child[] = [hub]
      try {
        await hub.waitLine(/^listening$/, 30_000)
        const healthy = bunChild("core/crash-worker.ts", [name, "echo"])
        procs.push(healthy)
        await hub.waitLine(new RegExp(`^join ${(await healthy.waitLine(/^ready (\d+)/))[1]}$`))
        const hostile = bunChild("core/hostile-worker.ts", [name, scenario, "1", "0"])
        procs.push(hostile)
        await hostile.waitLine(/^flooding$/)
        for (let i = 0; i < 64; i++) hub.write(`call ${i} call-${i}\n`)
        for (let i = 0; i < 64; i++)
          expect((await hub.waitLine(new RegExp(`^(answer|failed) ${i} .*`)))[0]).toBe(
            `answer ${i} ${reversed(`call-${i}`)}`,
          )
        expect((await hostile.waitLine(/^flooded \d+.*/))[0]).toEndWith(" until hung up")
        expect((await hostile.waitLine(/^hub (hung up|kept me)$/))[0]).toBe("hub hung up")
        await hub.waitLine(new RegExp(`^leave ${hostile.pid}$`))
      } finally {
        await Promise.all(procs.map((p) => p.kill()))
      }
    },
    60_000,
  )
})

describe("a worker that never reads its doorbell", () => {
  test("fills it with the hub's rings: the hub's further rings find it full and are dropped, nothing stalls, every request is answered", async () => {
    const name = busName("deaf")
    const bus = await SlotBus.listen(name, { slots: 16 })
    const procs: Child[] = []
    try {
      // it serves by polling its ring, announcing itself parked again after every ring, so each push rings it
      const deaf = bunChild("core/hostile-worker.ts", [name, "deaf", "1", "0"])
      procs.push(deaf)
      await deaf.waitLine(/^deaf$/)
      await bus.waitForWorkers(1)
      let calls = 0
      let right = 0
      while (!deaf.lines.some((l) => l.startsWith("deaf ")) && deaf.running) {
        right += await served(bus, 1)
        calls += 16
      }
      const [, rings, pending] = (await deaf.waitLine(/^deaf (\d+) (\d+)$/)).map(Number)
      console.log(`deaf worker: ${rings} rings, ${pending} bytes in its doorbell`)
      expect(right).toBe(calls)
      expect(pending).toBeGreaterThan(0) // a 1-byte ring takes far more than a byte of the buffer: a few hundred
      // its doorbell left full: it is still served, with a worker beside it
      const healthy = bunChild("core/crash-worker.ts", [name, "echo"])
      procs.push(healthy)
      await healthy.waitLine(/^ready /)
      await bus.waitForWorkers(2)
      const before = bus.stats().workers.find((w) => w.pid === deaf.pid)!.requests
      // which of the two takes each request is the dispatcher's (it packs onto the first while it answers quickly)
      expect(await served(bus, 40)).toBe(640)
      const workers = bus.stats().workers
      expect(workers.map((w) => w.pid).sort()).toEqual([deaf.pid, healthy.pid].sort())
      expect(workers.find((w) => w.pid === deaf.pid)!.requests).toBeGreaterThan(before)
      expect(bus.stats().protocolErrors).toBe(0)
    } finally {
      await Promise.all(procs.map((p) => p.kill()))
      await bus.close({ drain: false })
    }
  }, 120_000)
})

const NOBODY = 65534
const setpriv = Bun.which("setpriv")
const canSwitchUid = process.getuid?.() === 0 && setpriv !== null
// on the portable backend another uid cannot even reach the private socket directory (docs/PROTOCOL.md §13.2)
const canFloodAsNobody = canSwitchUid && linuxBackend

describe("connections", () => {
  test("the cap bits and EUSERS the hub passes to sb_accept are the ones slotbus.h defines", () => {
    const header = readFileSync(join(REPO, "csrc", "slotbus.h"), "utf8")
    const bit = (name: string) => Number(new RegExp(`#define ${name} \\(1u << (\\d+)\\)`).exec(header)?.[1] ?? NaN)
    expect(FullMask).toEqual({ OWN_UID: 1 << bit("SB_FULL_OWN_UID"), ALL: 1 << bit("SB_FULL_ALL") })
    const fields = /typedef struct sb_hub_config \{([\s\S]*?)\} sb_hub_config;/
      .exec(header)![1]!
      .replace(/\/\*[\s\S]*?\*\//g, "")
    const names = [...fields.matchAll(/uint32_t (\w+)/g)].map((m) => m[1])
    expect(names.indexOf("full_mask")).toBe(HubConfig.fullMask)
    expect(Errno.EUSERS).toBe(-87) // Linux
  })

  test("are accepted by threads named slotbus-accept (workers, the control socket) that live as long as the bus listens", async () => {
    const threads = () =>
      readdirSync("/proc/self/task").filter((t) => {
        try {
          return readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim() === "slotbus-accept"
        } catch {
          return false
        }
      }).length
    const before = threads()
    const bus = await SlotBus.listen(busName("accept-thread"))
    expect(threads()).toBe(before + 2) // one for workers, one for the control socket (docs/PROTOCOL.md §14)
    const worker = await SlotWorker.connect(bus.name, (r) => r.body)
    await bus.waitForWorkers(1)
    expect(decoder.decode(await bus.call("accepted"))).toBe("accepted")
    await worker.close()
    await bus.close()
    expect(threads()).toBe(before)
  })

  test("are accepted when they connect, with the hub's timer stopped: acceptance waits on the socket, not on a tick", async () => {
    const bus = await SlotBus.listen(busName("accept-no-timer"))
    const hub = (bus as unknown as { dispatcher: { ticker: ReturnType<typeof setTimeout>; tick: () => void } })
      .dispatcher
    clearTimeout(hub.ticker)
    hub.tick = () => {} // from here on no timer of this hub runs
    try {
      const workers = await Promise.all(
        [1, 2, 3].map(() => SlotWorker.connect(bus.name, (r) => r.body, { waitForHubMs: 2000 })),
      )
      await bus.waitForWorkers(3, 2000)
      expect(decoder.decode(await bus.call("no tick needed", { timeoutMs: 0 }))).toBe("no tick needed")
      await Promise.all(workers.map((w) => w.close()))
    } finally {
      await bus.close({ drain: false })
    }
  })

  test("beyond maxWorkers are refused with PeerRefusedError naming the cap, and counted", async () => {
    const bus = await SlotBus.listen(busName("cap"), { maxWorkers: 1 })
    const one = await SlotWorker.connect(bus.name, (r) => r.body)
    try {
      await bus.waitForWorkers(1)
      const e = await rejection(SlotWorker.connect(bus.name, (r) => r.body))
      expect(e).toBeInstanceOf(PeerRefusedError)
      expect(String(e)).toContain("maxWorkers")
      expect(bus.stats().overCapPeers).toBe(1)
      expect(bus.workerCount).toBe(1)
      await one.close()
      await eventually(() => bus.workerCount === 0)
      const two = await SlotWorker.connect(bus.name, (r) => r.body, { waitForHubMs: 2000 })
      expect(decoder.decode(await bus.call("room again"))).toBe("room again")
      await two.close()
    } finally {
      await one.close()
      await bus.close({ drain: false })
    }
  })

  test("beyond maxWorkersPerUid from one uid are refused while the cap lasts", async () => {
    const bus = await SlotBus.listen(busName("cap-uid"), { maxWorkersPerUid: 2 })
    const workers = [
      await SlotWorker.connect(bus.name, (r) => r.body),
      await SlotWorker.connect(bus.name, (r) => r.body),
    ]
    try {
      await bus.waitForWorkers(2)
      expect(await rejection(SlotWorker.connect(bus.name, (r) => r.body))).toBeInstanceOf(PeerRefusedError)
      expect(bus.stats()).toMatchObject({ overCapPeers: 1 })
    } finally {
      await Promise.all(workers.map((w) => w.close()))
      await bus.close({ drain: false })
    }
  })

  test.skipIf(!canFloodAsNobody)(
    `flooded by a uid-${NOBODY} process connecting and closing in a loop: refused and counted, and requests and new workers are still served`,
    async () => {
      const name = busName("accept-flood")
      // a door for other uids (docs/PROTOCOL.md §1.1), though not for nobody: its only way to reach the hub
      const bus = await SlotBus.listen(name, { slots: 16, allowUids: [4242] })
      const procs: Child[] = []
      try {
        const flooder = spawn(
          [
            setpriv!,
            `--reuid=${NOBODY}`,
            `--regid=${NOBODY}`,
            "--clear-groups",
            process.execPath,
            join(FIXTURES, "core/connect-flooder.ts"),
            name,
            "4000",
            String(process.getuid?.()),
          ],
          {
            env: nobodyEnv,
          },
        )
        procs.push(flooder)
        await flooder.waitLine(/^flooding$/)
        const healthy = bunChild("core/crash-worker.ts", [name, "echo"])
        procs.push(healthy)
        await healthy.waitLine(/^ready /) // accepted in the middle of the flood
        await bus.waitForWorkers(1)
        expect(await served(bus, 40)).toBe(640)
        const done = await flooder.waitLine(/^connected (\d+)$/, 15_000)
        expect(Number(done[1])).toBeGreaterThan(0)
        console.log(
          `${done[1]} connections from uid ${NOBODY} during the flood, ${bus.stats().refusedPeers} of them refused (the rest waited in the backlog)`,
        )
        expect(bus.stats().refusedPeers).toBeGreaterThan(0)
        expect(bus.workerCount).toBe(1)
        expect(await served(bus, 2)).toBe(32)
      } finally {
        await Promise.all(procs.map((p) => p.kill()))
        await bus.close({ drain: false })
      }
    },
    20_000,
  )
})
