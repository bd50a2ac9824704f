// Workers over NATS on this host (docs/PROTOCOL.md §10), beyond what every kind of worker does (answers, errors,
// cancels, timeouts, kill -9, idempotent retries, capacity, streams: test/conformance/endpoint.test.ts): the typed
// RPC, routing between local and remote workers, a worker stopped, sizes over max_payload, and 1,000 requests with
// none lost or doubled. test/nats/hosts.test.ts runs them across two simulated hosts. Needs `nats-server`
// (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import {
  BorrowedResponse,
  PayloadTooLargeError,
  RemoteUnavailableError,
  SlotBus,
  SlotWorker,
  TimeoutError,
  type ListenOptions,
} from "../../src/index.ts"
import { Topic } from "../../src/events/index.ts"
import { bunChild, busName, rejection, spawnWorker, until, type Child } from "../support/helpers.ts"
import { natsPerFile, natsSkipReason } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS tests are skipped: ${skip}`)

const nats = natsPerFile(skip)
const { cleanup } = nats

async function hub(opts: ListenOptions = {}): Promise<SlotBus> {
  const bus = await SlotBus.listen(busName("nats"), { remote: viaNats(nats.url), heartbeatMs: 100, ...opts })
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}
async function remoteWorker(bus: SlotBus, ...flags: string[]): Promise<Child> {
  const w = bunChild("nats/nats-worker.ts", [bus.name, nats.url, ...flags])
  cleanup.push(async () => void (await w.kill()))
  await w.waitLine(/^ready \d+$/, 15_000)
  return w
}
const text = async (bus: SlotBus, path: string, opts = {}) => (await bus.request({ path }, opts)).text()

describe.skipIf(skip !== null)("a worker over NATS", () => {
  test("the typed RPC works over NATS: SlotWorker.expose on the far side, bus.remote() here", async () => {
    const bus = await hub()
    const w = await remoteWorker(bus, "--expose")
    await bus.waitForWorkers(1)
    const api = bus.remote<{ add(a: number, b: number): number; where(): number }>()
    expect(await api.add(2, 40)).toBe(42)
    expect(await api.where()).toBe(w.pid)
  }, 30_000)

  test("bus.call with borrow gets a BorrowedResponse from a remote worker, as from one on this host", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    await bus.waitForWorkers(1)
    const res = await bus.call("abc", { borrow: true })
    expect(res).toBeInstanceOf(BorrowedResponse) // before: the bytes, a Uint8Array
    expect((res as BorrowedResponse).text()).toBe("cba")
    ;(res as BorrowedResponse).release()
  }, 30_000)

  test("a local worker gets the requests while it has a free slot; the remote one takes the overflow", async () => {
    const bus = await hub({ slots: 1 })
    const local = await spawnWorker(bus.name, { delayMs: 100 })
    cleanup.push(async () => void (await local.kill()))
    const remote = await remoteWorker(bus)
    await bus.waitForWorkers(2)
    const one = await bus.request({ path: "/echo" })
    expect(one.headers.get("x-pid")).toBe(String(local.pid)) // nothing else in flight: shared memory
    const both = await Promise.all([1, 2, 3].map(() => bus.request({ path: "/echo" })))
    const pids = both.map((r) => r.headers.get("x-pid"))
    expect(pids).toContain(String(local.pid))
    expect(pids).toContain(String(remote.pid))
  }, 30_000)

  test("a stopped worker (SIGSTOP) times out, and sees the cancel once it runs again", async () => {
    const bus = await hub({ heartbeatMs: 2000 })
    const w = await remoteWorker(bus, "--heartbeat-ms=2000")
    await bus.waitForWorkers(1)
    const held = bus.request({ path: "/hold" }, { timeoutMs: 300 })
    await until(() => bus.workers[0]?.inFlight === 1, "the request is out", 10_000)
    process.kill(w.pid, "SIGSTOP")
    expect(await rejection(held)).toBeInstanceOf(TimeoutError)
    process.kill(w.pid, "SIGCONT")
    await until(async () => (await text(bus, "/aborted")) === "/hold", "the handler aborted", 10_000)
  }, 30_000)

  test("bodies over the server's max_payload are PayloadTooLargeError both ways, and nothing is sent", async () => {
    const bus = await hub()
    await remoteWorker(bus)
    await bus.waitForWorkers(1)
    const big = new Uint8Array(2 * 1024 * 1024)
    expect(await rejection(bus.request({ path: "/echo", body: big }))).toBeInstanceOf(PayloadTooLargeError)
    const reply = await rejection(bus.request({ path: "/big/2000000" }))
    expect(reply).toBeInstanceOf(PayloadTooLargeError)
    // what helps: the transport's limit, or a stream; not the hub's maxBodyBytes (the slot arena's)
    expect((reply as Error).message).toContain("raise its limit (NATS: max_payload), or answer a stream")
    expect((await bus.request({ path: "/big/500000" })).body.length).toBe(500000)
    expect(bus.stats().inFlight).toBe(0)
  }, 30_000)

  test("a request sent to workers killed before their heartbeats lapsed (no responders) waits for the next: no poison", async () => {
    const bus = await hub()
    // slow heartbeats: the hub still lists both workers for seconds after they die
    const [a, b] = [await remoteWorker(bus, "--heartbeat-ms=2000"), await remoteWorker(bus, "--heartbeat-ms=2000")]
    await bus.waitForWorkers(2)
    await Promise.all([a.kill("SIGKILL"), b.kill("SIGKILL")])
    const asked = bus.request({ path: "/echo", body: "once" }, { idempotent: true, timeoutMs: 20_000 })
    // each send comes back "no responders": it reached no worker, so it is not a retry, let alone a poison request
    await until(() => bus.workerCount === 0, "both workers dropped on their no responders", 10_000)
    const c = await remoteWorker(bus)
    expect((await asked).text()).toBe("once")
    expect((await asked).headers.get("x-pid")).toBe(String(c.pid))
    expect(bus.stats().poisonRequests).toBe(0) // before: PoisonRequestError, counted
  }, 30_000)

  test("async handlers (bodies read later, req.reply() filled later) interleaved with answers at once: all right", async () => {
    const bus = await hub({ slots: 1, remotePolicy: "balance" })
    await remoteWorker(bus, "--slots=64")
    await bus.waitForWorkers(1)
    const bodyOf = (i: number) => new Uint8Array(i % 3 === 0 ? 10_000 + i : 20 + i).map((_, k) => (i * 7 + k) & 255)
    const rev = (b: Uint8Array) => b.slice().reverse()
    const jobs = Array.from({ length: 120 }, async (_, i) => {
      const body = bodyOf(i)
      const ms = i % 7
      if (i % 3 === 1) {
        const res = await bus.request({ method: "POST", path: `/reply/${ms}`, body })
        expect(res.status).toBe(201)
        expect(res.headers.get("x-len")).toBe(String(body.length))
        expect(res.body).toEqual(rev(body))
      } else if (i % 3 === 2) expect(await bus.call(body)).toEqual(rev(body))
      else expect((await bus.request({ method: "POST", path: `/later/${ms}`, body })).body).toEqual(body)
    })
    await Promise.all(jobs)
    expect(bus.stats().errors).toBe(0)
  }, 30_000)

  test("1,000 requests across two remote workers: every answer right, none run twice", async () => {
    const bus = await hub({ slots: 1, remotePolicy: "balance" })
    const a = await remoteWorker(bus, "--slots=8")
    const b = await remoteWorker(bus, "--slots=8")
    await bus.waitForWorkers(2)
    const ids = Array.from({ length: 1000 }, (_, i) => `req-${i}`)
    const answers = await Promise.all(ids.map((id) => bus.request({ path: "/id", headers: { "x-id": id } })))
    expect(answers.map((r) => r.text())).toEqual(ids)
    const servedNow = () => [a, b].flatMap((w) => w.lines.filter((l) => l.startsWith("served ")).map((l) => l.slice(7)))
    await until(() => servedNow().length >= 1000, "the workers' lines are read", 10_000)
    await Bun.sleep(100) // a request run twice would print a line more
    const served = servedNow()
    expect(served.length).toBe(1000)
    expect(new Set(served).size).toBe(1000)
    expect(served.filter((l) => a.lines.includes(`served ${l}`)).length).toBeGreaterThan(0) // both took a share
    expect(served.filter((l) => b.lines.includes(`served ${l}`)).length).toBeGreaterThan(0)
    expect(bus.stats().errors).toBe(0)
  }, 60_000)

  test("a worker's host option is the host its hub shows; a bad one is refused before connecting", async () => {
    const bus = await hub()
    const w = await SlotWorker.connect(bus.name, () => "hi", {
      remote: viaNats(nats.url),
      heartbeatMs: 100,
      host: "edge-7 (rack 2)",
    })
    cleanup.push(() => w.close())
    await bus.waitForWorkers(1)
    expect(bus.workers[0]).toMatchObject({ transport: "nats", host: "edge-7 (rack 2)" })
    for (const host of ["", "x".repeat(256), 7])
      expect(
        await rejection(SlotWorker.connect(bus.name, () => "", { remote: viaNats(nats.url), host: host as string })),
      ).toBeInstanceOf(TypeError)
  }, 30_000)

  test('remotePolicy "never" with workers on other hosts only: a request times out saying so', async () => {
    const bus = await hub({ remotePolicy: "never" })
    await remoteWorker(bus)
    await bus.waitForWorkers(1)
    const e = await rejection(bus.request({ path: "/echo" }, { timeoutMs: 300 }))
    expect(e).toBeInstanceOf(TimeoutError)
    expect((e as Error).message).toContain('are all on other hosts, and remotePolicy "never" sends them nothing')
  }, 30_000)

  test("options are checked: remote, remotePolicy and heartbeatMs; the options of before say what they became", async () => {
    expect(() => viaNats(42 as never)).toThrow(/nats\(\) takes a URL string/)
    expect(await rejection(SlotBus.listen(busName("bad"), { remote: 42 as never }))).toBeInstanceOf(TypeError)
    const bare = await rejection(SlotWorker.connect(busName("bad"), () => "", { remote: nats.url as never }))
    expect(String(bare)).toMatch(
      /SlotWorker.connect: remote must be a transport such as nats\(url\) from "slotbus\/nats", got the string/,
    )
    expect(
      await rejection(SlotBus.listen(busName("bad"), { remote: viaNats(nats.url), remotePolicy: "always" as never })),
    ).toBeInstanceOf(TypeError)
    expect(String(await rejection(SlotBus.listen(busName("bad"), { nats: nats.url } as never)))).toContain(
      'SlotBus.listen: the option "nats" is now remote: nats(url), with nats from "slotbus/nats"',
    )
    expect(String(await rejection(SlotBus.listen(busName("bad"), { remote: "balance" as never })))).toContain(
      'the policy is now remotePolicy: "balance"',
    )
    expect(
      await rejection(SlotBus.listen(busName("bad"), { remote: viaNats(nats.url), heartbeatMs: -1 })),
    ).toBeInstanceOf(RangeError)
  }, 30_000)
})

describe("no NATS server at the address", () => {
  test("a bus, a worker and a topic fail to open with RemoteUnavailableError naming the address", async () => {
    const remote = viaNats("nats://127.0.0.1:1") // nothing listens on port 1
    const opens = [
      () => SlotBus.listen(busName("gone"), { remote }),
      () => SlotWorker.connect(busName("gone"), () => "", { remote }),
      () => Topic.open(busName("gone"), { remote }),
    ]
    for (const open of opens) {
      const e = await rejection(open())
      expect(e).toBeInstanceOf(RemoteUnavailableError)
      expect(String(e)).toContain("cannot connect to the NATS server at nats://127.0.0.1:1")
      expect(String(e)).toContain("no NATS server answers at that address")
    }
  }, 30_000)
})

describe.skipIf(skip !== null)("discovery over NATS", () => {
  test("a worker answers the NATS services API ($SRV.PING, INFO, STATS) as a service named after its bus", async () => {
    const bus = await hub()
    const w = await remoteWorker(bus)
    await bus.waitForWorkers(1)
    await bus.request({ path: "/echo" })
    await rejection(bus.request({ path: "/throw" }))
    const { connect } = await import("@nats-io/transport-node")
    const nc = await connect({ servers: nats.url })
    cleanup.push(() => nc.close())
    const service = `slotbus-${bus.name}`
    const ask = async (subject: string) =>
      (await nc.request(subject, "", { timeout: 5000 })).json<Record<string, unknown>>()
    const ping = await ask(`$SRV.PING.${service}`)
    expect(ping).toMatchObject({ type: "io.nats.micro.v1.ping_response", name: service, version: "1.0.0" })
    expect(ping.metadata).toMatchObject({ bus: bus.name, pid: String(w.pid) })
    const info = await ask(`$SRV.INFO.${service}.${ping.id}`)
    expect(info.type).toBe("io.nats.micro.v1.info_response")
    expect((info.endpoints as { subject: string }[])[0]!.subject).toBe(`slotbus.${bus.name}.req.${ping.id}`)
    const stats = await ask(`$SRV.STATS.${service}`)
    expect(stats.type).toBe("io.nats.micro.v1.stats_response")
    expect((stats.endpoints as { num_requests: number; num_errors: number }[])[0]).toMatchObject({
      num_requests: 2,
      num_errors: 1,
    })
  }, 30_000)
})
