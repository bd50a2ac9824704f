// A front that leaves with its stdio bus running ends the workers it started: process.exit(), an uncaught error and
// a stop signal with no handler of the app's send each worker SIGTERM, under Bun and under Node. The workers here
// never read their stdin, so the EOF the front's exit gives them is not enough (before, both outlived the front).
// After a kill -9 of the front, or an exit that SIGTERM does not end them, the reaper does (src/kit/supervision/
// reaper.ts): SIGTERM, then SIGKILL after 2 s, for workers that ignore SIGTERM too (before, they outlived it for good).
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
])

test.skipIf(peerSkip("node") !== null).each(cases)(
  "a %s front that leaves (%s) with its stdio bus running ends its workers",
  async (runtime, how) => {
    const front = await peerChild(runtime, "runtime/stdio-exit.ts", [], { stdin: "pipe" })
    children.push(front)
    const [, ...pids] = (await front.waitLine(/^ready \d+ \d+$/, 30_000))[0].split(" ").map(Number)
    workers = pids
    expect(pids.filter(alive)).toEqual(pids)
    if (how === "SIGTERM") front.signal("SIGTERM")
    else front.write(`${how}\n`)
    expect(await front.proc.exited).toBe({ exit: 0, throw: 1, SIGTERM: 143 }[how]!)
    await until(() => !pids.some(alive), "its workers are gone", 10_000)
  },
  60_000,
)

const stubborn = (["bun", "node"] as PeerRuntime[]).flatMap((r): [PeerRuntime, string][] => [
  [r, "SIGKILL"],
  [r, "exit"],
])

test.skipIf(peerSkip("node") !== null).each(stubborn)(
  "a %s front's workers that ignore their stdin's EOF and SIGTERM are ended after the front goes (%s)",
  async (runtime, how) => {
    const front = await peerChild(runtime, "runtime/stdio-exit.ts", ["stubborn"], { stdin: "pipe" })
    children.push(front)
    const [, ...pids] = (await front.waitLine(/^ready \d+ \d+$/, 30_000))[0].split(" ").map(Number)
    workers = pids
    if (how === "SIGKILL") front.signal("SIGKILL")
    else front.write("exit\n")
    await front.proc.exited
    await until(() => !pids.some(alive), "its workers are gone", 20_000)
  },
  60_000,
)
