// Workers on a second host (a network namespace of its own, test/support/hosts.ts: no shared memory, no abstract
// sockets with this one), each host with its own nats-server, clustered. Requests, the HTTP hub, a worker killed,
// a nats-server killed (the worker fails over to the other), the network between the hosts cut, and 1,000 requests.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { join } from "node:path"
import { SlotBus, WorkerGoneError } from "../../src/index.ts"
import { createHub, type HubHealth } from "../../src/http/index.ts"
import { busName, FIXTURES, rejection, until, type Child } from "../support/helpers.ts"
import { hostsSkipReason, openHosts, type Hosts } from "../support/hosts.ts"
import { startHubProcess } from "../support/http/http.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = hostsSkipReason()
if (skip) console.warn(`the two-host NATS tests are skipped: ${skip}`)

let hosts: Hosts
beforeAll(async () => {
  if (!skip) hosts = await openHosts()
}, 60_000)
afterAll(async () => {
  await hosts?.close()
})

/** A worker process on host B serving `bus` through host B's nats-server (then host A's, when B's is gone). */
async function workerOnB(bus: string, ...flags: string[]): Promise<Child> {
  // host B's server first, host A's when it is gone: in this order (nats.js shuffles servers unless told not to)
  const urls = JSON.stringify({ servers: [hosts.b.natsUrl, hosts.a.natsUrl], noRandomize: true })
  const w = hosts.spawnOnB([process.execPath, join(FIXTURES, "nats/nats-worker.ts"), bus, urls, ...flags])
  await w.waitLine(/^ready \d+$/, 20_000)
  return w
}

