// `app.emit` over the hub's events topic (shared memory) and `GET /events` as its reader: real hub and worker
// processes, real SSE clients over fetch, Last-Event-ID replay, the lagged marker, a hub that stops reading.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic } from "../../src/events/index.ts"
import { createHub, type Hub, type HubHealth } from "../../src/http/index.ts"
import { stopAll, until, type Child } from "../support/helpers.ts"
import { startHubProcess, startWorker, SseReader, type SseMessage } from "../support/http/http.ts"

async function open(
  base: string,
  path: string,
  lastEventId?: string,
): Promise<{ sse: SseReader; abort: AbortController }> {
  const abort = new AbortController()
  const res = await fetch(base + path, {
    signal: abort.signal,
    headers: lastEventId === undefined ? {} : { "last-event-id": lastEventId },
  })
  expect(res.status).toBe(200)
  return { sse: new SseReader(res), abort }
}

const events = (sse: SseReader) => sse.received.filter((m) => m.comment === undefined)
const seqOf = (m: SseMessage) => (JSON.parse(m.data) as { seq: number }).seq

/** Reads until `n` events (not comments) arrived, or fails after timeoutMs. */
async function collect(sse: SseReader, n: number, timeoutMs = 20_000): Promise<SseMessage[]> {
  await sse.next(() => events(sse).length >= n, timeoutMs)
  return events(sse)
}

