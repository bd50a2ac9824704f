// A worker over NATS that several hubs share (docs/PROTOCOL.md §10.2): each hub counts only its own requests, so
// the worker itself keeps to its `slots`, refusing one past them unrun (503); the request then waits in the bus's
// queue, idempotent or not, within its timeoutMs. The other hub is a raw NATS client that holds the worker's slots;
// the worker runs under Bun and under Node. Needs `nats-server` (apt-get install -y nats-server).
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "@nats-io/transport-node"
import { SlotBus, TimeoutError } from "../../src/index.ts"
import { align8, writeHead } from "../../src/core/wire/codec.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { writePrefix } from "../../src/nats/wire.ts"
import { busName, rejection, until } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS shared-worker tests are skipped: ${skip}`)
const nats = natsPerFile(skip)
afterAll(removeNodeBuilds)

/** An http request as §10.2 lays it out: the prefix, the head (method, path), padding; no body. */
function request(method: string, path: string): Uint8Array {
  const head = new Uint8Array(256)
  const headLen = writeHead(head, [method, path])
  const out = new Uint8Array(16 + align8(headLen))
  writePrefix(out, 1, headLen, 0)
  out.set(head.subarray(0, headLen), 16)
  return out
}

/**
 * A bus, its one worker (slots: 2, a presence each 100 ms) and another hub, a raw NATS client, that holds both its
 * slots with requests that run until it lets go. `ours` counts the requests this bus sends the worker.
 */
async function sharedWorker(runtime: "bun" | "node") {
  const bus = await SlotBus.listen(busName("shared"), { remote: viaNats(nats.url), heartbeatMs: 100 })
  nats.cleanup.push(() => bus.close({ drain: false }))
  const w = await peerChild(runtime, "nats/nats-worker.ts", [bus.name, nats.url, "--slots=2"])
  nats.cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 30_000)
  await bus.waitForWorkers(1)

  const nc = await connect({ servers: nats.url })
  nats.cleanup.push(() => nc.close())
  const root = `slotbus.${bus.name.replaceAll(".", "~")}`
  const [presence] = await Array.fromAsync(nc.subscribe(`${root}.hb`, { max: 1 }))
  const id = (JSON.parse(presence!.string()) as { worker: string }).worker
  const other = `${root}.re.other.k.`
  const seen = { ours: 0, answers: 0 }
  nc.subscribe(`${root}.req.${id}`, { callback: (_, m) => void (m.reply?.startsWith(other) || seen.ours++) })
  nc.subscribe(`${other}*`, { callback: () => void seen.answers++ })
  await nc.flush()
  const replies = [`${other}1`, `${other}2`]
  for (const reply of replies) nc.publish(`${root}.req.${id}`, request("GET", "/hold"), { reply })
  await nc.flush()
  await until(() => w.lines.filter((l) => l === "holding").length === 2, "the other hub's requests run")
  const letGo = async () => {
    for (const reply of replies) nc.publish(`${root}.cancel.${id}`, reply)
    await until(() => seen.answers === 2, "the other hub has its answers")
  }
  return { bus, w, seen, letGo }
}

for (const runtime of ["bun", "node"] as const)
  describe.skipIf(skip !== null || peerSkip(runtime) !== null)(
    `a ${runtime} worker over NATS shared by two hubs`,
    () => {
      test("runs at most its slots: a request past them is refused unrun and waits, not idempotent too, until there is room", async () => {
        const { bus, w, seen, letGo } = await sharedWorker(runtime)
        // this hub sees two free slots; the worker has none
        let early: unknown = null
        const once = bus.request({ method: "POST", path: "/slow/0", body: "once" }, { timeoutMs: 20_000 })
        once.then(
          () => (early = "answered"),
          (e) => (early = e),
        )
        // sent again only after the worker refused it and said it is there a heartbeat later
        await until(() => seen.ours >= 2 || early !== null, "the bus sends the refused request again")
        expect(early).toBeNull() // before: WorkerGoneError, "runs its 2 slots already and did not run the request"
        expect(w.lines).not.toContain("running once")

        await letGo()
        expect((await once).text()).toBe("once") // it waited for the room
        // the worker's stdout line can come after its answer over NATS: read until it is there
        await until(() => w.lines.some((l) => l.startsWith("running ")), "the worker's line for the run")
        expect(w.lines.filter((l) => l.startsWith("running "))).toEqual(["running once"])
      }, 60_000)

      test("a request whose worker stays full fails with TimeoutError at its timeoutMs, sent once a heartbeat meanwhile", async () => {
        const { bus, w, seen, letGo } = await sharedWorker(runtime)
        const err = await rejection(bus.request({ method: "POST", path: "/slow/0", body: "late" }, { timeoutMs: 1500 }))
        expect(err).toBeInstanceOf(TimeoutError) // before: WorkerGoneError at once
        expect((err as Error).message).toContain("timed out after 1500ms")
        expect(seen.ours).toBeGreaterThanOrEqual(2) // it waited, sent again after a refusal
        // once a presence (each 100 ms) at most, not in a loop: a hot loop sends it thousands of times in 1.5 s
        expect(seen.ours).toBeLessThan(100)
        expect(w.lines).not.toContain("running late")
        await letGo()
        expect(w.lines.filter((l) => l.startsWith("running "))).toEqual([])
      }, 60_000)
    },
  )
