// A worker over NATS that several hubs share (docs/PROTOCOL.md §10.2): each hub counts only its own requests, so
// the worker itself keeps to its `slots`, refusing one past them unrun (503). The other hub is a raw NATS client
// that holds the worker's slots; the worker runs under Bun and under Node. Needs `nats-server`
// (apt-get install -y nats-server).
import { afterAll, describe, expect, test } from "bun:test"
import { connect } from "@nats-io/transport-node"
import { SlotBus, WorkerGoneError } from "../../src/index.ts"
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

for (const runtime of ["bun", "node"] as const)
  describe.skipIf(skip !== null || peerSkip(runtime) !== null)(
    `a ${runtime} worker over NATS shared by two hubs`,
    () => {
      test("runs at most its slots: a request past them is refused unrun (WorkerGoneError, or sent again once there is room when idempotent)", async () => {
        const bus = await SlotBus.listen(busName("shared"), { remote: viaNats(nats.url), heartbeatMs: 100 })
        nats.cleanup.push(() => bus.close({ drain: false }))
        const w = await peerChild(runtime, "nats/nats-worker.ts", [bus.name, nats.url, "--slots=2"])
        nats.cleanup.push(async () => void (await w.kill()))
        await w.waitLine(/^ready \d+$/, 30_000)
        await bus.waitForWorkers(1)

        // the other hub: it learns the worker's id from its presence and takes both its slots with requests that
        // run until it cancels them
        const nc = await connect({ servers: nats.url })
        nats.cleanup.push(() => nc.close())
        const root = `slotbus.${bus.name.replaceAll(".", "~")}`
        const [presence] = await Array.fromAsync(nc.subscribe(`${root}.hb`, { max: 1 }))
        const id = (JSON.parse(presence!.string()) as { worker: string }).worker
        const replies = [`${root}.re.other.k.1`, `${root}.re.other.k.2`]
        let answers = 0
        nc.subscribe(`${root}.re.other.k.*`, { callback: () => void answers++ })
        for (const reply of replies) nc.publish(`${root}.req.${id}`, request("GET", "/hold"), { reply })
        await nc.flush()
        await until(() => w.lines.filter((l) => l === "holding").length === 2, "the other hub's requests run")

        // this hub sees two free slots; the worker has none
        const err = await rejection(
          bus.request({ method: "POST", path: "/slow/0", body: "once" }, { timeoutMs: 10_000 }),
        )
        expect(err).toBeInstanceOf(WorkerGoneError) // before: answered "once", a third handler at once
        expect((err as Error).message).toContain("runs its 2 slots already")
        expect((err as Error).message).toContain("did not run the request; retry it")
        expect(w.lines).not.toContain("running once")

        const again = bus.request(
          { method: "POST", path: "/slow/0", body: "again" },
          { idempotent: true, timeoutMs: 10_000 },
        )
        for (const reply of replies) nc.publish(`${root}.cancel.${id}`, reply) // the other hub lets go
        expect((await again).text()).toBe("again") // it waited for the room
        await until(() => answers === 2, "the other hub has its answers")
        expect(w.lines.filter((l) => l.startsWith("running "))).toEqual(["running again"])
      }, 60_000)
    },
  )
