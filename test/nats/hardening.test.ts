// What a party on the NATS server can do to a bus (docs/PROTOCOL.md §10.1, §10.6), tried with raw NATS clients:
// answers that do not read, answers forged by a client allowed only `_INBOX.>`, floods of made-up hubs, a forged
// presence of a live hub, two requests on one reply subject, garbage RPC replies, and how fast a dead worker is
// counted gone. Needs `nats-server` (apt-get install -y nats-server).
import { describe, expect, test } from "bun:test"
import { connect, type NatsConnection } from "@nats-io/transport-node"
import {
  NameInUseError,
  ProtocolError,
  SlotBus,
  SlotWorker,
  TimeoutError,
  WorkerGoneError,
  type ListenOptions,
  type WorkerEvent,
} from "../../src/index.ts"
import { writePrefix } from "../../src/nats/wire.ts"
import { bunChild, busName, rejection, until } from "../support/helpers.ts"
import { hostileNatsWorker, natsPerFile, natsSkipReason, startNats } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const skip = natsSkipReason()
if (skip) console.warn(`the NATS hardening tests are skipped: ${skip}`)

const nats = natsPerFile(skip)
const { cleanup } = nats

async function hub(opts: ListenOptions = {}, url: Server | NatsConnection = nats.url): Promise<SlotBus> {
  const bus = await SlotBus.listen(busName("nats-hard"), { remote: viaNats(url), heartbeatMs: 100, ...opts })
  cleanup.push(() => bus.close({ drain: false }))
  return bus
}
async function client(url: Server = nats.url): Promise<NatsConnection> {
  const nc = await connect(typeof url === "string" ? { servers: url } : url)
  cleanup.push(() => nc.close())
  return nc
}
async function worker(name: string, handler: Parameters<typeof SlotWorker.connect>[1], url: Server = nats.url) {
  const w = await SlotWorker.connect(name, handler, { remote: viaNats(url), heartbeatMs: 100 })
  cleanup.push(() => w.close())
  return w
}
const enc = new TextEncoder()
const text = (b: Uint8Array) => new TextDecoder().decode(b)
/** An answer as §10.2 lays it out: the prefix, then `rest` (head, padding, body). */
function answer(flags: number, status: number, headLen: number, rest: Uint8Array | string = "") {
  const bytes = typeof rest === "string" ? enc.encode(rest) : rest
  const out = new Uint8Array(16 + bytes.length)
  writePrefix(out, flags, status, headLen)
  out.set(bytes, 16)
  return out
}
/** A URL, or connection options (a user and password). */
type Server = string | { servers: string; user: string; pass: string }
const root = (bus: string) => `slotbus.${bus.replaceAll(".", "~")}`