describe("one hub, one worker", () => {
  let hub: Hub
  let worker: Child
  const post = (path: string, body: unknown) =>
    fetch(hub.url + path, { method: "POST", body: JSON.stringify(body) }).then(
      (r) => r.json() as Promise<{ ids: number[] }>,
    )

  beforeAll(async () => {
    hub = await createHub({ port: 0, quiet: true, heartbeatMs: 60_000 })
    worker = await startWorker(hub.url, "emitter")
  })
  afterAll(async () => {
    await stopAll()
    await hub.close()
  })

  test("the events topic is named after the port", () => {
    expect(hub.eventsTopic).toBe(`http.${hub.port}`)
  })

  test("a worker's emit reaches /events clients with its id, filtered by exact types, prefixes and routing", async () => {
    const clients = {
      all: await open(hub.url, "/events"),
      order: await open(hub.url, "/events?types=order"),
      session: await open(hub.url, "/events?types=session.*"),
      scroll: await open(hub.url, "/events?routing.scroll=S1"),
      two: await open(hub.url, "/events?types=user,session.open"),
    }
    try {
      const ids: Record<string, number> = {}
      ids.user = (await post("/emit/user", { id: 1 })).ids[0]!
      ids.order = (await post("/emit/order", { total: 5 })).ids[0]!
      ids.open = (await post("/emit/session.open?routing.scroll=S1", { s: 1 })).ids[0]!
      ids.close = (await post("/emit/session.close?routing.scroll=S2", { s: 2 })).ids[0]!
      ids.last = (await post("/emit/order?routing.scroll=S1", { total: 6 })).ids[0]!
      const want: Record<keyof typeof clients, string[]> = {
        all: ["user", "order", "open", "close", "last"],
        order: ["order", "last"],
        session: ["open", "close"],
        scroll: ["open", "last"],
        two: ["user", "open"],
      }
      for (const [name, c] of Object.entries(clients)) {
        const expected = want[name as keyof typeof clients]
        const got = await collect(c.sse, expected.length)
        expect(got.map((m) => m.id)).toEqual(expected.map((k) => String(ids[k])))
      }
      const all = events(clients.all.sse)
      expect(all.map((m) => m.event)).toEqual(["user", "order", "session.open", "session.close", "order"])
      expect(JSON.parse(all[0]!.data)).toEqual({ id: 1 })
      // Nothing more arrives for anyone after one more event only `all` takes.
      const fence = (await post("/emit/fence", {})).ids[0]!
      await clients.all.sse.next((m) => m.id === String(fence))
      for (const [name, c] of Object.entries(clients))
        if (name !== "all") expect(events(c.sse).length).toBe(want[name as keyof typeof clients].length)
    } finally {
      for (const c of Object.values(clients)) c.abort.abort()
    }
  })

  test("a client reconnecting with Last-Event-ID gets the events it missed exactly once and in order, while emits go on", async () => {
    const ROUNDS = 8,
      PER = 200,
      GAP = 50
    const first = await open(hub.url, "/events?types=tick")
    const emitting = (async () => {
      for (let r = 0; r < ROUNDS; r++) await post(`/emit/tick?count=${PER}`, { r })
    })()
    const before = await collect(first.sse, 150)
    first.abort.abort()
    const lastId = before.at(-1)!.id!
    await post(`/emit/tick?count=${GAP}`, { r: "gap" }) // missed for sure: nobody listens
    const second = await open(hub.url, "/events?types=tick", lastId)
    try {
      await emitting
      const total = ROUNDS * PER + GAP
      const after = await collect(second.sse, total - before.length)
      const all = [...before, ...after]
      expect(all.length).toBe(total)
      const ids = all.map((m) => Number(m.id))
      for (let i = 1; i < ids.length; i++) expect(ids[i]!).toBeGreaterThan(ids[i - 1]!)
      const keys = new Set(
        all.map((m) => {
          const d = JSON.parse(m.data) as { seq: number; data: { r: unknown } }
          return `${d.data.r}/${d.seq}`
        }),
      )
      expect(keys.size).toBe(total)
      expect(after.some((m) => m.event === "lagged")).toBe(false)
    } finally {
      second.abort.abort()
    }
  })

  test('a Last-Event-ID never issued, or from the future, gets a lagged marker saying so (before: "overwritten")', async () => {
    const [id] = (await post("/emit/odd-ids", "one")).ids
    for (const [lastId, reason, says] of [
      [String(id! + 1), "never-issued", `no event has the id ${id! + 1}`],
      ["999999999999", "from-the-future", "no event 999999999999 was issued yet"],
    ] as const) {
      const c = await open(hub.url, "/events?types=odd-ids", lastId)
      try {
        const [marker] = await collect(c.sse, 1)
        expect(marker!.event).toBe("lagged")
        const data = JSON.parse(marker!.data)
        expect(data).toMatchObject({ lastEventId: lastId, reason })
        expect(data.message).toContain(says)
      } finally {
        c.abort.abort()
      }
    }
  })

  test("Last-Event-ID also comes as ?lastEventId=, and ?from=oldest replays what the ring holds", async () => {
    const a = (await post("/emit/pick", { n: 1 })).ids[0]!
    const b = (await post("/emit/pick", { n: 2 })).ids[0]!
    const byQuery = await open(hub.url, `/events?types=pick&lastEventId=${a}`)
    const oldest = await open(hub.url, "/events?types=pick&from=oldest")
    try {
      expect((await collect(byQuery.sse, 1)).map((m) => m.id)).toEqual([String(b)])
      expect((await collect(oldest.sse, 2)).map((m) => m.id)).toEqual([String(a), String(b)])
    } finally {
      byQuery.abort.abort()
      oldest.abort.abort()
    }
  })

  test("the HTTP emit endpoint still works (workers that cannot open the topic, older SDKs) and answers the ids", async () => {
    const c = await open(hub.url, "/events?types=old")
    try {
      const res = await fetch(`${hub.url}/_slotbus/emit`, {
        method: "POST",
        headers: { authorization: `Bearer ${hub.token}` },
        body: JSON.stringify([
          { type: "old", data: "a" },
          { type: "old", data: "b", routing: { k: "v" } },
          { type: "", data: "refused" },
        ]),
      })
      const { delivered } = (await res.json()) as { delivered: number[] }
      expect(delivered[2]).toBe(0)
      const viaSdk = (await post("/emit/old?via=http&count=2", { x: 1 })).ids
      const got = await collect(c.sse, 4)
      expect(got.map((m) => m.id)).toEqual([...delivered.slice(0, 2), ...viaSdk].map(String))
      expect(got.map((m) => m.data).slice(0, 2)).toEqual(["a", "b"])
    } finally {
      c.abort.abort()
    }
  })

  test("an emit whose routing is a Map is a TypeError in the worker, over the topic and over HTTP alike, and nothing is published", async () => {
    const c = await open(hub.url, "/events?types=mapped.*")
    try {
      const refusals = [
        await fetch(`${hub.url}/emit/mapped.topic?map=1&routing.tenant=A`, { method: "POST", body: "1" }),
        await fetch(`${hub.url}/emit/mapped.http?via=http&map=1&routing.tenant=A`, { method: "POST", body: "2" }),
      ]
      const errors = await Promise.all(refusals.map((r) => r.json() as Promise<{ error?: string }>))
      expect(refusals.map((r) => r.status)).toEqual([400, 400])
      for (const { error } of errors) {
        expect(error).toStartWith("TypeError: routing must be a plain object of strings")
        expect(error).toContain("Object.fromEntries(map)")
      }
      const fence = (await post("/emit/mapped.fence?via=http", {})).ids[0]!
      const got = await collect(c.sse, 1)
      expect(got.map((m) => m.id)).toEqual([String(fence)]) // the refused ones never reached the topic
    } finally {
      c.abort.abort()
    }
  })
})

