// A NATS outage longer than the client's reconnect attempts (issue 56 item 13): the users of one shared connection
// (a bus, a worker, a topic's bridge, a contest) work again once the server is back, without being opened again,
// and say "reconnecting" while it is away. A real nats-server, stopped and started again on its port and store.
// Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { connect } from "@nats-io/transport-node"
import { Topic } from "../../src/events/index.ts"
import { SlotBus, SlotWorker } from "../../src/index.ts"
import { STATUS } from "../../src/kit/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { nats } from "../../src/nats/index.ts"
import { topicSubjects } from "../../src/nats/internal.ts"
import { busName, until } from "../support/helpers.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS outage test is skipped: ${skip}`)

// The client's own give-up: 10 attempts (its default maxReconnectAttempts) this far apart, plus its jitter
const WAIT_MS = 100
const GIVE_UP_MS = 10 * (WAIT_MS + 100)

describe.skipIf(skip !== null)("a NATS outage longer than the client's reconnect attempts", () => {
  test("a bus's requests, a topic's bridge and a contest's claims on one shared connection work again once the server is back, and status says reconnecting meanwhile", async () => {
    const store = mkdtempSync(join(tmpdir(), "slotbus-outage-"))
    let server = await startNats({ jetstream: true, store })
    const remote = nats({ servers: server.url, reconnectTimeWait: WAIT_MS })
    const undo: (() => unknown)[] = []
    try {
      const bus = await SlotBus.listen(busName("outage"), { remote, heartbeatMs: 100 })
      undo.push(() => bus.close({ drain: false }))
      const worker = await SlotWorker.connect(bus.name, (req) => `${req.path} served`, { remote, heartbeatMs: 100 })
      undo.push(() => worker.close())
      const topic = await Topic.open(busName("outage-topic"), { remote })
      undo.push(() => topic[Symbol.asyncDispose]())
      const contest = await Contest.open(busName("outage-contest"), { remote })
      undo.push(() => contest.close())
      await bus.waitForWorkers(1, 5000)
      expect((await bus.request({ path: "/before" })).text()).toBe("/before served")
      await until(() => topic.bridgeStats()?.bridging === true, "the topic bridges")
      await contest.claim({ kind: 1, label: "before" }, { ttlMs: 5000 })

      await server.server.kill()
      const serverFact = async () => (await bus[STATUS]()).remote?.facts.find(([k]) => k === "server")?.[1]
      await Bun.sleep(2 * GIVE_UP_MS) // the outage: past the point where the client used to give up
      const during = String(await serverFact())
      const topicDuring = String((await topic[STATUS]()).remote?.facts.find(([k]) => k === "server")?.[1])
      server = await startNats({ jetstream: true, store, port: server.port })

      await until(() => bus.workerCount >= 1, "the worker is heard again", 15_000)
      expect((await bus.request({ path: "/after" }, { timeoutMs: 5000 })).text()).toBe("/after served")
      await until(async () => !String(await serverFact()).includes("reconnecting"), "status says it is back")
      // JetStream reads its store back first: until then a claim is ContestUnavailableError, as in any outage
      let last: unknown
      await until(
        () =>
          contest.tryClaim({ kind: 1, label: "after" }, { ttlMs: 5000 }).then(
            (r) => r.claimed,
            (e: unknown) => ((last = e), false),
          ),
        "a claim succeeds again",
        15_000,
      ).catch((e: Error) => {
        throw new Error(`${e.message}; the last claim failed with ${last}`)
      })

      // the bridge still sends this host's events to NATS: a client of its own hears them
      const nc = await connect({ servers: server.url })
      undo.push(() => nc.close())
      let heard = 0
      nc.subscribe(`${topicSubjects(topic.name).root}.>`, { callback: () => void heard++ })
      await nc.flush()
      await until(() => {
        topic.publish({ type: "after", data: "x" })
        return heard > 0
      }, "an event published here reaches NATS")
      expect(topic.bridgeStats()?.bridging).toBe(true)
      expect(during).toContain("reconnecting")
      expect(topicDuring).toContain("reconnecting")
    } finally {
      for (const f of undo.reverse()) await Promise.resolve(f()).catch(() => {})
      await server.server.kill()
      rmSync(store, { recursive: true, force: true })
    }
  }, 90_000)

  test("a server that hangs (SIGSTOP) is seen as away within seconds, not the client's default minutes: status says reconnecting, and it comes back on SIGCONT", async () => {
    const server = await startNats()
    const undo: (() => unknown)[] = []
    try {
      const remote = nats(server.url) // slotbus's own defaults
      const bus = await SlotBus.listen(busName("hung"), { remote })
      undo.push(() => bus.close({ drain: false }))
      const worker = await SlotWorker.connect(bus.name, (req) => `${req.path} served`, { remote })
      undo.push(() => worker.close())
      await bus.waitForWorkers(1, 5000)
      const serverFact = async () => String((await bus[STATUS]()).remote?.facts.find(([k]) => k === "server")?.[1])
      expect(await serverFact()).not.toContain("reconnecting")

      process.kill(server.server.pid, "SIGSTOP")
      undo.push(() => process.kill(server.server.pid, "SIGCONT"))
      // nats.js's own defaults (a ping every 2 min, 2 unanswered) took 4–6 minutes to see it (the third tick)
      await until(async () => (await serverFact()).includes("reconnecting"), "status says reconnecting", 30_000)

      process.kill(server.server.pid, "SIGCONT")
      await until(async () => !(await serverFact()).includes("reconnecting"), "status says it is back", 15_000)
      await until(() => bus.workerCount >= 1, "the worker is heard again", 15_000)
      expect((await bus.request({ path: "/after" }, { timeoutMs: 5000 })).text()).toBe("/after served")
    } finally {
      for (const f of undo.reverse()) await Promise.resolve(f()).catch(() => {})
      await server.server.kill()
    }
  }, 90_000)
})
