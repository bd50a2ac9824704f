// What a front leaves in the socket directory (docs/PROTOCOL.md §1.1, §14, §15.2) when it exits without closing its
// bus: nothing, as with close(). Bun and Node fronts, a plain name with a door for another uid, and two shared fronts
// of one name (the election's socket file and "name~1"), each leaving by process.exit() and by an uncaught error; and
// a front without a stop-signal handler of its own, sent SIGTERM, SIGINT or SIGHUP: it still dies of the signal. One
// with its own handler, or a Bun one started with the signal ignored (nohup; Node resets it, so it dies of it), is
// left as it was; one started with SIGINT ignored whose own once handler took the first SIGINT dies of the second,
// its files let go. kill -9 still leaves the files, to the next listener of the name (test/core/hub/stale.test.ts
// and its neighbours).
import { afterAll, afterEach, expect, test } from "bun:test"
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import { socketDir } from "../support/fds.ts"
import { busName, type Child, FIXTURES, spawn } from "../support/helpers.ts"
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

async function front(runtime: PeerRuntime, name: string, options: object, ...more: string[]): Promise<Child> {
  return frontUnder([], runtime, name, options, ...more)
}

/** A front run by `under`, a command that execs the rest (a shell that set a signal ignored, as nohup). */
async function frontUnder(under: string[], runtime: PeerRuntime, name: string, options: object, ...more: string[]) {
  const env = { ...process.env, SLOTBUS_DOOR_DIR: doorDir }
  const args = [name, JSON.stringify(options), ...more]
  return listening(await peerChild(runtime, "runtime/bus-exit.ts", args, { stdin: "pipe", env }, under))
}

async function listening(c: Child): Promise<Child> {
  children.push(c)
  await c.waitLine(/^listening \d+$/, 30_000)
  return c
}

/** Everything of the name in the socket directory and the door directory. */
const leftovers = (name: string) =>
  [socketDir(), doorDir]
    .flatMap((d) => (existsSync(d) ? readdirSync(d) : []).map((f) => `${d === doorDir ? "door/" : ""}${f}`))
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

test
  .skipIf(peerSkip("node") !== null)
  .each(
    (["bun", "node"] as PeerRuntime[]).flatMap((r): [PeerRuntime, NodeJS.Signals][] =>
      (["SIGTERM", "SIGINT", "SIGHUP"] as const).map((s) => [r, s]),
    ),
  )(
  "a %s front without a handler of its own, sent %s, still dies of it and leaves none of its files",
  async (runtime, signal) => {
    const name = busName("eg")
    const f = await front(runtime, name, {})
    expect(leftovers(name)).toEqual([`slotbus-ctl.${name}`, `slotbus.${name}`])
    f.signal(signal)
    await f.exited
    expect(f.proc.signalCode).toBe(signal) // the signal's default action, as without slotbus
    expect(leftovers(name)).toEqual([]) // both stayed, for good, before
  },
  60_000,
)

test.skipIf(peerSkip("node") !== null).each([
  ["bun", "own-sigterm"],
  ["node", "own-sigterm"],
  // failed before: a once listener leaves the list as it runs, so slotbus's, run after it, took itself for the only
  // one and raised the signal again: the process died in the app's own shutdown (a hub worker's deregister cut)
  ["bun", "once-sigterm"],
  ["node", "once-sigterm"],
] as [PeerRuntime, string][])(
  "a %s front with a SIGTERM handler of its own (%s) is left to it: it lives on, its files too",
  async (runtime, how) => {
    const name = busName("eh")
    const f = await front(runtime, name, {}, how)
    f.signal("SIGTERM")
    await f.waitLine(/^sigterm$/)
    expect(leftovers(name)).toEqual([`slotbus-ctl.${name}`, `slotbus.${name}`])
    f.write("close\n") // still running, and still listening: it closes as it would have
    expect(await f.exited).toBe(0)
    expect(leftovers(name)).toEqual([])
  },
  60_000,
)

test.skipIf(peerSkip("node") !== null).each(["bun", "node"] as PeerRuntime[])(
  "a %s front that also uses npm's signal-exit (which acts only when alone, as slotbus) still dies of SIGTERM, both cleaned up",
  async (runtime) => {
    const name = busName("ej")
    const f = await front(runtime, name, {}, "signal-exit")
    f.signal("SIGTERM")
    await f.waitLine(/^signal-exit SIGTERM$/) // each would wait for the other, and the signal be lost
    await f.exited
    expect(f.proc.signalCode).toBe("SIGTERM")
    expect(leftovers(name)).toEqual([])
  },
  60_000,
)

test("a Bun front started with SIGHUP ignored (nohup) ignores it still", async () => {
  const name = busName("ei")
  const fixture = join(FIXTURES, "runtime/bus-exit.ts")
  const cmd = ["sh", "-c", 'trap "" HUP; exec "$@"', "sh", process.execPath, fixture, name]
  const f = await listening(spawn(cmd, { stdin: "pipe" }))
  const ignored = BigInt(`0x${/^SigIgn:\s*(\w+)$/m.exec(readFileSync(`/proc/${f.pid}/status`, "utf8"))![1]}`)
  expect(ignored & 1n).toBe(1n) // SIGHUP (1) still ignored: no listener was put on it
  f.signal("SIGHUP")
  f.write("close\n") // alive after it: the close is answered
  expect(await f.exited).toBe(0)
  expect(leftovers(name)).toEqual([])
}, 60_000)

// docs/api.md, "Shutting down": Node resets an ignored signal to its default at its start, so under nohup it dies
test.skipIf(peerSkip("node") !== null)(
  "a Node front started with SIGHUP ignored (nohup) dies of it all the same, leaving none of its files",
  async () => {
    const name = busName("eo")
    const f = await frontUnder(["sh", "-c", 'trap "" HUP; exec "$@"', "sh"], "node", name, {})
    const ignored = BigInt(`0x${/^SigIgn:\s*(\w+)$/m.exec(readFileSync(`/proc/${f.pid}/status`, "utf8"))![1]}`)
    expect(ignored & 1n).toBe(0n) // Node's start made SIGHUP's action its default again
    f.signal("SIGHUP")
    await f.exited
    expect(f.proc.signalCode).toBe("SIGHUP")
    expect(leftovers(name)).toEqual([])
  },
  60_000,
)

test.skipIf(peerSkip("node") !== null).each(["bun", "node"] as PeerRuntime[])(
  "a %s front started with SIGINT ignored (a shell's & job), whose once handler took a first SIGINT, dies of a second, leaving nothing",
  async (runtime) => {
    const name = busName("ek")
    const f = await frontUnder(["sh", "-c", 'trap "" INT; exec "$@"', "sh"], runtime, name, {}, "once-sigint")
    const recorders = () => {
      const dir = `/dev/shm/slotbus-${process.geteuid!()}`
      return (existsSync(dir) ? readdirSync(dir) : []).filter((f) => f.startsWith(`${name}.`))
    }
    expect(recorders()).toEqual([`${name}.${f.pid}.rec`])
    f.signal("SIGINT")
    await f.waitLine(/^sigint$/)
    expect(leftovers(name)).toEqual([`slotbus-ctl.${name}`, `slotbus.${name}`]) // the app's, which does not exit
    f.signal("SIGINT")
    await f.exited
    expect(f.proc.signalCode).toBe("SIGINT")
    // before, under Bun: the socket files and the flight recorder's file stayed (SIGINT was not hooked, started
    // ignored, and the app's once listener left it its default action)
    expect(leftovers(name)).toEqual([])
    expect(recorders()).toEqual([])
  },
  60_000,
)