describe.skipIf(skip !== null)("a hub over NATS against answers that do not read", () => {
  test("an answer it cannot read fails that call with WorkerGoneError, is counted, and the reader goes on: the next answer is taken and a worker that starts later joins", async () => {
    const bus = await hub()
    const bad: [string, Uint8Array][] = [
      ["a head length of 2^31", answer(0, 200, 2 ** 31, "abcdefgh")],
      ["a head length of 2^31 - 4", answer(0, 200, 2 ** 31 - 4, "abcdefgh")],
      ["a head length of 2^32 - 1", answer(0, 200, 2 ** 32 - 1)],
      ["an error answer with a head length of 2^31", answer(1, 500, 2 ** 31, "abcdefgh")],
      ["a head past the end", answer(0, 200, 9, "abcdefgh")],
      ["too short", new Uint8Array([1, 0, 0])],
      ["version 2", (() => ((a) => ((a[0] = 2), a))(answer(0, 200, 0)))()],
      ["unknown flags", answer(0x40, 200, 0)],
    ]
    let next: Uint8Array | null = null
    const w = await hostileNatsWorker(nats.url, bus.name, (reply, nc) =>
      nc.publish(reply, next ?? answer(0, 200, 0, "good")),
    )
    cleanup.push(() => w.stop())
    await bus.waitForWorkers(1)
    for (const [what, bytes] of bad) {
      next = bytes
      const before = bus.stats().rejectedMessages
      const err = await rejection(bus.request({ path: "/x" }, { timeoutMs: 5000 }))
      expect([what, err]).toEqual([what, expect.any(WorkerGoneError)])
      expect(bus.stats().rejectedMessages).toBe(before + 1)
      next = null
      expect(text(await bus.call("x", { timeoutMs: 5000 }))).toBe("good") // the hub's reader still reads
    }
    await w.stop()
    await until(() => bus.workerCount === 0, "the hostile worker left")
    await worker(bus.name, (req) => req.text().toUpperCase())
    await bus.waitForWorkers(1, 5000)
    expect(text(await bus.call("real", { timeoutMs: 5000 }))).toBe("REAL")
  }, 60_000)

  test("a worker's host goes into errors with its control characters escaped; SlotWorker.connect refuses them", async () => {
    const bus = await hub()
    const w = await hostileNatsWorker(nats.url, bus.name, () => {}, "evil", "h\x1b[31m\nx") // it answers nothing
    cleanup.push(() => w.stop())
    await bus.waitForWorkers(1)
    const held = rejection(bus.request({ path: "/x" }, { timeoutMs: 5000 }))
    await until(() => bus.stats().inFlight === 1, "the request is out")
    await w.stop() // it says it leaves, and goes: the request fails at its silence naming the worker, pid and host
    const err = await held
    expect(err).toBeInstanceOf(WorkerGoneError)
    expect((err as Error).message).toContain("(pid 1 on h")
    // before: the escape and the newline as they were
    for (const c of ["\x1b", "\n"]) expect((err as Error).message).not.toContain(c)
    const bad = await rejection(SlotWorker.connect(bus.name, () => "", { remote: viaNats(nats.url), host: "a\nb" }))
    expect(bad).toBeInstanceOf(TypeError)
  }, 30_000)

  test("a typed RPC reply that does not decode rejects with ProtocolError, not the decoder's own error", async () => {
    const bus = await hub()
    // §6.1's statuses: a JSON result, a CBOR result (1, then bytes after it), a thrown JSON value, the list of methods
    const replies = [answer(0, 720, 0, "{not json"), answer(0, 724, 0, "\x01\x02\x03"), answer(0, 730, 0, "{")]
    replies.push(answer(0, 744, 0, '{"a":1}'))
    let i = 0
    const w = await hostileNatsWorker(nats.url, bus.name, (reply, nc) => nc.publish(reply, replies[i++]!))
    cleanup.push(() => w.stop())
    await bus.waitForWorkers(1)
    for (let k = 0; k < replies.length; k++) {
      const err = await rejection(bus.invoke("f", [], { timeoutMs: 5000 }))
      expect(err).toBeInstanceOf(ProtocolError)
      expect((err as Error).message).toContain("does not decode as an RPC reply")
    }
  }, 30_000)
})

