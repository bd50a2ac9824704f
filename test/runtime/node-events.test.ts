// One topic and one lease contest shared by a Bun process and a Node 26 process (issue 67): events cross both ways
// with their filters and routing keys, a parked subscriber of either runtime is woken by the other's publisher (its
// loop sleeps on its wake socket: seen in its epoll set), and kill -9 of either member leaves the other working
// and counted; a contest's holder on either side is seen by the other, and its kill -9 hands the subject to the
// other's waiting claim. Both members are real processes
// (test/support/runtime/topic-peer.ts and lease-peer.ts, under Bun as they are and built for Node).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { Topic } from "../../src/events/index.ts"
import { Contest } from "../../src/leases/index.ts"
import { readdirSync, readFileSync, readlinkSync } from "node:fs"
import { connect, createServer } from "node:net"
import { join } from "node:path"
import { socketDir } from "../support/fds.ts"
import { busName, type Child, until } from "../support/helpers.ts"
import { type PeerRuntime, peerChild, peerSkip, removeNodeBuilds } from "../support/runtime/peers.ts"

const skip = peerSkip("node")
if (skip) console.log(`skipping the Bun-and-Node topic and contest tests (${skip})`)
const it = test.skipIf(skip !== null)
const other = (r: PeerRuntime): PeerRuntime => (r === "bun" ? "node" : "bun")

let cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const f of cleanup.reverse()) await f()
  cleanup = []
})
afterAll(removeNodeBuilds)

async function member(runtime: PeerRuntime, fixture: string, name: string): Promise<Child> {
  const c = await peerChild(runtime, `runtime/${fixture}`, [name], { stdin: "pipe" })
  cleanup.push(() => c.kill())
  await c.waitLine(/^ready \d+$/, 30_000).catch((e) => {
    throw new Error(`${fixture} under ${runtime} did not start: ${e}`)
  })
  return c
}
const topicMember = (runtime: PeerRuntime, topic: string) => member(runtime, "topic-peer.ts", topic)
const contender = (runtime: PeerRuntime, contest: string) => member(runtime, "lease-peer.ts", contest)

/** The events subscription `id` of `c` printed, as "<type> <routing> <data>". */
const events = (c: Child, id: string) =>
  c.lines.filter((l) => l.startsWith(`ev ${id} `)).map((l) => l.slice(`ev ${id} `.length))

/** Asks `c` for subscription `id`'s counters and waits for the answer. */
async function counters(c: Child, id: string): Promise<{ received: number; lagged: number }> {
  const before = c.lines.length
  c.write(`count ${id}\n`)
  let line: string | undefined
  await until(
    () => (line = c.lines.slice(before).find((l) => l.startsWith(`count ${id} `))) !== undefined,
    "the counters",
    30_000,
  )
  const [, , received, lagged] = line!.split(" ")
  return { received: Number(received), lagged: Number(lagged) }
}

/** `pid`'s fds of its wake socket on `topic` (its datagram socket file, PROTOCOL §8.7, and any dup of it), via /proc. */
function wakeSocketFds(pid: number, topic: string): number[] {
  const inodes = readFileSync("/proc/net/unix", "utf8")
    .split("\n")
    .filter((l) => l.includes(`slotbus.topic.${topic}.`))
    .map((l) => l.trim().split(/\s+/)[6])
  const fds = readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1]
    return inode !== undefined && inodes.includes(inode)
  })
  if (fds.length === 0) throw new Error(`pid ${pid} has no wake socket on ${topic}`)
  return fds.map(Number)
}

/** Whether `fd` of `pid` is in one of its epoll sets (an epoll fd's fdinfo lists each target as "tfd: <fd>"). */
function inEpoll(pid: number, fd: number): boolean {
  for (const f of readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      if (new RegExp(`^tfd:\\s+${fd}\\s`, "m").test(readFileSync(`/proc/${pid}/fdinfo/${f}`, "utf8"))) return true
    } catch {} // closed meanwhile
  }
  return false
}

