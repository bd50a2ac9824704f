// Requests to workers on other hosts in the flight recorder (docs/PROTOCOL.md §16.3): a front's file records what its
// workers over NATS hold as it records its slots, so `slotbus ls` counts them in flight and `slotbus requests` shows
// each one, its worker's pid and how it ended: answered, the handler threw, timed out, streamed, the worker killed.
// Before, a front whose workers were all on NATS showed 0 in flight and no request at all. Workers under Bun and
// Node; a Bun front here and a Node front (test/support/runtime/node-front.ts). Needs `nats-server`.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { RemoteError, SlotBus, TimeoutError, WorkerGoneError } from "../../src/index.ts"
import { nats as viaNats } from "../../src/nats/index.ts"
import { RecConst, recorderDir } from "../../src/native/recorder-layout.ts"
import { readRecorder } from "../../src/status/host-recorder.ts"
import { busName, rejection, until, type Child } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { PEER_RUNTIMES, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"
import { hostCli as cli } from "../support/status/host-files.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS tests are skipped: ${skip}`)
const nats = natsPerFile(skip)
afterAll(removeNodeBuilds)

// this file's fronts keep their recorder files in a directory of their own (§16.1), which the CLI reads too
const xdgBefore = process.env.XDG_RUNTIME_DIR
process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), "far-rec-xdg-"))
afterAll(() => {
  rmSync(process.env.XDG_RUNTIME_DIR!, { recursive: true, force: true })
  if (xdgBefore === undefined) delete process.env.XDG_RUNTIME_DIR
  else process.env.XDG_RUNTIME_DIR = xdgBefore
})

async function remoteWorker(runtime: "bun" | "node", bus: string): Promise<Child> {
  const w = await peerChild(runtime, "nats/nats-worker.ts", [bus, nats.url])
  nats.cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 30_000)
  return w
}

/** The front `pid`'s recorder file of bus `name`, read now. */
function file(name: string, pid: number) {
  const r = readRecorder(join(recorderDir(), `${name}.${pid}.rec`))
  if ("malformed" in r) throw new Error(r.malformed)
  return r
}
const far = (r: ReturnType<typeof file>) => r.records.filter((q) => q.slot === RecConst.NO_SLOT)
const byWhat = (r: ReturnType<typeof file>, what: string) => far(r).filter((q) => q.what === what)

describe.skipIf(skip !== null)("requests to workers over NATS in the flight recorder", () => {
  for (const runtime of PEER_RUNTIMES)
    test.skipIf(peerSkip(runtime) !== null)(
      `a Bun front, a ${runtime} worker: each request's record, from in flight to how it ended`,
      async () => {
        const name = busName("farrec")
        const bus = await SlotBus.listen(name, { remote: viaNats(nats.url), heartbeatMs: 100 })
        nats.cleanup.push(() => bus.close({ drain: false }))
        const w = await remoteWorker(runtime, name)
        await bus.waitForWorkers(1)

        // in flight: counted, and shown by the CLI with its worker and no slot
        const held = bus.request({ path: "/hold" }, { timeoutMs: 60_000 })
        await until(() => byWhat(file(name, process.pid), "GET /hold")[0]?.phase === "in flight", "recorded", 10_000)
        expect(file(name, process.pid).inFlight).toBe(1)
        const listed = (await cli("ls", "--json")).json().buses.find((b: { name: string }) => b.name === name)
        expect(listed.inFlight).toBe(1)
        const shown = (await cli("requests", name, "--json")).json().requests
        expect(shown).toContainEqual(
          expect.objectContaining({ what: "GET /hold", workerPid: w.pid, phase: "in flight", slot: null, far: true }),
        )
        expect((await cli("requests", name)).stdout).toContain(`${w.pid} (far)`)

        // answered, thrown, timed out, streamed: each ends its own record
        expect((await bus.request({ path: "/echo", body: "abc" })).status).toBe(200)
        expect(await rejection(bus.request({ path: "/throw" }))).toBeInstanceOf(RemoteError)
        expect(await rejection(bus.request({ path: "/hold" }, { timeoutMs: 200 }))).toBeInstanceOf(TimeoutError)
        const streamed = await bus.request({ path: "/stream/3/1000" }, { stream: true })
        expect((await streamed.bytes()).length).toBe(3000)
        await until(() => byWhat(file(name, process.pid), "GET /stream/3/1000")[0]?.phase === "done", "streamed")
        const r = file(name, process.pid)
        expect(byWhat(r, "GET /echo")).toEqual([
          expect.objectContaining({ phase: "done", outcome: "answered", status: 200, workerPid: w.pid }),
        ])
        expect(byWhat(r, "GET /echo")[0]!.requestBytes).toBe(3)
        expect(byWhat(r, "GET /echo")[0]!.answerBytes).toBe(3)
        expect(byWhat(r, "GET /throw")).toEqual([expect.objectContaining({ phase: "done", outcome: "error" })])
        expect(byWhat(r, "GET /hold")).toContainEqual(expect.objectContaining({ phase: "done", outcome: "timeout" }))
        expect(byWhat(r, "GET /stream/3/1000")).toEqual([
          expect.objectContaining({ phase: "done", outcome: "answered", status: 200 }),
        ])

        // the worker killed while it holds one: worker gone, and nothing left in flight
        await w.kill("SIGKILL")
        expect(await rejection(held)).toBeInstanceOf(WorkerGoneError)
        const after = file(name, process.pid)
        expect(after.inFlight).toBe(0)
        expect(far(after).filter((q) => q.phase !== "done")).toEqual([])
        expect(byWhat(after, "GET /hold")).toContainEqual(
          expect.objectContaining({ phase: "done", outcome: "worker gone" }),
        )
        expect(after.requests).toBe(5) // the two holds, /echo, /throw, the stream
      },
      60_000,
    )

  test.skipIf(peerSkip("node") !== null)(
    "a Node front (node:ffi) records them the same: the head's what, its worker, its outcome",
    async () => {
      const name = busName("farrecn")
      const front = await peerChild("node", "runtime/node-front.ts", [name, nats.url], { stdin: "pipe" })
      nats.cleanup.push(async () => void (await front.kill()))
      await front.waitLine(/^listening$/, 30_000)
      const w = await remoteWorker("bun", name)
      await front.waitLine(new RegExp(`^join ${w.pid}$`), 30_000)
      front.write("get 1 /echo\n")
      await front.waitLine(/^answer 1 200$/, 10_000)
      front.write("call 2 abc\n")
      await front.waitLine(/^answer 2 cba$/, 10_000)
      const r = file(name, front.pid)
      expect(byWhat(r, "GET /echo")).toEqual([
        expect.objectContaining({ phase: "done", outcome: "answered", status: 200, workerPid: w.pid }),
      ])
      expect(far(r).filter((q) => q.kind === "raw")).toEqual([
        expect.objectContaining({ phase: "done", outcome: "answered", what: "", requestBytes: 3, answerBytes: 3 }),
      ])
    },
    60_000,
  )
})