describe.skipIf(skip !== null)("a worker on another host", () => {
  test("serves the hub through the cluster; it cannot reach the hub's shared memory", async () => {
    await using bus = await SlotBus.listen(busName("hosts"), { remote: viaNats(hosts.a.natsUrl), heartbeatMs: 100 })
    const w = await workerOnB(bus.name)
    try {
      await bus.waitForWorkers(1, { timeoutMs: 10_000 })
      expect(bus.workers[0]).toMatchObject({ transport: "nats", pid: w.pid })
      const res = await bus.request({ method: "POST", path: "/echo", body: "across" })
      expect(res.text()).toBe("across")
      expect(res.headers.get("x-pid")).toBe(String(w.pid))
      // host B has no way to the bus over shared memory: an attach from there finds no hub
      const probe = hosts.spawnOnB([process.execPath, join(FIXTURES, "native/connect-probe.ts"), bus.name])
      await probe.exited
      expect(probe.lines.join("\n")).toContain("HubNotFoundError")
    } finally {
      await w.kill()
    }
  }, 60_000)

  test("1,000 requests across the hosts: every answer right, none run twice", async () => {
    await using bus = await SlotBus.listen(busName("hosts"), { remote: viaNats(hosts.a.natsUrl), heartbeatMs: 100 })
    const w = await workerOnB(bus.name, "--slots=16")
    try {
      await bus.waitForWorkers(1, { timeoutMs: 10_000 })
      const ids = Array.from({ length: 1000 }, (_, i) => `x-${i}`)
      const got = await Promise.all(ids.map((id) => bus.request({ path: "/id", headers: { "x-id": id } })))
      expect(got.map((r) => r.text())).toEqual(ids)
      await until(() => w.lines.filter((l) => l.startsWith("served ")).length >= 1000, "the lines are read", 10_000)
      await Bun.sleep(100)
      const served = w.lines.filter((l) => l.startsWith("served "))
      expect(served.length).toBe(1000)
      expect(new Set(served).size).toBe(1000)
    } finally {
      await w.kill()
    }
  }, 60_000)

  test("a worker killed with SIGKILL on host B fails its requests with WorkerGoneError", async () => {
    await using bus = await SlotBus.listen(busName("hosts"), {
      remote: viaNats(hosts.a.natsUrl),
      heartbeatMs: 100,
      timeoutMs: 60_000,
    })
    const w = await workerOnB(bus.name)
    try {
      await bus.waitForWorkers(1, { timeoutMs: 10_000 })
      const held = bus.request({ path: "/hold" })
      await until(() => bus.workers[0]?.inFlight === 1, "the request is out", 10_000)
      process.kill(w.pid, "SIGKILL")
      expect(await rejection(held)).toBeInstanceOf(WorkerGoneError)
    } finally {
      await w.kill()
    }
  }, 60_000)

  test("the network between the hosts cut: the worker is counted gone within its heartbeats; mended, it serves again", async () => {
    await using bus = await SlotBus.listen(busName("hosts"), {
      remote: viaNats(hosts.a.natsUrl),
      heartbeatMs: 200,
      timeoutMs: 60_000,
    })
    const w = await workerOnB(bus.name, "--heartbeat-ms=200")
    try {
      await bus.waitForWorkers(1, { timeoutMs: 10_000 })
      const held = bus.request({ path: "/hold" })
      await until(() => bus.workers[0]?.inFlight === 1, "the request is out", 10_000)
      spawnSync("ip", ["link", "set", hosts.veth, "down"])
      expect(await rejection(held)).toBeInstanceOf(WorkerGoneError)
      expect(bus.workerCount).toBe(0)
      spawnSync("ip", ["link", "set", hosts.veth, "up"])
      await bus.waitForWorkers(1, { timeoutMs: 30_000 })
      expect((await bus.request({ path: "/echo", body: "back" })).text()).toBe("back")
    } finally {
      spawnSync("ip", ["link", "set", hosts.veth, "up"])
      await w.kill()
    }
  }, 90_000)

  test("host B's nats-server killed: the worker reconnects through host A's and serves again", async () => {
    await using bus = await SlotBus.listen(busName("hosts"), { remote: viaNats(hosts.a.natsUrl), heartbeatMs: 200 })
    const w = await workerOnB(bus.name, "--heartbeat-ms=200")
    try {
      await bus.waitForWorkers(1, { timeoutMs: 10_000 })
      const clients = async (h: "a" | "b") =>
        ((await (await fetch(`${hosts[h].monitorUrl}/connz`)).json()) as { num_connections: number }).num_connections
      expect(await clients("b")).toBe(1) // the worker, through host B's server
      await hosts.killNats("b")
      await until(
        async () =>
          (await bus.request({ path: "/echo", body: "again" }, { timeoutMs: 2000 }).then(
            (r) => r.text() === "again",
            () => false,
          )) === true,
        "a request is answered through host A's server",
        30_000,
        200,
      )
    } finally {
      await hosts.restartNats("b")
      await w.kill()
    }
  }, 90_000)

  test("the HTTP hub on host A routes to an HTTP worker on host B", async () => {
    await using hub = await createHub({
      port: 0,
      hostname: hosts.a.addr,
      nats: hosts.a.natsUrl,
      quiet: true,
      token: "t0k-across-two-hosts",
    })
    const w = hosts.spawnOnB([
      process.execPath,
      join(FIXTURES, "http/http-worker.ts"),
      `http://${hosts.a.addr}:${hub.port}`,
      "shop",
      "--token=t0k-across-two-hosts",
      `--nats=${hosts.b.natsUrl}`,
    ])
    try {
      await w.waitLine(/^ready \d+$/, 20_000)
      const res = await fetch(`http://${hosts.a.addr}:${hub.port}/items/42`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ id: "42" })
    } finally {
      await w.kill()
    }
  }, 60_000)

  test("an HTTP worker over NATS on host B rejoins the hub restarted on host A after kill -9, and serves again", async () => {
    const dir = mkdtempSync(join(hosts.dir, "hub-restart-"))
    const tokenFile = join(dir, "hub.token")
    const hubArgs = (port: string) => ["--host", hosts.a.addr, "--port", port, "--token-file", tokenFile]
    const first = startHubProcess([...hubArgs("0"), "--nats", hosts.a.natsUrl])
    let second: Child | undefined
    let w: Child | undefined
    try {
      const [, hubUrl] = (await first.waitLine(/^slotbus hub listening on (http:\S+)$/, 20_000))!
      const port = new URL(hubUrl!).port
      const url = `http://${hosts.a.addr}:${port}`
      w = hosts.spawnOnB([
        process.execPath,
        join(FIXTURES, "http/http-worker.ts"),
        url,
        "shop",
        `--token-file=${tokenFile}`,
        `--nats=${hosts.b.natsUrl}`,
      ])
      await w.waitLine(/^ready \d+$/, 20_000)
      expect((await fetch(`${url}/items/1`)).status).toBe(200)
      await first.kill() // kill -9: the worker on host B hears no goodbye, only the hub's announcements stopping
      second = startHubProcess([...hubArgs(port), "--nats", hosts.a.natsUrl])
      await second.waitLine(/^slotbus hub listening on /, 20_000)
      await until(
        async () => {
          const h = (await (await fetch(`${url}/health`)).json()) as HubHealth
          return h.workers.some((x) => x.pid === w!.pid && x.transport === "nats")
        },
        "the worker on host B has rejoined the new hub over NATS",
        30_000,
        100,
      )
      const res = await fetch(`${url}/items/2`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ id: "2" })
    } finally {
      await first.kill()
      await second?.kill()
      await w?.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)
})