test("a client whose missed events were overwritten gets `event: lagged`, then the oldest still held, in order", async () => {
  await using hub = await createHub({ port: 0, quiet: true, eventsCapacity: 64 * 1024, heartbeatMs: 60_000 })
  try {
    await startWorker(hub.url, "emitter")
    const post = (path: string, body: unknown) =>
      fetch(hub.url + path, { method: "POST", body: JSON.stringify(body) }).then(
        (r) => r.json() as Promise<{ ids: number[] }>,
      )
    const first = await open(hub.url, "/events?types=fill")
    const [start] = (await post("/emit/fill", "start")).ids
    await collect(first.sse, 1)
    first.abort.abort()
    const N = 2000 // about 200 KB of events through a 64 KiB ring
    const ids = (await post(`/emit/fill?count=${N}`, "x".repeat(60))).ids
    const again = await open(hub.url, "/events?types=fill", String(start))
    try {
      const lastId = String(ids.at(-1))
      await again.sse.next((m) => m.id === lastId)
      const got = events(again.sse)
      expect(got[0]!.event).toBe("lagged")
      expect(got[0]!.id).toBeUndefined()
      expect(JSON.parse(got[0]!.data)).toMatchObject({ lastEventId: String(start), reason: "overwritten" })
      const replayed = got.slice(1)
      expect(replayed.every((m) => m.event === "fill")).toBe(true)
      const seqs = replayed.map(seqOf)
      expect(seqs[0]!).toBeGreaterThan(0) // the first ones are gone
      expect(seqs).toEqual(Array.from({ length: replayed.length }, (_, i) => seqs[0]! + i)) // from there on, every one
      expect(seqs.at(-1)).toBe(N - 1)
    } finally {
      again.abort.abort()
    }
  } finally {
    await stopAll()
  }
})