describe.skipIf(skip !== null)("who may answer (§10.6)", () => {
  test("a client allowed only _INBOX.> sees no answer and forges none; one that may publish on slotbus.<bus>.re.> cannot guess a reply subject", async () => {
    const server = await startNats({
      config: `authorization {
        users = [
          { user: bus, password: bus }
          { user: inbox, password: inbox, permissions: { publish: "_INBOX.>", subscribe: "_INBOX.>" } }
          { user: re, password: re, permissions: { publish: "slotbus.*.re.>", subscribe: ["slotbus.*.hub", "_INBOX.>"] } }
        ]
      }`,
    })
    cleanup.push(async () => void (await server.server.kill()))
    const as = (user: string) => ({ servers: server.url, user, pass: user })
    const bus = await hub({}, as("bus"))
    await worker(bus.name, async (req) => (await Bun.sleep(20), `real ${await req.text()}`), as("bus"))
    await bus.waitForWorkers(1, 5000)

    // The first attacker forges answers for the next reply subjects after any it sees (the old `_INBOX.slotbus.
    // <hub>.<n>` made that work: 20 of 20); the second knows the hub's id from its announcements and guesses.
    const inbox = await client(as("inbox"))
    let seen = 0
    let forged = 0
    inbox.subscribe("_INBOX.>", {
      callback: (_, msg) => {
        seen++
        const m = /^(_INBOX\.slotbus\.\w+)\.(\d+)$/.exec(msg.subject)
        if (!m) return
        const forge = () => {
          if (inbox.isClosed()) return
          for (let n = Number(m[2]) + 1; n <= Number(m[2]) + 5; n++)
            inbox.publish(`${m[1]}.${n}`, answer(0, 0, 0, "forged"))
          forged++
        }
        for (let t = 0; t < 40; t++) setTimeout(forge, t)
      },
    })
    const re = await client(as("re"))
    const hubs: string[] = []
    re.subscribe(`${root(bus.name)}.hub`, { callback: (_, msg) => void hubs.push(JSON.parse(msg.string()).hub) })
    await until(() => hubs.length > 0, "the hub's id heard")
    const guess = setInterval(() => {
      for (let n = 1; n <= 25; n++)
        for (const key of ["", "0", "x", hubs[0]!])
          re.publish(`${root(bus.name)}.re.${hubs[0]}.${key || "k"}.${n}`, answer(0, 0, 0, "forged"))
    }, 2)
    cleanup.push(async () => clearInterval(guess))
    const got: string[] = []
    for (let i = 0; i < 20; i++) got.push(text(await bus.call(`${i}`, { timeoutMs: 5000 })))
    expect(got).toEqual(Array.from({ length: 20 }, (_, i) => `real ${i}`))
    expect(seen).toBe(0)
    expect(forged).toBe(0)
  }, 30_000)
})

describe.skipIf(skip !== null)("a worker over NATS against forged hubs", () => {
  test("50,000 made-up hubs: the worker answers with a presence at most once per 100 ms, refuses bad ids, and still serves", async () => {
    const bus = await hub()
    const w = await worker(bus.name, (req) => req.text())
    await bus.waitForWorkers(1, 5000)
    const nc = await client()
    let presences = 0
    nc.subscribe(`${root(bus.name)}.hb`, { callback: () => void presences++ })
    await nc.flush()
    const start = performance.now()
    for (let i = 0; i < 50_000; i++)
      nc.publish(`${root(bus.name)}.hub`, JSON.stringify({ v: 1, hub: `fake${i}`, heartbeatMs: 1e15 }))
    for (const hub of ["bad id", "x".repeat(65), ""])
      nc.publish(`${root(bus.name)}.hub`, JSON.stringify({ v: 1, hub, heartbeatMs: 100 }))
    nc.publish(`${root(bus.name)}.hub`, JSON.stringify({ v: 1, hub: "nan", heartbeatMs: "100" }))
    await nc.flush()
    expect(text(await bus.call("still", { timeoutMs: 5000 }))).toBe("still")
    const elapsed = performance.now() - start
    // its own heartbeats (one per 100 ms) and at most one answer to new hubs per 100 ms; then some slack
    expect(presences).toBeLessThanOrEqual(2 * Math.ceil(elapsed / 100) + 4)
    const stats = await nc.request(`$SRV.STATS.slotbus-${bus.name.replace(/[^A-Za-z0-9_-]/g, "_")}`, "", {
      timeout: 2000,
    })
    expect(JSON.parse(stats.string()).endpoints[0].data.rejected).toBe(4)
    expect(w.connected).toBe(true)
  }, 30_000)

  test("a forged presence of a live hub with heartbeatMs 1 does not make the worker give up that hub's requests", async () => {
    // patience of 2 s each way (4 heartbeats): a nats-server starved for a moment on a loaded machine is no failure
    const bus = await hub({ heartbeatMs: 500 })
    let aborted = 0
    await worker(bus.name, async (req) => {
      await Bun.sleep(1500)
      if (req.signal.aborted) aborted++
      return "done"
    })
    await bus.waitForWorkers(1, 5000)
    const nc = await client()
    let hubId = ""
    nc.subscribe(`${root(bus.name)}.hub`, {
      callback: (_, msg) => {
        const p = JSON.parse(msg.string())
        if (p.heartbeatMs === 500) hubId = p.hub
      },
    })
    await until(() => hubId !== "", "the hub's id heard")
    const call = bus.call("x", { timeoutMs: 10_000 })
    const forge = setInterval(
      () => nc.publish(`${root(bus.name)}.hub`, JSON.stringify({ v: 1, hub: hubId, heartbeatMs: 1 })),
      5,
    )
    cleanup.push(async () => clearInterval(forge))
    expect(text(await call)).toBe("done")
    expect(aborted).toBe(0)
  }, 30_000)

  test("a second request on a reply subject still running is dropped and counted: the cancel reaches the first", async () => {
    const name = busName("nats-dup")
    const seen: string[] = []
    const aborted: string[] = []
    await worker(name, async (req) => {
      const body = await req.text()
      seen.push(body)
      await new Promise((resolve) => req.signal.addEventListener("abort", resolve))
      aborted.push(body)
      return body
    })
    const nc = await client()
    const workers: string[] = []
    nc.subscribe(`${root(name)}.hb`, { callback: (_, msg) => void workers.push(JSON.parse(msg.string()).worker) })
    nc.publish(`${root(name)}.hub`, JSON.stringify({ v: 1, hub: "tester", heartbeatMs: 100 }))
    await until(() => workers.length > 0, "the worker's presence")
    const reply = `${root(name)}.re.tester.k.1`
    const req = (body: string) => {
      const out = new Uint8Array(16 + body.length)
      writePrefix(out, 0, 0, 5000)
      out.set(enc.encode(body), 16)
      return out
    }
    nc.publish(`${root(name)}.req.${workers[0]}`, req("first"), { reply })
    await until(() => seen.length === 1, "the first request runs")
    nc.publish(`${root(name)}.req.${workers[0]}`, req("second"), { reply })
    await nc.flush()
    nc.publish(`${root(name)}.cancel.${workers[0]}`, reply)
    await until(() => aborted.length === 1, "the cancel arrived")
    expect(aborted).toEqual(["first"])
    expect(seen).toEqual(["first"])
  }, 30_000)
})

