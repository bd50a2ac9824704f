// What a front leaves in the socket directory (docs/PROTOCOL.md §1.1, §14, §15.2) when it exits without closing its
// bus: nothing, as with close(). Bun and Node fronts, a plain name with a door for another uid, and two shared fronts
// of one name (the election's socket file and "name~1"), each leaving by process.exit() and by an uncaught error.
// kill -9 still leaves the files, to the next listener of the name (test/core/hub/stale.test.ts and its neighbours).
import { afterAll, afterEach, expect, test } from "bun:test"
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import { socketDir } from "../support/fds.ts"
import { busName, type Child } from "../support/helpers.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const NOBODY = 65534
const top = mkdtempSync("/tmp/slotbus-exit-files-")
chmodSync(top, 0o755)
const doorDir = join(top, "door") // made by the front, mode 0711
let children: Child[] = []
afterEach(async () => {
  for (const c of children) await c.kill()
  children = []
})
afterAll(() => {
  removeNodeBuilds()
  rmSync(top, { recursive: true, force: true })
})

async function front(runtime: PeerRuntime, name: string, options: object): Promise<Child> {
  const env = { ...process.env, SLOTBUS_DOOR_DIR: doorDir }
  const c = await peerChild(runtime, "runtime/bus-exit.ts", [name, JSON.stringify(options)], { stdin: "pipe", env })
  children.push(c)
  await c.waitLine(/^listening \d+$/, 30_000)
  return c
}

/** Everything of the name in the socket directory and the door directory. */
const leftovers = (name: string) =>
  [socketDir(), doorDir]
    .flatMap((d) => readdirSync(d).map((f) => `${d === doorDir ? "door/" : ""}${f}`))
    .filter((f) => f.includes(`.${name}`))
    .sort()

const cases = (["bun", "node"] as PeerRuntime[]).flatMap((r): [PeerRuntime, string][] => [
  [r, "exit"],
  [r, "throw"],
])

test.skipIf(peerSkip("node") !== null).each(cases)(
  "a %s front that exits (%s) with its bus open leaves none of its socket files: its name's, its control socket's and its door's",
  async (runtime, how) => {
    const name = busName("ex")
    const f = await front(runtime, name, { allowUids: [NOBODY] })
    expect(leftovers(name)).toEqual([`door/slotbus.${name}`, `slotbus-ctl.${name}`, `slotbus.${name}`])
    f.write(`${how}\n`)
    expect(await f.proc.exited).toBe(how === "exit" ? 0 : 1)
    expect(leftovers(name)).toEqual([]) // all three stayed, for good, before
  },
  60_000,
)

test.skipIf(peerSkip("node") !== null).each(cases)(
  "two shared %s fronts that exit (%s) with their bus open leave none: the election's, both fronts' and the control socket's",
  async (runtime, how) => {
    const name = busName("es")
    const fronts = [await front(runtime, name, { shared: true }), await front(runtime, name, { shared: true })]
    expect(leftovers(name)).toEqual([
      `slotbus-ctl.${name}`,
      `slotbus.${name}`,
      `slotbus.${name}~1`,
      `slotbus.fronts.${name}`,
    ])
    for (const f of fronts) {
      f.write(`${how}\n`)
      expect(await f.proc.exited).toBe(how === "exit" ? 0 : 1)
    }
    expect(leftovers(name)).toEqual([])
  },
  60_000,
)
