// GET /events across hubs on two simulated hosts (createHub({ nats, eventsDurable }), docs/PROTOCOL.md §11.6):
// a client reading hub A when it is killed with SIGKILL reconnects to hub B on the other host with its
// Last-Event-ID and gets every event after it, once, in order, while events keep coming.
import { describe, expect, test } from "bun:test"
import { join } from "node:path"
import { existsSync } from "node:fs"
import { Topic } from "../../src/events/index.ts"
import { createHub, HubEventsError } from "../../src/http/index.ts"
import { FIXTURES, rejection, spawn, until, type Child } from "../support/helpers.ts"
import { hostsPerFile } from "../support/hosts.ts"
import { SseReader } from "../support/http/http.ts"
import { startNats } from "../support/nats.ts"
import { nats as viaNats } from "../../src/nats/index.ts"

const on = hostsPerFile("durable events of the HTTP hub", { jetstream: true })
const { skip, cleanup } = on

const hubArgs = (addr: string, port: number, nats: string) => [
  process.execPath,
  join(FIXTURES, "http/http-hub.ts"),
  `--port=${port}`,
  `--host=${addr}`,
  `--nats=${nats}`,
  "--events-durable",
  "--quiet",
  `--token-file=${join(on.hosts.dir, `hub-${addr}.token`)}`,
]

async function started(hub: Child) {
  await hub.waitLine(/^slotbus hub listening on /, 20_000)
  return hub
}

/** Takes the "n" events the stream sends, in the order sent, until `done` (or the stream breaks: the hub died). */
async function read(r: SseReader, into: { id: number; data: string }[], done: (n: number) => boolean) {
  let seen = r.received.length
  const taken = () => r.received.slice(seen).find((m) => m.event === "n")
  try {
    while (!done(into.length)) {
      await r.next(() => taken() !== undefined, 20_000)
      for (; seen < r.received.length; seen++) {
        const m = r.received[seen]!
        if (m.event === "n") into.push({ id: Number(m.id), data: m.data })
      }
    }
  } catch {
    // the hub died under the stream
  }
}

