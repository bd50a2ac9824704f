// Workers over NATS (docs/PROTOCOL.md §10) between the runtimes (issue 67), beyond the endpoint conformance suite
// (which runs its NATS worker under Node too): a Bun worker serves a Node front, and a Node worker killed with
// SIGKILL while 32 requests wait at a Bun front settles every one, one that closes answers what it runs. And a cluster contest's member under either runtime
// that exits without close() lets go of its host's marker file (§12.5).
// Needs nats-server (apt-get install -y nats-server) and Node 26 (the install line when missing).
import { afterAll, describe, expect, test } from "bun:test"
import { readdirSync } from "node:fs"
import { SlotBus, WorkerGoneError } from "../../src/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { socketDir } from "../support/fds.ts"
import { busName, until, type Child } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const skip = natsSkipReason() ?? peerSkip("node")
if (skip) console.warn(`the NATS tests between Bun and Node are skipped: ${skip}`)
const nats = natsPerFile(skip, { jetstream: true }) // the cluster contest's KV bucket
afterAll(removeNodeBuilds)

/** A worker over NATS (test/support/nats/nats-worker.ts) under `runtime`, once it announced itself. */
async function remoteWorker(runtime: "bun" | "node", bus: string, ...flags: string[]): Promise<Child> {
  const w = await peerChild(runtime, "nats/nats-worker.ts", [bus, nats.url, ...flags])
  nats.cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 30_000)
  return w
}

describe.skipIf(skip !== null)("over NATS, between Bun and Node", () => {
  test("a Node worker killed with SIGKILL while 32 requests wait at a Bun front: every one settles", async () => {
    const bus = await SlotBus.listen(busName("nn"), { remote: viaNats(nats.url), heartbeatMs: 100 })
    nats.cleanup.push(() => bus.close({ drain: false }))
    const w = await remoteWorker("node", bus.name, "--slots=32")
    await bus.waitForWorkers(1)
    const held = Array.from({ length: 32 }, () => bus.request({ path: "/hold" }, { timeoutMs: 60_000 }))
    await until(() => bus.stats().workers.some((x) => x.inFlight === 32), "32 requests are at the Node worker", 30_000)
    await w.kill("SIGKILL")
    const settled = await Promise.allSettled(held)
    expect(settled.map((s) => s.status)).toEqual(Array(32).fill("rejected"))
    expect(new Set(settled.map((s) => (s as PromiseRejectedResult).reason?.constructor))).toEqual(
      new Set([WorkerGoneError]),
    )
  }, 120_000)

  test.each(["bun", "node"] as const)(
    "a %s worker that closes while it runs 4 requests answers them all; the front then counts it gone",
    async (runtime) => {
      const bus = await SlotBus.listen(busName("nn"), { remote: viaNats(nats.url), heartbeatMs: 100 })
      nats.cleanup.push(() => bus.close({ drain: false }))
      const w = await remoteWorker(runtime, bus.name)
      await bus.waitForWorkers(1)
      const held = ["a", "b", "c", "d"].map((body) => bus.request({ path: "/slow/400", body }).then((r) => r.text()))
      for (const body of ["a", "b", "c", "d"]) await w.waitLine(new RegExp(`^running ${body}$`), 30_000)
      process.kill(w.pid, "SIGUSR2") // worker.close(): running handlers finish first
      await w.waitLine(/^closing$/)
      expect(await Promise.all(held)).toEqual(["a", "b", "c", "d"]) // WorkerGoneError at the close, before
      await w.waitLine(/^closed$/, 30_000)
      await until(() => bus.workers.length === 0, "the worker is gone once its requests settled", 30_000)
    },
    60_000,
  )

  test("a Bun worker serves a Node front over NATS", async () => {
    const name = busName("nn")
    const front = await peerChild("node", "runtime/node-front.ts", [name, nats.url], { stdin: "pipe" })
    nats.cleanup.push(async () => void (await front.kill()))
    await front.waitLine(/^listening$/, 30_000)
    const w = await remoteWorker("bun", name)
    await front.waitLine(new RegExp(`^join ${w.pid}$`), 30_000)
    front.write("call 1 over nats\n")
    expect((await front.waitLine(/^(answer|failed) 1 .*/, 30_000))[0]).toBe("answer 1 stan revo")
  }, 90_000)
})

describe.skipIf(skip !== null)("a cluster contest's member that exits without close()", () => {
  test.each([
    ["bun", "exit"],
    ["node", "exit"],
    ["bun", "throw"],
    ["node", "throw"],
  ] as [PeerRuntime, string][])(
    "under %s (%s) lets go of its marker: the file goes",
    async (runtime, how) => {
      const name = busName("cm")
      const marker = `slotbus-lease-cluster.${name}.lock`
      const c = await peerChild(runtime, "nats/cluster-peer.ts", [name, nats.url], { stdin: "pipe" })
      nats.cleanup.push(async () => void (await c.kill()))
      await c.waitLine(/^claimed \d+$/, 30_000)
      expect(readdirSync(socketDir())).toContain(marker)
      c.write(`${how}\n`)
      expect(await c.exited).toBe(how === "exit" ? 0 : 1)
      expect(readdirSync(socketDir())).not.toContain(marker) // it stayed, for good, before
    },
    60_000,
  )
})
