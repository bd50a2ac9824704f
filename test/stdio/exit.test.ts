// A front that leaves with its stdio bus running ends the workers it started: process.exit(), an uncaught error and
// a stop signal with no handler of the app's send each worker SIGTERM, under Bun and under Node. The workers here
// never read their stdin, so the EOF the front's exit gives them is not enough (before, both outlived the front).
// After a kill -9 of the front, or an exit that SIGTERM does not end them, the reaper does (src/kit/supervision/
// reaper.ts): SIGTERM, then SIGKILL after 2 s, for workers that ignore SIGTERM too (before, they outlived it for good).
// The workers and the reaper run in process groups of their own (a terminal's Ctrl-C is the front's to act on): a
// Ctrl-C or a kill -9 of the front's whole group ends them all the same.
import { afterAll, afterEach, expect, test } from "bun:test"
import { alive, type Child, until } from "../support/helpers.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

let children: Child[] = []
let workers: number[] = []
afterEach(async () => {
  for (const c of children) await c.kill()
  for (const pid of workers) if (alive(pid)) process.kill(pid, "SIGKILL")
  children = []
  workers = []
})
afterAll(() => removeNodeBuilds())

const cases = (["bun", "node"] as PeerRuntime[]).flatMap((r): [PeerRuntime, string][] => [
  [r, "exit"],
  [r, "throw"],
  [r, "SIGTERM"],
  [r, "Ctrl-C"],
])

test.skipIf(peerSkip("node") !== null).each(cases)(
  "a %s front that leaves (%s) with its stdio bus running ends its workers",
  async (runtime, how) => {
    const group = how === "Ctrl-C" // SIGINT to the front's process group, as a terminal sends it
    const front = await peerChild(runtime, "runtime/stdio-exit.ts", [], { stdin: "pipe", detached: group })
    children.push(front)
    const [, ...pids] = (await front.waitLine(/^ready \d+ \d+$/, 30_000))[0].split(" ").map(Number)
    workers = pids
    expect(pids.filter(alive)).toEqual(pids)
    if (how === "SIGTERM") front.signal("SIGTERM")
    else if (group) front.groupSignal("SIGINT")
    else front.write(`${how}\n`)
    expect(await front.proc.exited).toBe({ exit: 0, throw: 1, SIGTERM: 143, "Ctrl-C": 130 }[how]!)
    await until(() => !pids.some(alive), "its workers are gone", 10_000)
  },
  60_000,
)

const stubborn = (["bun", "node"] as PeerRuntime[]).flatMap((r): [PeerRuntime, string][] => [
  [r, "SIGKILL"],
  [r, "exit"],
  [r, "SIGKILL to its process group"],
])

test.skipIf(peerSkip("node") !== null).each(stubborn)(
  "a %s front's workers that ignore their stdin's EOF and SIGTERM are ended after the front goes (%s)",
  async (runtime, how) => {
    const group = how === "SIGKILL to its process group" // a group of its own, as a shell's job
    const front = await peerChild(runtime, "runtime/stdio-exit.ts", ["stubborn"], { stdin: "pipe", detached: group })
    children.push(front)
    const [, ...pids] = (await front.waitLine(/^ready \d+ \d+$/, 30_000))[0].split(" ").map(Number)
    workers = pids
    // the workers and the reaper run in groups of their own (a terminal's Ctrl-C is the front's): the reaper outlives it
    if (group) front.groupSignal("SIGKILL")
    else if (how === "SIGKILL") front.signal("SIGKILL")
    else front.write("exit\n")
    await front.proc.exited
    await until(() => !pids.some(alive), "its workers are gone", 20_000)
  },
  60_000,
)