/** The names of `pid`'s threads. */
const threads = (pid: number) =>
  readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/comm`, "utf8").trim())

/** Waits until the topic lists `pid`'s subscriber as parked (asleep on its wake socket, docs/PROTOCOL.md §8). */
async function parked(topic: string, pid: number) {
  await using view = await Topic.open(topic)
  await until(() => view.stats().subscribers.some((s) => s.pid === pid && s.parked), `pid ${pid} parked`, 30_000)
}

describe("a topic shared by a Bun process and a Node process", () => {
  it("events published on each reach the other's subscriber, filtered by type and routing keys", async () => {
    const topic = busName("xt")
    const bun = await topicMember("bun", topic)
    const node = await topicMember("node", topic)
    for (const m of [bun, node]) {
      m.write("sub s job.* tenant=a\n")
      await m.waitLine(/^subscribed s$/, 30_000)
    }
    for (const [m, from] of [
      [bun, "bun"],
      [node, "node"],
    ] as const) {
      m.write(`pub job.done ${from}-1 tenant=a\n`) // passes both filters
      m.write(`pub job.done ${from}-2 tenant=b\n`) // another routing key
      m.write(`pub mail.sent ${from}-3 tenant=a\n`) // another type
      m.write(`pub job.started ${from}-4 tenant=a,region=eu\n`) // more keys than the filter names: passes
    }
    const want = ["job.done tenant=a bun-1", "job.started tenant=a,region=eu bun-4"]
    const wantNode = ["job.done tenant=a node-1", "job.started tenant=a,region=eu node-4"]
    for (const m of [bun, node]) {
      await until(() => events(m, "s").length >= 4, "both members' events", 30_000)
      // each member's own events in its order, the other's in theirs
      expect(events(m, "s").filter((e) => e.endsWith("bun-1") || e.endsWith("bun-4"))).toEqual(want)
      expect(events(m, "s").filter((e) => e.endsWith("node-1") || e.endsWith("node-4"))).toEqual(wantNode)
      expect(await counters(m, "s")).toEqual({ received: 4, lagged: 0 })
      expect(events(m, "s")).toHaveLength(4)
    }
  }, 120_000)

  it.each(["node", "bun"] as PeerRuntime[])(
    "a parked %s subscriber sleeps on its wake socket in its event loop's epoll, and the other runtime's publisher wakes it",
    async (subRuntime) => {
      const topic = busName("xw")
      const sub = await topicMember(subRuntime, topic)
      const pub = await topicMember(other(subRuntime), topic)
      sub.write("sub w wake.*\n")
      await sub.waitLine(/^subscribed w$/, 30_000)
      for (const ring of ["ring-1", "ring-2"]) {
        await parked(topic, sub.pid)
        // not polling: the loop waits on the socket the publisher rings (PROTOCOL §8.7)
        const fds = wakeSocketFds(sub.pid, topic) // Bun's reader reads a dup of it
        await until(() => fds.some((fd) => inEpoll(sub.pid, fd)), `its wake socket (fds ${fds}) in its epoll`, 30_000)
        pub.write(`pub wake.up ${ring}\n`)
        await sub.waitLine(new RegExp(`^ev w wake\\.up - ${ring}$`), 30_000)
      }
    },
    120_000,
  )

  it.each(["node", "bun"] as PeerRuntime[])(
    "kill -9 of the %s member leaves the other working, its subscriber counted: received + lagged = published",
    async (killed) => {
      const topic = busName("xk")
      const survivor = await topicMember(other(killed), topic)
      const victim = await topicMember(killed, topic)
      for (const m of [survivor, victim]) {
        m.write("sub k load\n")
        await m.waitLine(/^subscribed k$/, 30_000)
      }
      victim.write("flood load 5000\n")
      await victim.waitLine(/^flooded 5000$/, 30_000)
      await victim.kill("SIGKILL")
      // the dead member's subscriber is collected; the survivor publishes on, to itself
      await using view = await Topic.open(topic)
      await until(() => !view.stats().subscribers.some((s) => s.pid === victim.pid), "the dead subscriber gone", 30_000)
      survivor.write("flood load 3000\n")
      await survivor.waitLine(/^flooded 3000$/, 30_000)
      await until(() => events(survivor, "k").at(-1) === "load - 2999", "the survivor's last event", 30_000)
      const { received, lagged } = await counters(survivor, "k")
      expect(received + lagged).toBe(8000)
      expect(events(survivor, "k")).toHaveLength(received)
    },
    120_000,
  )
})

describe("a lease contest shared by a Bun process and a Node process", () => {
  it.each(["node", "bun"] as PeerRuntime[])(
    "the %s holder is seen by the other runtime; its kill -9 hands the subject to the other's waiting claim",
    async (holderRuntime) => {
      const contest = busName("xl")
      const holder = await contender(holderRuntime, contest)
      const waiter = await contender(other(holderRuntime), contest)
      holder.write("try leader\n")
      const [, token] = (await holder.waitLine(/^claimed leader (\d+) free$/, 30_000)) as RegExpMatchArray
      waiter.write("try leader\n")
      await waiter.waitLine(new RegExp(`^held leader ${holder.pid} ${token}$`), 30_000)
      using view = await Contest.open(contest)
      expect(view.holders().map((h) => [h.pid, h.owner])).toEqual([[holder.pid, `${holderRuntime}-${holder.pid}`]])
      waiter.write("claim leader\n") // no timeout: only its doorbell, rung by the holder's death, wakes it
      await holder.kill("SIGKILL")
      const [, next] = (await waiter.waitLine(/^claimed leader (\d+) holder-gone$/, 30_000)) as RegExpMatchArray
      expect(BigInt(next!)).toBeGreaterThan(BigInt(token!))
      expect(view.holders().map((h) => h.pid)).toEqual([waiter.pid])
      waiter.write("release leader\n")
      await waiter.waitLine(/^released leader true$/, 30_000)
      expect(view.holders()).toEqual([])
    },
    120_000,
  )
})

describe("a topic's and a contest's socket file, shared by a Bun process and a Node process", () => {
  /** The socket files of the socket directory (docs/PROTOCOL.md §13.2) that carry `name` as a topic's or contest's. */
  const files = (name: string) =>
    readdirSync(socketDir())
      .filter((f) => f === `slotbus.topic.${name}` || f === `slotbus-lease.${name}`)
      .sort()
  it.each(["node", "bun"] as PeerRuntime[])(
    "goes with the last member to close, the %s one first, and not before",
    async (firstRuntime) => {
      const name = busName("xf")
      const first = [await topicMember(firstRuntime, name), await contender(firstRuntime, name)]
      const last = [await topicMember(other(firstRuntime), name), await contender(other(firstRuntime), name)]
      expect(files(name)).toEqual([`slotbus-lease.${name}`, `slotbus.topic.${name}`])
      for (const c of first) c.write("close\n")
      expect(await Promise.all(first.map((c) => c.proc.exited))).toEqual([0, 0])
      expect(files(name)).toEqual([`slotbus-lease.${name}`, `slotbus.topic.${name}`]) // still held
      // and still answering: a newcomer joins the same topic and contest through it
      const t = await Topic.open(name, { create: "never" })
      const c = await Contest.open(name, { create: "never" })
      expect(c.stats().members).toBe(2)
      t.close()
      c.close()
      for (const c of last) c.write("close\n")
      expect(await Promise.all(last.map((c) => c.proc.exited))).toEqual([0, 0])
      expect(files(name)).toEqual([])
    },
    120_000,
  )

  // everything of the name in the socket directory: both socket files and the contest's local marker (§12.5)
  const leftovers = (name: string) => readdirSync(socketDir()).filter((f) => f.includes(`.${name}`))
  it.each([
    ["node", "exit"],
    ["bun", "exit"],
    ["node", "throw"],
    ["bun", "throw"],
    ["node", "close"],
    ["bun", "close"],
    ["node", "unsub"],
    ["bun", "unsub"],
  ] as [PeerRuntime, string][])(
    "and with a %s member that exits (%s) while its subscriber sleeps and a claim waits, its wake socket's too",
    async (runtime, how) => {
      const name = busName("xe")
      const members = [await topicMember(runtime, name), await contender(runtime, name)]
      members[0]!.write("sub s any\n")
      await members[0]!.waitLine(/^subscribed s$/)
      await parked(name, members[0]!.pid) // its wake socket is read by its event loop now (PROTOCOL §8.7)
      members[1]!.write("try a\nclaim a\n") // the second waits for the first: its waiter thread runs (§7.4)
      await members[1]!.waitLine(/^claimed a /)
      await until(() => threads(members[1]!.pid).includes("sbl-waiter"), "its waiter thread", 30_000)
      expect(leftovers(name).sort()).toEqual([
        `slotbus-lease-local.${name}.lock`,
        `slotbus-lease.${name}`,
        `slotbus.topic.${name}`,
        expect.stringMatching(new RegExp(`^slotbus\\.topic\\.${name}\\.[0-9a-f]{16}\\.\\d+\\.\\d+$`)),
      ])
      // close: the topic or contest closed, then process.exit() at once; unsub: the subscription closed, then exit
      members[0]!.write(how === "unsub" ? "unsub s\nexit\n" : `${how}\n`)
      members[1]!.write(`${how === "unsub" ? "exit" : how}\n`)
      expect(await Promise.all(members.map((c) => c.proc.exited))).toEqual(how === "throw" ? [1, 1] : [0, 0])
      // all four stayed, for good, before; with a parked subscriber the wake socket did, and with a waiting claim the
      // contest's socket file
      expect(leftovers(name)).toEqual([])
    },
    120_000,
  )
})

describe("the wake sockets of a topic's subscribers, all killed with its last members", () => {
  const wakeFiles = (name: string) =>
    readdirSync(socketDir()).filter((f) =>
      new RegExp(`^slotbus\\.topic\\.${name}\\.[0-9a-f]{16}\\.\\d+\\.\\d+$`).test(f),
    )
  it.each(["node", "bun"] as PeerRuntime[])(
    "go when a process creates the topic again: %s members, kill -9",
    async (runtime) => {
      const name = busName("xw")
      const members = [await topicMember(runtime, name), await topicMember(runtime, name)]
      for (const [i, c] of members.entries()) {
        c.write(`sub s${i} any\n`)
        await c.waitLine(new RegExp(`^subscribed s${i}$`))
      }
      expect(wakeFiles(name).length).toBe(2)
      // stopped first, so neither collects the other's entry as it dies; then SIGKILL: nobody is left to, nor the region
      for (const c of members) c.signal("SIGSTOP")
      for (const c of members) await c.kill()
      const dead = wakeFiles(name)
      expect(dead.length).toBe(2) // no entry names them now: they stayed, for good, before
      // a live subscriber of another topic whose name starts the same way keeps its wake socket
      const neighbour = await Topic.open(`${name}.n`)
      const kept = neighbour.subscribe({ type: "any" })
      // and a stream listener (a bus's, say) whose socket file has a wake socket's name is neither connected to nor
      // unlinked by the look
      const lookalike = `slotbus.topic.${name}.0123456789abcdef.0.1`
      let connections = 0
      const listener = createServer(() => connections++)
      await new Promise<void>((r) => listener.listen(join(socketDir(), lookalike), r))
      const t = await Topic.open(name) // creates the region again
      const sub = t.subscribe({ type: "any" })
      expect(wakeFiles(name).filter((f) => dead.includes(f))).toEqual([])
      expect(wakeFiles(name).length).toBe(2) // its own subscriber's, and the bus's below
      expect(wakeFiles(`${name}.n`).length).toBe(1)
      expect(readdirSync(socketDir())).toContain(lookalike)
      // one connection of ours after it: accepted in order, so a look that had connected would be counted first
      const ours = connect(join(socketDir(), lookalike))
      await until(() => connections > 0, "our own connection accepted")
      expect(connections).toBe(1)
      ours.destroy()
      await new Promise<void>((r) => listener.close(() => r()))
      sub.close()
      kept.close()
      t.close()
      neighbour.close()
    },
    60_000,
  )
})
