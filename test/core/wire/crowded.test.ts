// The region header's `bus processes` word (docs/PROTOCOL.md §2): the hub tells each worker on this host how many
// processes serve the bus, so the default idle strategy parks at once where they outnumber the CPUs (pump.ts).
import { afterEach, expect, test } from "bun:test"
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

test("a process with a bus per worker (the HTTP hub's shape) tells each worker the processes of all its buses", async () => {
  const buses = [await SlotBus.listen(busName()), await SlotBus.listen(busName())]
  const procs: Child[] = []
  try {
    for (const bus of buses) {
      procs.push(await spawnWorker(bus.name))
      await bus.waitForWorkers(1)
    }
    // this process and the two workers; before, each bus counted only its own: [2] and [2]
    expect(buses.map((b) => endpoints(b).map((e) => e.chan.busProcesses))).toEqual([[3], [3]])
    await buses[1]!.close({ drain: false })
    await until(() => endpoints(buses[0]!)[0]!.chan.busProcesses === 2, "the closed bus's worker is no longer counted")
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    for (const b of buses) await b.close({ drain: false })
  }
})
