// A worker over NATS closed under load (docs/PROTOCOL.md §10.3): the requests a hub sent it before the hub heard
// it say "leaving" reach it after it stopped taking new ones, and it refuses them unrun (503). None of them ran, so
// the hub puts each back in its queue, idempotent or not, and another worker (or one that starts later) answers it;
// the callers never see the close. The workers run under Bun and under Node; a raw NATS client counts the refusals,
// so a run that made none cannot pass unnoticed. Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "@nats-io/transport-node"
import { SlotBus } from "../../src/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { readPrefix } from "../../src/nats/wire.ts"
import { busName, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { peerChild, peerSkip, removeNodeBuilds, type PeerRuntime } from "../support/runtime/peers.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS leaving-worker tests are skipped: ${skip}`)
const nats = natsPerFile(skip)
afterAll(removeNodeBuilds)

/** Requests the load keeps out at once. */
const IN_FLIGHT = 256

async function natsWorker(runtime: PeerRuntime, bus: SlotBus) {
  const w = await peerChild(runtime, "nats/nats-worker.ts", [bus.name, nats.url, `--slots=${IN_FLIGHT}`])
  nats.cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 30_000)
  return w
}

/** Counts the 503 refusals (flags 1, status 503, head length 0: §10.3) workers of `bus` send its hubs. */
async function refusals(bus: SlotBus) {
  const nc = await connect({ servers: nats.url })
  nats.cleanup.push(() => nc.close())
  const seen = { refused: 0 }
  nc.subscribe(`slotbus.${bus.name.replaceAll(".", "~")}.re.>`, {
    callback: (_, m) => {
      const p = readPrefix(new Uint8Array(m.data.buffer, m.data.byteOffset, m.data.byteLength))
      if (p?.kindOrFlags === 1 && p.a === 503 && p.b === 0) seen.refused++
    },
  })
  await nc.flush()
  return seen
}

/** Keeps IN_FLIGHT non-idempotent requests out until `stop()`; what each settled with is counted. */
function load(bus: SlotBus, timeoutMs: number) {
  const tally = { answered: 0, wrong: 0, failed: [] as string[] }
  let going = true
  let n = 0
  const one = async (): Promise<void> => {
    while (going) {
      const body = `r${n++}`
      try {
        const r = await bus.request({ method: "POST", path: "/echo", body }, { timeoutMs })
        if (r.text() === body) tally.answered++
        else tally.wrong++
      } catch (e) {
        tally.failed.push(`${(e as Error).name}: ${(e as Error).message}`)
      }
    }
  }
  const runners = Array.from({ length: IN_FLIGHT }, one)
  return {
    tally,
    stop: async () => {
      going = false
      await Promise.all(runners)
    },
  }
}

for (const runtime of ["bun", "node"] as const)
  describe.skipIf(skip !== null || peerSkip(runtime) !== null)(
    `a ${runtime} worker over NATS closed under load`,
    () => {
      test.each([
        ["go to the other worker", 1],
        ["wait in the queue while no other worker is there, and go to the next that joins", 0],
      ])(
        "the non-idempotent requests it refuses unrun as it leaves %s: no caller sees a failure",
        async (_, others) => {
          const bus = await SlotBus.listen(busName("leaving"), { remote: viaNats(nats.url), heartbeatMs: 100 })
          nats.cleanup.push(() => bus.close({ drain: false }))
          const seen = await refusals(bus)
          const workers = [await natsWorker(runtime, bus)]
          if (others) workers.push(await natsWorker(runtime, bus))
          await bus.waitForWorkers(workers.length)
          const l = load(bus, 30_000)
          let waited = 0 // the most requests queued while no worker was there
          // A close crosses requests on their way to the worker most times, not every time: it is tried until it did
          for (let round = 0; round < 8 && seen.refused === 0; round++) {
            const answered = l.tally.answered
            await until(() => l.tally.answered >= answered + 1000, "the load runs", 30_000)
            const a = workers.shift()!
            process.kill(a.pid, "SIGUSR2") // its close(): it says "leaving", refuses what comes, finishes what it runs
            await a.waitLine(/^closed$/, 30_000)
            await until(() => bus.workerCount === others, "the hub counts it gone", 30_000)
            if (!others) waited = Math.max(waited, bus.stats().queued)
            workers.push(await natsWorker(runtime, bus))
            await until(() => bus.workerCount === others + 1, "a new worker joined", 30_000)
          }
          const answered = l.tally.answered
          await until(() => l.tally.answered >= answered + 1000, "the load goes on", 30_000)
          await l.stop()
          expect(seen.refused).toBeGreaterThan(0) // else this proves nothing
          expect(l.tally.failed.slice(0, 3)).toEqual([]) // before: WorkerGoneError, "is leaving and did not run the request"
          expect(l.tally.wrong).toBe(0)
          if (!others) expect(waited).toBeGreaterThan(0)
        },
        120_000,
      )
    },
  )
