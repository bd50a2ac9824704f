// Answers lost while a connection to NATS was down (docs/PROTOCOL.md §10.3): NATS keeps nothing for a client that
// is away, so an answer a worker made while its own link or its hub's was cut is gone, however short the outage.
// The requests that were out then settle with WorkerGoneError once the link is back, instead of waiting for ever
// (timeoutMs 0) and holding the worker's places. One link is cut through a TCP relay (natsRelay) while the other
// stays up; the worker runs under Bun and under Node. Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, describe, expect, test } from "bun:test"
import { SlotBus, WorkerGoneError } from "../../src/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { busName, until } from "../support/helpers.ts"
import { natsPerFile, natsRelay, natsSkipReason } from "../support/nats.ts"
import { peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS lost-answer tests are skipped: ${skip}`)
const nats = natsPerFile(skip)
afterAll(removeNodeBuilds)

// Reconnecting quickly, as a cluster or a restarted server lets a client; patient enough that nobody is counted gone
const servers = (url: string) => ({ servers: url, reconnectTimeWait: 50 })
const PEER_TIMEOUT_MS = 30_000

for (const runtime of ["bun", "node"] as const)
  describe.skipIf(skip !== null || peerSkip(runtime) !== null)(`answers lost in an outage, a ${runtime} worker`, () => {
    for (const cut of ["worker", "hub"] as const)
      test(`the ${cut}'s link cut while the worker answers: the requests out settle with WorkerGoneError once it is back, and the worker takes requests again`, async () => {
        const relay = await natsRelay(nats.url)
        nats.cleanup.push(relay.close)
        const via = (who: "worker" | "hub") => servers(cut === who ? relay.url : nats.url)
        const bus = await SlotBus.listen(busName("lost"), {
          remote: viaNats(via("hub")),
          heartbeatMs: 100,
          peerTimeoutMs: PEER_TIMEOUT_MS,
        })
        nats.cleanup.push(() => bus.close({ drain: false }))
        const w = await peerChild(runtime, "nats/nats-worker.ts", [
          bus.name,
          JSON.stringify(via("worker")),
          "--slots=2",
        ])
        nats.cleanup.push(async () => void (await w.kill()))
        await w.waitLine(/^ready \d+$/, 30_000)
        await bus.waitForWorkers(1)

        const settled: string[] = []
        for (const body of ["a", "b"])
          bus.request({ method: "POST", path: "/slow/200", body }, { timeoutMs: 0 }).then(
            (r) => settled.push(`answered ${r.text()}`),
            (e: unknown) => settled.push(e instanceof WorkerGoneError ? "WorkerGoneError" : String(e)),
          )
        for (const body of ["a", "b"]) await w.waitLine(new RegExp(`^running ${body}$`), 30_000)
        relay.cut()
        // both answers are made while the link is down: they reach nobody
        for (const body of ["a", "b"]) await w.waitLine(new RegExp(`^answered ${body}$`), 30_000)
        relay.restore()

        // before: neither ever settled, and the worker was listed holding both places for good
        await until(() => settled.length === 2, "both requests settle", 20_000)
        expect(settled).toEqual(["WorkerGoneError", "WorkerGoneError"])
        expect(bus.workers.map((x) => x.inFlight)).toEqual([0])
        const again = await bus.request({ method: "POST", path: "/echo", body: "again" }, { timeoutMs: 10_000 })
        expect(again.text()).toBe("again")
      }, 60_000)
  })
