// The region header's `bus processes` word (docs/PROTOCOL.md §2): the hub tells each worker on this host how many
// processes serve the bus, so the default idle strategy parks at once where they outnumber the CPUs (pump.ts).
import { afterEach, expect, test } from "bun:test"
import { Crowd, crowdTogether } from "../../../src/core/internal.ts"
import { SlotBus } from "../../../src/index.ts"
import { busName, type Child, spawnWorker, stopAll, until } from "../../support/helpers.ts"

afterEach(stopAll)

type Endpoint = { chan: { busProcesses: number; peerPid: number } }
const endpoints = (bus: SlotBus) => [
  ...(bus as unknown as { acceptor: { endpoints: Set<Endpoint> } }).acceptor.endpoints,
]

test("the hub tells every worker on this host how many processes serve the bus (itself included), again as one leaves", async () => {
  const bus = await SlotBus.listen(busName())
  const procs: Child[] = []
  try {
    for (let i = 0; i < 3; i++) procs.push(await spawnWorker(bus.name))
    await bus.waitForWorkers(3)
    expect(endpoints(bus).map((e) => e.chan.busProcesses)).toEqual([4, 4, 4])
    const gone = procs.shift()!
    process.kill(gone.pid, "SIGKILL")
    await until(() => endpoints(bus).length === 2, "the killed worker is dropped")
    expect(endpoints(bus).map((e) => e.chan.busProcesses)).toEqual([3, 3])
    expect((await bus.request({ path: "/echo", body: "still" })).text()).toBe("still")
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    await bus.close({ drain: false })
  }
})

test("two pools in one front count apart: another bus's idle worker does not crowd this one's", async () => {
  const buses = [await SlotBus.listen(busName()), await SlotBus.listen(busName())]
  const procs: Child[] = []
  try {
    for (const bus of buses) {
      procs.push(await spawnWorker(bus.name))
      await bus.waitForWorkers(1)
    }
    // counted together ([3] each, over 2 CPUs) both buses parked at once on every request: 3–5× slower round trips
    expect(buses.map((b) => endpoints(b).map((e) => e.chan.busProcesses))).toEqual([[2], [2]])
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    for (const b of buses) await b.close({ drain: false })
  }
})

test("a process with a bus per worker (the HTTP hub's shape) tells each worker the processes of all its buses", async () => {
  const buses = [await SlotBus.listen(busName()), await SlotBus.listen(busName())]
  const crowd = new Crowd()
  const procs: Child[] = []
  try {
    crowdTogether(buses[0]!, crowd)
    procs.push(await spawnWorker(buses[0]!.name))
    await buses[0]!.waitForWorkers(1)
    procs.push(await spawnWorker(buses[1]!.name))
    await buses[1]!.waitForWorkers(1)
    crowdTogether(buses[1]!, crowd) // joined after its worker: counted together from then on
    expect(buses.map((b) => endpoints(b).map((e) => e.chan.busProcesses))).toEqual([[3], [3]])
    await buses[1]!.close({ drain: false })
    await until(() => endpoints(buses[0]!)[0]!.chan.busProcesses === 2, "the closed bus's worker is no longer counted")
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    for (const b of buses) await b.close({ drain: false })
  }
})