describe.skipIf(skip !== null)("GET /events on durable hubs across two hosts", () => {
  test("kill -9 of hub A mid-stream: the client resumes on hub B with its Last-Event-ID, missing and doubling nothing", async () => {
    const port = 20000 + (process.pid % 20000)
    // this process publishes into the hubs' events topic on host A (and is host A's bridge: it opened it first)
    await using topic = await Topic.open(`http.${port}`, { remote: viaNats(on.hosts.a.natsUrl) })
    const hubA = await started(spawn(hubArgs(on.hosts.a.addr, port, on.hosts.a.natsUrl)))
    cleanup.push(() => hubA.kill())
    const hubB = await started(on.hosts.spawnOnB(hubArgs(on.hosts.b.addr, port, on.hosts.b.natsUrl)))
    cleanup.push(() => hubB.kill())

    const resA = await fetch(`http://${on.hosts.a.addr}:${port}/events?types=n`)
    expect(resA.status).toBe(200)
    const onA = new SseReader(resA)
    const got: { id: number; data: string }[] = []
    let published = 0
    let publishing = true
    const publisher = (async () => {
      while (publishing) {
        topic.publish({ type: "n", data: String(published++) })
        topic.publish({ type: "other", data: "x" }) // filtered out by ?types=n, on both hubs
        await Bun.sleep(2)
      }
    })()
    await read(onA, got, (n) => n >= 50)
    await hubA.kill("SIGKILL")
    await read(onA, got, () => false) // what was on its way before the socket closed
    const lastId = got.at(-1)!.id
    const resB = await fetch(`http://${on.hosts.b.addr}:${port}/events?types=n`, {
      headers: { "last-event-id": String(lastId) },
    })
    expect(resB.status).toBe(200)
    const onB = new SseReader(resB)
    cleanup.push(() => onB.close())
    const before = got.length
    await read(onB, got, (n) => n >= before + 100)
    publishing = false
    await publisher
    const end = published
    await read(onB, got, (n) => Number(got[n - 1]?.data) >= end - 1)
    await until(() => Number(got.at(-1)!.data) === end - 1, "the last event reaches the client")

    // every event once, in order, across the switch; ids grow
    expect(got.map((e) => Number(e.data))).toEqual(Array.from({ length: end }, (_, i) => i))
    for (let i = 1; i < got.length; i++) expect(got[i]!.id).toBeGreaterThan(got[i - 1]!.id)
    expect(onB.received.filter((m) => m.event === "lagged")).toEqual([])
  }, 120_000)

  test("a worker on host B emits through its own host: app.emit reaches GET /events on hub A", async () => {
    const port = 20000 + ((process.pid + 1) % 20000)
    const tokenFile = join(on.hosts.dir, `hub-${on.hosts.a.addr}.token`) // as hubArgs names it
    const hubA = await started(spawn(hubArgs(on.hosts.a.addr, port, on.hosts.a.natsUrl)))
    cleanup.push(() => hubA.kill())
    const res = await fetch(`http://${on.hosts.a.addr}:${port}/events?types=burst`)
    const client = new SseReader(res)
    cleanup.push(() => client.close())
    const worker = on.hosts.spawnOnB([
      process.execPath,
      join(FIXTURES, "http/http-worker.ts"),
      `http://${on.hosts.a.addr}:${port}`,
      "shop",
      `--nats=${on.hosts.b.natsUrl}`,
      `--token-file=${tokenFile}`,
      "--burst=500",
    ])
    cleanup.push(() => worker.kill())
    await worker.waitLine(/^ready \d+$/, 20_000)
    // its bridge on host B (the worker is the only member there) subscribes to nothing: it only sends
    await Bun.sleep(200)
    worker.signal("SIGUSR2")
    await worker.waitLine(/^burst 500 /, 20_000)
    const got: { id: number; data: string }[] = []
    const take = async () => {
      for (let seen = 0; got.length < 500; ) {
        await client.next(() => client.received.length > seen, 20_000)
        for (; seen < client.received.length; seen++) {
          const m = client.received[seen]!
          if (m.event === "burst") got.push({ id: Number(m.id), data: m.data })
        }
      }
    }
    await take()
    expect(got.map((e) => (JSON.parse(e.data) as { seq: number }).seq)).toEqual(
      Array.from({ length: 500 }, (_, i) => i),
    )
  }, 120_000)

  test("events a host's worker emits while its durable hub is down (kill -9) reach the stream when the hub is back: GET /events replays all of them", async () => {
    const port = 20000 + ((process.pid + 3) % 20000)
    const tokenFile = join(on.hosts.dir, `hub-${on.hosts.a.addr}.token`) // as hubArgs names it
    const hub = () => started(spawn(hubArgs(on.hosts.a.addr, port, on.hosts.a.natsUrl)))
    const first = await hub()
    cleanup.push(() => first.kill())
    // a plain worker of this host: it publishes into the hub's topic and never bridges (no nats option)
    const worker = spawn([
      process.execPath,
      join(FIXTURES, "http/http-worker.ts"),
      `http://${on.hosts.a.addr}:${port}`,
      "shop",
      `--token-file=${tokenFile}`,
      "--burst=50",
    ])
    cleanup.push(() => worker.kill())
    await worker.waitLine(/^ready \d+$/, 20_000)
    first.signal("SIGKILL")
    await first.proc.exited
    worker.signal("SIGUSR2")
    await worker.waitLine(/^burst 50 /, 20_000) // every emit resolved, the hub down
    const second = await hub()
    cleanup.push(() => second.kill())
    const res = await fetch(`http://${on.hosts.a.addr}:${port}/events?types=burst`, {
      headers: { "last-event-id": "0" },
    })
    const client = new SseReader(res)
    cleanup.push(() => client.close())
    const got: number[] = []
    for (let seen = 0; got.length < 50; ) {
      await client.next(() => client.received.length > seen, 20_000)
      for (; seen < client.received.length; seen++) {
        const m = client.received[seen]!
        if (m.event === "burst") got.push((JSON.parse(m.data) as { seq: number }).seq)
      }
    }
    expect(got).toEqual(Array.from({ length: 50 }, (_, i) => i))
  }, 120_000)

  test("a durable hub on a NATS server without JetStream fails to start with HubEventsError and leaves nothing listening", async () => {
    const nats = await startNats() // no -js
    cleanup.push(() => nats.server.kill())
    const port = 20000 + ((process.pid + 2) % 20000)
    const tokenFile = join(on.hosts.dir, "no-js.token")
    const e = await rejection(createHub({ port, nats: nats.url, eventsDurable: true, tokenFile, quiet: true }))
    expect(e).toBeInstanceOf(HubEventsError)
    expect(String(e)).toMatch(/durable/)
    expect(existsSync(tokenFile)).toBe(false)
    const again = Bun.serve({ port, hostname: "127.0.0.1", fetch: () => new Response("ok") }) // the port is free
    await again.stop(true)
    await expect(createHub({ port, eventsDurable: true })).rejects.toThrow(/eventsDurable needs nats/)
  }, 60_000)
})
