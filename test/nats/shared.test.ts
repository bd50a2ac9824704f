// One NATS connection per nats() value: a bus, a worker, a topic and a contest opened with one value share it, the
// last to close closes it, and what each attached to it (subscriptions, listeners, timers) goes with it. Counted
// by the server itself (nats-server's monitoring endpoint, -m). Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { SlotBus, SlotWorker } from "../../src/index.ts"
import { Topic } from "../../src/events/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { nats } from "../../src/nats/index.ts"
import { busName, until, type Child } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the shared NATS connection tests are skipped: ${skip}`)

// A server of this file's own: every connection on it is this file's (the monitoring endpoint's own are not counted)
let server: { url: string; server: Child; monitor: string }
beforeAll(async () => {
  if (!skip) server = await startNats({ jetstream: true, monitor: true })
}, 30_000)
afterAll(async () => {
  await server?.server.kill()
})

interface Connz {
  num_connections: number
  connections: { subscriptions: number }[]
}
const connz = async () => (await (await fetch(`${server.monitor}/connz?subs=1`)).json()) as Connz
const connections = async () => (await connz()).num_connections
const subscriptions = async () => (await connz()).connections.reduce((n, c) => n + c.subscriptions, 0)

describe.skipIf(skip !== null)("one NATS connection per nats() value", () => {
  test("a bus, a worker, a topic and a contest opened with one nats() value hold one connection, closed with the last", async () => {
    const remote = nats(server.url)
    const name = busName("shared")
    const opened: { close(): unknown }[] = []
    try {
      const bus = await SlotBus.listen(name, { remote, heartbeatMs: 100 })
      opened.push(bus)
      const worker = await SlotWorker.connect(name, (req) => `${req.path} over NATS`, { remote, heartbeatMs: 100 })
      opened.push(worker)
      const topic = await Topic.open(busName("shared-topic"), { remote })
      opened.push({ close: () => topic[Symbol.asyncDispose]() })
      const contest = await Contest.open(busName("shared-contest"), { remote })
      opened.push(contest)
      expect(await connections()).toBe(1)
      // the one connection carries both sides of a request: the hub's and the worker's
      await bus.waitForWorkers(1)
      expect((await bus.request({ path: "/a" })).text()).toBe("/a over NATS")
      expect((await contest.claim({ kind: 1, label: "x" }, { ttlMs: 5000 })).token).toBeGreaterThan(0n)
      for (const o of opened.splice(0, 3)) await o.close()
      expect(await connections()).toBe(1) // the contest still uses it
      await opened.pop()!.close()
      await until(async () => (await connections()) === 0, "the connection closed with the last user")
      // a later user opens it again
      const again = await SlotBus.listen(busName("shared"), { remote })
      opened.push(again)
      expect(await connections()).toBe(1)
    } finally {
      for (const o of opened.reverse()) await o.close()
    }
    await until(async () => (await connections()) === 0, "every connection closed")
  }, 30_000)

  test("two nats() values hold two connections; users that open at once share the one connect", async () => {
    const one = nats(server.url)
    const two = nats(server.url)
    const buses: SlotBus[] = []
    try {
      buses.push(
        ...(await Promise.all([
          SlotBus.listen(busName("one"), { remote: one }),
          SlotBus.listen(busName("one"), { remote: one }),
          SlotBus.listen(busName("one"), { remote: one }),
          SlotBus.listen(busName("two"), { remote: two }),
        ])),
      )
      expect(await connections()).toBe(2)
    } finally {
      for (const b of buses) await b.close({ drain: false })
    }
    await until(async () => (await connections()) === 0, "both connections closed")
  }, 30_000)

  test("a shared connection that closed for good (its server gone, no reconnects) is opened again for the next user", async () => {
    const first = await startNats({ monitor: true })
    let second: Awaited<ReturnType<typeof startNats>> | undefined
    const remote = nats({ servers: first.url, reconnect: false })
    const buses: SlotBus[] = []
    try {
      const before = await SlotBus.listen(busName("before"), { remote })
      buses.push(before)
      await first.server.kill()
      const link = () => (before as unknown as { remoteLink: { connected: boolean; server(): string } }).remoteLink
      await until(() => !link().connected, "the connection closed for good")
      expect(link().server()).toEndWith("(remote closed)")
      second = await startNats({ monitor: true, port: first.port })
      const after = await SlotBus.listen(busName("after"), { remote })
      buses.push(after)
      expect(((await (await fetch(`${second.monitor}/connz`)).json()) as Connz).num_connections).toBe(1)
      expect(link().connected).toBe(false) // the bus of before keeps its closed connection: it is told, not moved
    } finally {
      for (const b of buses) await b.close({ drain: false })
      await first.server.kill()
      await second?.server.kill()
    }
  }, 30_000)

  test("30 buses, workers, topics and contests opened and closed on a shared connection are not kept alive by it, nor are their subscriptions", async () => {
    const remote = nats(server.url)
    const anchor = await SlotBus.listen(busName("anchor"), { remote }) // keeps the connection open throughout
    const gone = new Map<string, number>()
    const collected = new FinalizationRegistry<string>((kind) => gone.set(kind, (gone.get(kind) ?? 0) + 1))
    const cycle = async (track: boolean) => {
      const name = busName("cycle")
      const bus = await SlotBus.listen(name, { remote, heartbeatMs: 100 })
      const worker = await SlotWorker.connect(name, () => "ok", { remote, heartbeatMs: 100 })
      await bus.waitForWorkers(1)
      await bus.request({ path: "/" })
      const topic = await Topic.open(busName("cycle-topic"), { remote })
      topic.subscribe() // the bridge subscribes on NATS for it
      const contest = await Contest.open(busName("cycle-contest"), { remote })
      await contest.claim({ kind: 1, label: "x" }, { ttlMs: 5000 })
      expect(await connections()).toBe(1)
      if (track)
        for (const [kind, o] of [
          ["bus", bus],
          ["worker", worker],
          ["topic", topic],
          ["contest", contest],
        ] as const)
          collected.register(o, kind)
      await contest.close()
      await topic[Symbol.asyncDispose]()
      await worker.close()
      await bus.close({ drain: false })
    }
    try {
      await cycle(false) // the first makes what the connection keeps for good (the client's request inbox)
      const baseline = await subscriptions()
      expect(baseline).toBeGreaterThan(0)
      for (let i = 0; i < 30; i++) await cycle(true)
      expect(await connections()).toBe(1)
      expect(await subscriptions()).toBe(baseline)
      for (let i = 0; i < 20 && [...gone.values()].reduce((a, b) => a + b, 0) < 4 * 28; i++) {
        Bun.gc(true)
        await Bun.sleep(50) // finalization callbacks run between turns
      }
      const alive = Object.fromEntries(["bus", "worker", "topic", "contest"].map((k) => [k, 30 - (gone.get(k) ?? 0)]))
      console.log(`closed on a shared connection, still alive after a full GC (of 30 each): ${JSON.stringify(alive)}`)
      // the collector may keep a couple it finds on the stack
      for (const n of Object.values(alive)) expect(n).toBeLessThanOrEqual(2)
    } finally {
      await anchor.close({ drain: false })
    }
    await until(async () => (await connections()) === 0, "the connection closed with the anchor")
  }, 60_000)
})
