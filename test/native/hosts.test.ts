// test/support/hosts.ts, the two simulated hosts the tests of workers across hosts (issue 21, PROTOCOL §10) run
// on: NATS crosses from host B to host A through the cluster, slotbus's own sockets do not, a client on B fails
// over to A's server when B's dies, and nothing outlives close() — nor a test process that dies without it.
// Needs root, nats-server and iproute2; skipped elsewhere with the command that fixes it.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { SlotBus } from "../../src/index.ts"
import { alive, bunChild, busName, FIXTURES, findTool, run, stopAll, until } from "../support/helpers.ts"
import { type Hosts, hostsSkipReason, openHosts, removeStaleHosts } from "../support/hosts.ts"
import { sayWhySkipped } from "../support/tools.ts"

const skipReason = hostsSkipReason()
sayWhySkipped("the two-host tests (test/support/hosts.ts)", skipReason)

const PEER = join(FIXTURES, "native/nats-peer.ts")
const PROBE = join(FIXTURES, "native/connect-probe.ts")
const bun = process.execPath

/** What is left on this machine of the hosts named `name` (netns, veth, processes, temporary folder). */
async function traces(name: string, veth: string, dir: string): Promise<string[]> {
  const found: string[] = []
  const netns = await run([findTool("ip")!, "netns", "list"])
  if (netns.stdout.split("\n").some((l) => l.split(" ")[0] === name)) found.push(`netns ${name}`)
  if ((await run([findTool("ip")!, "link", "show", veth])).code === 0) found.push(`link ${veth}`)
  for (const p of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    let cmd = ""
    try {
      cmd = readFileSync(`/proc/${p}/cmdline`, "utf8").replaceAll("\0", " ")
    } catch {
      continue
    }
    if (cmd.includes(`${name}-`) || cmd.includes(dir)) found.push(`process ${p}: ${cmd.slice(0, 120)}`)
  }
  if (existsSync(dir)) found.push(`folder ${dir}`)
  return found
}

const leftFor = (h: Hosts) => traces(h.name, h.veth, h.dir)