describe.skipIf(skip !== null)("death detection (§10.3)", () => {
  test("peerTimeoutMs reaches the detector: with 400 ms a killed worker is counted gone; with 60 s it is still listed when the default 2 s is long past", async () => {
    for (const peerTimeoutMs of [400, 60_000]) {
      const bus = await hub({ peerTimeoutMs })
      const w = bunChild("nats/nats-worker.ts", [bus.name, nats.url])
      cleanup.push(async () => void (await w.kill()))
      await w.waitLine(/^ready \d+$/, 15_000)
      await bus.waitForWorkers(1, 5000)
      const events: WorkerEvent[] = []
      bus.onWorker((e) => events.push(e))
      process.kill(w.pid, "SIGKILL")
      if (peerTimeoutMs === 400) await until(() => events.some((e) => e.type === "leave"), "counted gone", 5000)
      else {
        await Bun.sleep(3000)
        expect(bus.workerCount).toBe(1)
      }
    }
  }, 30_000)

  test("a worker that refuses requests as it leaves (503): each waits in the queue, idempotent or not, for the next worker within its timeoutMs", async () => {
    const bus = await hub()
    let refused = 0
    const w = await hostileNatsWorker(nats.url, bus.name, (reply, nc) => {
      w.say("leaving") // the requests crossed its leaving: refused unrun (§10.3)
      refused++
      nc.publish(reply, answer(1, 503, 0, "the worker is leaving"))
    })
    cleanup.push(() => w.stop())
    await bus.waitForWorkers(1)
    const again = bus.request({ method: "POST", path: "/x", body: "again" }, { idempotent: true, timeoutMs: 10_000 })
    const once = bus.request({ method: "POST", path: "/x", body: "once" }, { timeoutMs: 10_000 })
    const late = rejection(bus.request({ method: "POST", path: "/x", body: "late" }, { timeoutMs: 1000 }))
    // with no other worker it waits as a request sent to none does, and fails so at its timeout
    const err = await late
    expect(err).toBeInstanceOf(TimeoutError) // before: WorkerGoneError, "is leaving and did not run the request"
    expect((err as Error).message).toContain("timed out after 1000ms: 0 workers connected")
    expect(bus.workerCount).toBe(0) // the leaving worker is gone once nothing of it is in flight
    await worker(bus.name, (req) => req.text().toUpperCase())
    expect((await once).text()).toBe("ONCE") // before: WorkerGoneError at once
    expect((await again).text()).toBe("AGAIN") // before: a 500 RemoteError, "the worker is leaving"
    expect(refused).toBe(3) // each refused once: nothing is sent again to a worker that said it is leaving
  }, 30_000)

  test("a worker's close() lets what it runs finish and refuses what comes meanwhile (503), then leaves", async () => {
    const bus = await hub()
    let release: (() => void) | null = null
    const w = await worker(bus.name, () => new Promise<string>((r) => (release = () => r("held"))))
    await bus.waitForWorkers(1)
    const held = bus.request({ path: "/hold" }, { timeoutMs: 10_000 })
    await until(() => release !== null, "its handler runs")
    const closing = w.close()
    await until(() => bus.workers[0]?.state === "draining", "the hub heard it leave and sends it nothing new")
    const nc = await client()
    const [heard] = await Array.fromAsync(nc.subscribe(`${root(bus.name)}.hb`, { max: 1 })) // it says "leaving"
    const { worker: id, state } = JSON.parse(heard!.string()) as { worker: string; state: string }
    expect(state).toBe("leaving")
    // a request sent now, as by a hub that had not heard yet: refused unrun, not dropped unanswered
    const refusal = (await nc.request(`${root(bus.name)}.req.${id}`, answer(1, 0, 0), { timeout: 5000 })).data
    expect([refusal[1], new DataView(refusal.buffer, refusal.byteOffset).getUint32(4, true)]).toEqual([1, 503])
    release!()
    expect((await held).text()).toBe("held") // before: WorkerGoneError at its "leaving", the handler's answer dropped
    await closing
    await until(() => bus.workerCount === 0, "it is gone")
  }, 30_000)

  test.each([
    [{ heartbeatMs: 100, peerTimeoutMs: 199 }, "at least 2 × heartbeatMs"],
    [{ peerTimeoutMs: -1 }, "peerTimeoutMs must be an integer"],
    [{ peerTimeoutMs: 1.5 }, "peerTimeoutMs must be an integer"],
    [{ peerTimeoutMs: 1e9 }, "peerTimeoutMs must be an integer"],
  ])("peerTimeoutMs %j is refused: %s", async (opts, message) => {
    const err = await rejection(SlotBus.listen(busName("nats-opt"), { remote: viaNats(nats.url), ...opts }))
    expect(err).toBeInstanceOf(RangeError)
    expect((err as Error).message).toContain(message)
  })
})

