// A hostile NATS peer (docs/PROTOCOL.md §10.6, §11 trust, §12): a plain client of the same server that hears every
// subject the library uses and publishes random and mutated copies of what it hears — requests, answers, frames,
// credit, cancels, presences, topic events, lease KV keys, $SRV — while real traffic flows: a hub here, a worker
// in another process, a topic's bridge, a cluster contest. Nothing may crash, every call settles by its timeout
// with a result or a slotbus error, the hub and the worker keep serving, memory stays bounded, and the refused
// messages are counted. Reproducible: SLOTBUS_FUZZ_SEED=<n> replays a run (the seed is printed).
// Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { Topic } from "../../src/events/index.ts"
import { SlotBus } from "../../src/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { bunChild, busName, rng, until } from "../support/helpers.ts"
import { underFire } from "../support/nats/hostile-nats.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the hostile NATS peer test is skipped: ${skip}`)

const nats = natsPerFile(skip, { jetstream: true })
const { cleanup } = nats
const FUZZ_MS = Number(process.env.SLOTBUS_FUZZ_MS ?? 5000)

describe.skipIf(skip !== null)("a hostile peer on the NATS server", () => {
  test("random and mutated messages on every subject while requests, events and leases flow: nothing crashes, every call settles, memory stays bounded", async () => {
    const seed = Number(process.env.SLOTBUS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`hostile NATS peer: seed ${seed} (SLOTBUS_FUZZ_SEED=${seed} replays it), ${FUZZ_MS} ms`)
    const r = rng(seed)
    const bus = await SlotBus.listen(busName("hostile-peer"), { remote: viaNats(nats.url), heartbeatMs: 100 })
    cleanup.push(() => bus.close({ drain: false }))
    const worker = bunChild("nats/nats-worker.ts", [bus.name, nats.url, "--heartbeat-ms=100"])
    cleanup.push(async () => void (await worker.kill()))
    await worker.waitLine(/^ready \d+$/, 15_000)
    await bus.waitForWorkers(1, 5000)
    const topic = await Topic.open(busName("hostile-topic"), { remote: viaNats(nats.url) })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const events = topic.subscribe({ type: "*" })
    const contest = await Contest.open(busName("hostile-lease"), { remote: viaNats(nats.url) })
    cleanup.push(() => contest[Symbol.asyncDispose]())

    const fire = await underFire({ servers: [nats.url], r, ms: FUZZ_MS, bus, topic, events, contest })
    console.log(
      `hostile NATS peer: ${fire.sent} messages sent; ${fire.ok} settled with a result, ${fire.typed} with a slotbus error; hub refused ${bus.stats().rejectedMessages}, bridge ${JSON.stringify(topic.bridgeStats())}`,
    )
    expect(fire.other).toEqual([])
    expect(fire.sent).toBeGreaterThan(0)
    expect(bus.stats().rejectedMessages).toBeGreaterThan(0)

    // after it: the hub, the worker, the bridge and the contest still serve
    await until(() => bus.workerCount >= 1, "the worker is listed", 5000)
    expect((await bus.request({ method: "POST", path: "/echo", body: "after" }, { timeoutMs: 5000 })).text()).toBe(
      "after",
    )
    expect(worker.proc.exitCode).toBeNull()
    expect(topic.bridgeStats()?.bridging).toBe(true)
    expect(fire.rss - fire.rss0).toBeLessThan(256 * 1024 * 1024)
  }, 60_000)
})