describe.skipIf(skipReason !== null)("two hosts: host B in a netns of its own, a nats-server on each", () => {
  let hosts: Hosts
  let nc: NatsConnection // the test's client, on host A, connected to host A's server

  beforeAll(async () => {
    hosts = await openHosts()
    nc = await connect({ servers: hosts.a.natsUrl })
  }, 60_000)
  afterEach(stopAll)
  afterAll(async () => {
    await nc?.close()
    await hosts?.close()
    removeStaleHosts() // the crash tests' leftovers, had a check failed before they were removed
  })

  test("a message published by a process on host B, to host B's server, reaches a subscriber on host A", async () => {
    expect(hosts.a.addr).not.toBe(hosts.b.addr)
    const sub = nc.subscribe("hosts.a")
    await nc.flush()
    const pub = hosts.spawnOnB([bun, PEER, "pub", hosts.b.natsUrl, "hosts.a", "from host B"])
    let got = ""
    for await (const m of sub) {
      got = m.string()
      nc.publish("hosts.a.ack")
      break
    }
    expect(got).toBe("from host B")
    await pub.waitLine(/^acked$/)
    expect(await pub.exited).toBe(0)
  }, 60_000)

  test("host B reaches none of host A's socket files (no hub) nor its /dev/shm", async () => {
    const bus = await SlotBus.listen(busName("hosts"))
    const mark = `hosts-test-${process.pid}` // no "slotbus" in it: scripts/leftovers.ts must not count it
    writeFileSync(`/dev/shm/${mark}`, "host A")
    try {
      // On host A the probe connects: it works, and the hub is there.
      const here = await run([bun, PROBE, bus.name])
      expect(here.stdout.trim()).toBe("connected")

      const there = hosts.spawnOnB([bun, PROBE, bus.name])
      expect(await there.exited).toBe(0)
      expect(there.lines[0]).toStartWith("error HubNotFoundError")

      // Host B has a socket directory of its own (docs/PROTOCOL.md §1.1): host A's hub's file is not in it.
      const unixA = readFileSync("/proc/net/unix", "utf8")
      expect(unixA).toContain(`/slotbus.${bus.name}`)
      const dirB = hosts.spawnOnB(["sh", "-c", 'echo "$SLOTBUS_SOCKET_DIR" && ls -a "$SLOTBUS_SOCKET_DIR"'])
      expect(await dirB.exited).toBe(0)
      expect(dirB.lines[0]).toStartWith(hosts.dir)
      expect(dirB.lines).not.toContain(`slotbus.${bus.name}`)

      // /dev/shm: host B's is its own, both ways.
      const shmB = hosts.spawnOnB(["sh", "-c", `touch /dev/shm/${mark}-b && ls -a /dev/shm`])
      expect(await shmB.exited).toBe(0)
      expect(shmB.lines).toContain(`${mark}-b`)
      expect(shmB.lines).not.toContain(mark)
      expect(existsSync(`/dev/shm/${mark}-b`)).toBe(false)
    } finally {
      rmSync(`/dev/shm/${mark}`, { force: true })
      await bus.close({ drain: false })
    }
  }, 60_000)

  test("kill -9 of host B's nats-server: a client on host B given both servers moves to host A's, and requests flow again", async () => {
    const responder = hosts.spawnOnB([bun, PEER, "responder", `${hosts.b.natsUrl},${hosts.a.natsUrl}`, "hosts.svc"])
    await responder.waitLine(new RegExp(`^connected ${hosts.b.serverName}$`))

    /** Requests from host A until one is answered (the responder's interest crosses the route a moment after it
     * subscribes, or after it reconnects), bounded. */
    const answer = async (body: string) => {
      let reply = ""
      await until(
        async () => {
          try {
            reply = (await nc.request("hosts.svc", body, { timeout: 500 })).string()
            return true
          } catch {
            return false // no responders yet, or the request was lost with the server
          }
        },
        `a request from host A is answered by the responder on host B (${responder.output})`,
        20_000,
        50,
      )
      return reply
    }

    expect(await answer("one")).toBe(`one@${hosts.b.serverName}`)

    await hosts.killNats("b")
    expect(hosts.natsRunning("b")).toBe(false)
    await responder.waitLine(new RegExp(`^reconnected ${hosts.a.serverName}$`), 20_000)
    expect(await answer("two")).toBe(`two@${hosts.a.serverName}`)

    // Back: host B's server rejoins the cluster, and what is published to it reaches host A again.
    await hosts.restartNats("b")
    expect(hosts.natsRunning("b")).toBe(true)
    const sub = nc.subscribe("hosts.back")
    await nc.flush()
    const pub = hosts.spawnOnB([bun, PEER, "pub", hosts.b.natsUrl, "hosts.back", "after the restart"])
    for await (const m of sub) {
      expect(m.string()).toBe("after the restart")
      nc.publish("hosts.back.ack")
      break
    }
    expect(await pub.exited).toBe(0)
  }, 90_000)

  test("with JetStream both servers know the leader; close() leaves no netns, veth, process or folder behind, twice", async () => {
    const h = await openHosts({ jetstream: true })
    let sleeper: ReturnType<Hosts["spawnOnB"]> | undefined
    try {
      const jsz = (await (await fetch(`${h.b.monitorUrl}/jsz`)).json()) as { meta_cluster?: { leader?: string } }
      expect([h.a.serverName, h.b.serverName]).toContain(jsz.meta_cluster?.leader ?? "none")
      sleeper = h.spawnOnB(["sleep", "600"])
      expect((await leftFor(h)).length).toBeGreaterThan(3) // the check below can see them
    } finally {
      await h.close()
    }
    await h.close() // idempotent
    expect(await leftFor(h)).toEqual([])
    expect(alive(sleeper!.pid)).toBe(false)
    expect(() => h.spawnOnB(["true"])).toThrow(/closed/)
  }, 60_000)

  test("openHosts that fails half-way (its nats-server exits at once) rejects saying so and leaves nothing", async () => {
    const before = readdirSync("/run/netns").filter((n) => n.startsWith(`slotbus-${process.pid}-`))
    let error: unknown
    await openHosts({ natsServer: "/bin/false", timeoutMs: 5000 }).catch((e: unknown) => (error = e))
    expect(String(error)).toContain("host A's nats-server exited (1)")
    expect(readdirSync("/run/netns").filter((n) => n.startsWith(`slotbus-${process.pid}-`))).toEqual(before)
    expect(readdirSync("/sys/class/net").filter((l) => l.startsWith(`sb${process.pid}-`))).toEqual([hosts.veth])
  }, 60_000)

  test("a test process that throws without closing: the exit handler removes its hosts", async () => {
    const child = bunChild("native/hosts-crash.ts", ["throw"])
    const [, netns, veth, dir] = await child.waitLine(/^open (\S+) (\S+) (\S+)$/, 60_000)
    expect(await child.exited).not.toBe(0)
    expect(await traces(netns!, veth!, dir!)).toEqual([])
  }, 60_000)

  test("a test process killed with kill -9 leaves its hosts; removeStaleHosts (run by openHosts) removes them", async () => {
    const child = bunChild("native/hosts-crash.ts", ["wait"])
    const [, netns, veth, dir] = await child.waitLine(/^open (\S+) (\S+) (\S+)$/, 60_000)
    await child.kill()
    const left = await traces(netns!, veth!, dir!)
    expect(left).toContain(`netns ${netns}`)
    expect(left.filter((l) => l.includes("nats-server")).length).toBe(2) // orphans now, both still running
    const removed = removeStaleHosts()
    expect(removed).toContain(`netns ${netns}`)
    // its veth goes too: removed by the call, or already by the kernel with the netns that held its peer (which
    // of the two depends on how soon the kernel's namespace cleanup runs), so the end state is what is checked
    await until(async () => (await traces(netns!, veth!, dir!)).length === 0, "the killed process's hosts are gone")
  }, 60_000)
})