describe.skipIf(skip !== null)("a hot reload over NATS", () => {
  test("hands back the bus only for a transport that reaches the same servers with the same credentials", async () => {
    const bus = await hub({ hot: true }, { servers: nats.url, user: "a", pass: "b" })
    const again = (remote: ReturnType<typeof viaNats>) =>
      SlotBus.listen(bus.name, { remote, heartbeatMs: 100, hot: true })
    expect(await again(viaNats({ servers: nats.url, user: "a", pass: "b" }))).toBe(bus)
    for (const other of [
      { servers: "nats://127.0.0.1:1", user: "a", pass: "b" }, // other servers: the bus stayed on the first
      { servers: nats.url, user: "a", pass: "c" }, // other credentials
      nats.url, // a URL where options were given
    ])
      expect(await rejection(again(viaNats(other)))).toBeInstanceOf(NameInUseError)
    expect(bus.closing).toBeNull() // the refusals left it open
  }, 30_000)

  test("over a connection of the caller's, only that same connection is the same transport", async () => {
    const nc = await client()
    const bus = await hub({ hot: true }, nc)
    const again = (remote: ReturnType<typeof viaNats>) =>
      SlotBus.listen(bus.name, { remote, heartbeatMs: 100, hot: true })
    expect(await again(viaNats(nc))).toBe(bus)
    expect(await rejection(again(viaNats(await client())))).toBeInstanceOf(NameInUseError)
  }, 30_000)
})