test("a worker emitting many events is not held up by a hub that does not read (SIGSTOP), and nothing is lost silently", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-events-"))
  const tokenFile = join(dir, "hub.token")
  const hubProc = startHubProcess(["--port", "0", "--token-file", tokenFile, "--quiet"])
  try {
    const [, url] = (await hubProc.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    const N = 20_000 // ~1.6 MB of records through the default 1 MiB ring: the hub's reader is overrun while stopped
    const worker = await startWorker(url!, "burster", [`--token-file=${tokenFile}`, `--burst=${N}`])
    const c = await open(url!, "/events?types=burst")
    try {
      process.kill(hubProc.pid, "SIGSTOP")
      try {
        process.kill(worker.pid, "SIGUSR2")
        const [, lastId] = (await worker.waitLine(new RegExp(`^burst ${N} (\\d+)$`)))!
        expect(Number(lastId)).toBeGreaterThan(0)
      } finally {
        process.kill(hubProc.pid, "SIGCONT")
      }
      // Every event either reaches the client or is counted in a lagged marker.
      const last = await c.sse.next((m) => m.event === "burst" && seqOf(m) === N - 1, 30_000)
      expect(last).toBeDefined()
      const got = events(c.sse)
      const delivered = got.filter((m) => m.event === "burst")
      const missed = got
        .filter((m) => m.event === "lagged")
        .reduce((n, m) => n + (JSON.parse(m.data) as { missed: number }).missed, 0)
      expect(delivered.length + missed).toBe(N)
      const seqs = delivered.map(seqOf)
      for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!)
    } finally {
      c.abort.abort()
    }
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)

test("events a worker emits while its hub is down (kill -9) are replayed by the hub restarted on the same port", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-events-"))
  const tokenFile = join(dir, "hub.token")
  try {
    const first = startHubProcess(["--port", "0", "--token-file", tokenFile, "--quiet"])
    const [, url] = (await first.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    const port = new URL(url!).port
    const worker = await startWorker(url!, "keeper", [`--token-file=${tokenFile}`, "--burst=5"])
    const c1 = await open(url!, "/events?types=burst")
    process.kill(worker.pid, "SIGUSR2")
    await worker.waitLine(/^burst 5 \d+$/)
    const seen = await collect(c1.sse, 5)
    c1.abort.abort()
    process.kill(first.pid, "SIGKILL")
    await first.proc.exited

    // No hub: the worker's emits still land in the topic it holds.
    worker.lines.length = 0
    process.kill(worker.pid, "SIGUSR2")
    const [, lastId] = (await worker.waitLine(/^burst 5 (\d+)$/))!

    const second = startHubProcess(["--port", port!, "--token-file", tokenFile, "--quiet"])
    await second.waitLine(/^slotbus hub listening on /)
    const c2 = await open(url!, "/events?types=burst", seen.at(-1)!.id)
    try {
      await c2.sse.next((m) => m.id === lastId)
      const got = events(c2.sse)
      expect(got.map(seqOf)).toEqual([0, 1, 2, 3, 4])
      expect(Number(got[0]!.id)).toBeGreaterThan(Number(seen.at(-1)!.id))
      // And the rejoined worker's new emits reach the new hub's clients.
      await until(
        async () => ((await (await fetch(`${url}/health`)).json()) as HubHealth).workers.some((w) => w.connected),
        "the worker rejoined",
      )
      worker.lines.length = 0
      process.kill(worker.pid, "SIGUSR2")
      const [, newest] = (await worker.waitLine(/^burst 5 (\d+)$/))!
      await c2.sse.next((m) => m.id === newest)
      expect(events(c2.sse).map(seqOf)).toEqual([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    } finally {
      c2.abort.abort()
    }
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)

test("a hub whose events topic is still held with another capacity (by workers of an earlier hub) uses it and says so", async () => {
  const name = `held-${process.pid}`
  const held = await Topic.open(name, { capacity: 1 << 16 })
  const lines: string[] = []
  try {
    await using hub = await createHub({
      port: 0,
      eventsTopic: name,
      eventsCapacity: 1 << 17,
      log: (line) => lines.push(line),
      heartbeatMs: 60_000,
    })
    expect(hub.eventsTopic).toBe(name)
    expect(lines.some((l) => l.includes(`is still held with ${1 << 16} bytes, not eventsCapacity ${1 << 17}`))).toBe(
      true,
    )
    // and it is the same ring: what the holder publishes reaches the hub's /events clients
    const c = await open(hub.url, "/events?types=held")
    try {
      held.publish({ type: "held", data: "through the old ring" })
      expect((await collect(c.sse, 1))[0]!.data).toBe("through the old ring")
    } finally {
      c.abort.abort()
    }
  } finally {
    held.close()
  }
})
