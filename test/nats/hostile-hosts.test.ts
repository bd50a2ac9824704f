// The hostile NATS peer (test/support/nats/hostile-nats.ts) across two simulated hosts (test/support/hosts.ts): one
// peer on each host's nats-server publishes mutations of everything it hears while this process on host A runs a
// hub served by a worker on host B, bridges a topic to a subscriber on host B and claims in a cluster contest.
// Nothing may crash, every call settles with a result or a slotbus error, and afterwards the hub is served from
// host B again and an event from host A reaches host B. Reproducible: SLOTBUS_FUZZ_SEED=<n> (the seed is printed).
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { SlotBus } from "../../src/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { busName, FIXTURES, publishUntilHeard, rng, until } from "../support/helpers.ts"
import { underFire } from "../support/nats/hostile-nats.ts"
import { hostsPerFile } from "../support/hosts.ts"
import { nats } from "../../src/nats/index.ts"

const on = hostsPerFile("two-host hostile peer", { jetstream: true })
const { skip, cleanup } = on
const FUZZ_MS = Number(process.env.SLOTBUS_FUZZ_MS ?? 5000)

describe.skipIf(skip !== null)("a hostile peer on both hosts' NATS servers", () => {
  test("mutations of every subject on both servers while a worker on host B serves a hub on host A and events cross: nothing crashes, every call settles, both keep serving", async () => {
    const seed = Number(process.env.SLOTBUS_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))
    console.log(`hostile peers on two hosts: seed ${seed} (SLOTBUS_FUZZ_SEED=${seed} replays it), ${FUZZ_MS} ms`)
    const r = rng(seed)
    const { a, b } = on.hosts
    const bus = await SlotBus.listen(busName("hostile-hosts"), { remote: nats(a.natsUrl), heartbeatMs: 100 })
    cleanup.push(() => bus.close({ drain: false }))
    const worker = on.hosts.spawnOnB([
      process.execPath,
      join(FIXTURES, "nats/nats-worker.ts"),
      bus.name,
      b.natsUrl,
      "--heartbeat-ms=100",
    ])
    cleanup.push(async () => void (await worker.kill()))
    await worker.waitLine(/^ready \d+$/, 20_000)
    await bus.waitForWorkers(1, 10_000)
    const topic = await Topic.open(busName("hostile-hosts-topic"), { remote: nats(a.natsUrl) })
    cleanup.push(() => topic[Symbol.asyncDispose]())
    const events = topic.subscribe({ type: "*" })
    const sub = on.hosts.spawnOnB([
      process.execPath,
      join(FIXTURES, "events/topic-member.ts"),
      topic.name,
      b.natsUrl,
      "sub",
      "*",
    ])
    cleanup.push(() => sub.kill())
    await sub.waitLine(/^ready \d+$/, 20_000)
    await publishUntilHeard(topic, sub, "probe", "probe", "an event from host A reaches host B", 50)
    const contest = await Contest.open(busName("hostile-hosts-lease"), { remote: nats(a.natsUrl) })
    cleanup.push(() => contest[Symbol.asyncDispose]())

    const fire = await underFire({ servers: [a.natsUrl, b.natsUrl], r, ms: FUZZ_MS, bus, topic, events, contest })
    console.log(
      `hostile peers on two hosts: ${fire.sent} messages sent; ${fire.ok} calls settled with a result, ${fire.typed} with a slotbus error; hub refused ${bus.stats().rejectedMessages}; bridge on A ${JSON.stringify({ ...topic.bridgeStats(), reasons: undefined })}`,
    )
    expect(fire.other).toEqual([])
    expect(fire.sent).toBeGreaterThan(0)
    expect(fire.ok).toBeGreaterThan(0)

    // afterwards: host B's worker serves the hub again, and an event of host A reaches host B
    await until(() => bus.workerCount >= 1, "host B's worker is listed", 10_000)
    const answer = await bus.request({ method: "POST", path: "/echo", body: "after" }, { timeoutMs: 5000 })
    expect(answer.text()).toBe("after")
    expect(worker.running).toBe(true)
    expect(sub.running).toBe(true)
    await publishUntilHeard(topic, sub, "marker", "marker", "an event from host A reaches host B after the fire", 50)
    expect(topic.bridgeStats()?.bridging).toBe(true)
    expect(fire.rss - fire.rss0).toBeLessThan(256 * 1024 * 1024)
  }, 90_000)
})
