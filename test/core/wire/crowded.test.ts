// The region header's `bus processes at work` word (docs/PROTOCOL.md §2): the hub tells each worker on this host how
// many processes are at work for the bus, itself and each worker process with a request in flight, so the default
// idle strategy parks at once where they outnumber the CPUs (pump.ts) and polls where one client keeps one worker at
// work at a time.
import { afterEach, expect, test } from "bun:test"
import { Crowd, crowdTogether } from "../../../src/core/internal.ts"
import { SlotBus } from "../../../src/index.ts"
import { busName, type Child, spawnWorker, stopAll, until } from "../../support/helpers.ts"

afterEach(stopAll)

type Endpoint = { chan: { busProcesses: number; peerPid: number }; inFlight: number }
const endpoints = (bus: SlotBus) => [
  ...(bus as unknown as { acceptor: { endpoints: Set<Endpoint> } }).acceptor.endpoints,
]
const told = (bus: SlotBus) => endpoints(bus).map((e) => e.chan.busProcesses)
/** 1 + the worker processes of `buses` with a request in flight. */
const atWork = (...buses: SlotBus[]) =>
  1 + new Set(buses.flatMap((b) => endpoints(b).filter((e) => e.inFlight > 0)).map((e) => e.chan.peerPid)).size
/** A request the echo worker holds for `ms` before it answers. */
const held = (bus: SlotBus, ms: number) =>
  bus.fetch(new Request("http://w/echo", { headers: { "x-delay-ms": String(ms) } }))

test("the hub tells every worker how many processes are at work: itself and each worker with a request in flight (or one lately: 100–200 ms), again as requests come back and a busy worker dies", async () => {
  const bus = await SlotBus.listen(busName())
  const procs: Child[] = []
  try {
    for (let i = 0; i < 3; i++) procs.push(await spawnWorker(bus.name))
    await bus.waitForWorkers(3)
    expect(told(bus)).toEqual([1, 1, 1]) // connected, idle: only the hub is at work
    // enough held requests that the dispatcher spreads them past one worker's packing
    const answers = Array.from({ length: 40 }, () => held(bus, 300))
    await until(() => atWork(bus) === 4, "every worker has a request in flight")
    expect(told(bus)).toEqual([4, 4, 4])
    for (const r of await Promise.all(answers)) expect(r.status).toBe(200)
    await until(() => told(bus).every((n) => n === 1), "all back: only the hub at work")
    // a worker that dies with requests in flight is no longer counted
    const one = held(bus, 5000).catch((e: Error) => e)
    await until(() => atWork(bus) === 2, "one worker at work")
    expect(told(bus)).toEqual([2, 2, 2])
    const busy = endpoints(bus).find((e) => e.inFlight > 0)!.chan.peerPid
    process.kill(busy, "SIGKILL")
    expect(await one).toBeInstanceOf(Error)
    await until(() => endpoints(bus).length === 2, "the killed worker is dropped")
    expect(told(bus)).toEqual([1, 1])
    expect((await bus.request({ path: "/echo", body: "still" })).text()).toBe("still")
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    await bus.close({ drain: false })
  }
})

test("a request costs the count no clock read: it is kept by a sweep of the connections, not timed per request", async () => {
  const bus = await SlotBus.listen(busName())
  const procs = [await spawnWorker(bus.name)]
  const clock = performance.now
  let reads = 0
  try {
    await bus.waitForWorkers(1)
    for (let i = 0; i < 50; i++) await bus.call("/echo") // warm
    performance.now = () => (reads++, clock.call(performance))
    // one at a time: each request takes the worker from none in flight to one and back (a clock read and two map
    // writes a round trip, timing when each came back, cost a 64 B bus.call 60–70 ns)
    for (let i = 0; i < 500; i++) await bus.call("/echo")
    performance.now = clock
    expect(reads).toBeLessThan(50)
    expect(told(bus)).toEqual([2]) // still counted at work right after
    await until(() => told(bus)[0] === 1, "no request for 100–200 ms: no longer counted")
  } finally {
    performance.now = clock
    await Promise.all(procs.map((p) => p.kill()))
    await bus.close({ drain: false })
  }
})

test("two pools in one front count apart: another bus's worker at work does not crowd this one's", async () => {
  const buses = [await SlotBus.listen(busName()), await SlotBus.listen(busName())]
  const procs: Child[] = []
  try {
    for (const bus of buses) {
      procs.push(await spawnWorker(bus.name))
      await bus.waitForWorkers(1)
    }
    const answer = held(buses[0]!, 300)
    await until(() => told(buses[0]!)[0] === 2, "bus 0's worker at work")
    // counted together ([3] each, over 2 CPUs) both buses parked at once on every request: 3–5× slower round trips
    expect(buses.map(told)).toEqual([[2], [1]])
    expect((await answer).status).toBe(200)
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    for (const b of buses) await b.close({ drain: false })
  }
})

test("a process with a bus per worker (the HTTP hub's shape) counts the workers at work over all its buses", async () => {
  const buses = [await SlotBus.listen(busName()), await SlotBus.listen(busName())]
  const crowd = new Crowd()
  const procs: Child[] = []
  try {
    crowdTogether(buses[0]!, crowd)
    procs.push(await spawnWorker(buses[0]!.name))
    await buses[0]!.waitForWorkers(1)
    procs.push(await spawnWorker(buses[1]!.name))
    await buses[1]!.waitForWorkers(1)
    const second = held(buses[1]!, 1000)
    await until(() => told(buses[1]!)[0] === 2, "bus 1's worker at work, on its own still")
    expect(told(buses[0]!)).toEqual([1])
    crowdTogether(buses[1]!, crowd) // joined with a request in flight: counted together from then on
    expect(buses.map(told)).toEqual([[2], [2]])
    const first = held(buses[0]!, 300)
    await until(() => told(buses[0]!)[0] === 3, "both workers at work")
    expect(buses.map(told)).toEqual([[3], [3]])
    expect((await first).status).toBe(200)
    await until(() => told(buses[1]!)[0] === 2, "bus 0's answer back")
    await buses[1]!.close({ drain: false })
    await second.catch(() => {})
    await until(() => told(buses[0]!)[0] === 1, "the closed bus's worker is no longer counted")
  } finally {
    await Promise.all(procs.map((p) => p.kill()))
    for (const b of buses) await b.close({ drain: false })
  }
})
