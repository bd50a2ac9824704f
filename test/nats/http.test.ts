// The HTTP hub with workers over NATS (createHub({ nats }), hubWorker(…, { nats })): requests, a streamed
// response larger than max_payload, the client's disconnect reaching the far handler, /health saying how each worker is reached, and a clear refusal when the hub
// takes no workers over NATS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHub, type HubHealth } from "../../src/http/index.ts"
import type { Registry } from "../../src/http/hub/registry.ts"
import { SlotWorker } from "../../src/index.ts"
import { nats } from "../../src/nats/index.ts"
import { pattern, run, stopAll, until, type Child } from "../support/helpers.ts"
import { failingWorker, startHubProcess, startWorker } from "../support/http/http.ts"
import { natsSkipReason, startNats } from "../support/nats.ts"

const skip = natsSkipReason()
let server: Child | undefined
let url = ""
beforeAll(async () => {
  if (!skip) ({ url, server } = await startNats())
})
afterAll(async () => {
  await stopAll()
  await server?.kill()
})

describe.skipIf(skip !== null)("the HTTP hub with a worker over NATS", () => {
  test("routes requests to it, cancels reach it, and /health says it is reached over NATS", async () => {
    await using hub = await createHub({ port: 0, nats: url, quiet: true })
    const w = await startWorker(hub.url, "shop", [`--nats=${url}`])
    try {
      const res = await fetch(`${hub.url}/items/7?q=x`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ id: "7" })
      const health = (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
      expect(health.workers.map((x) => x.transport)).toEqual(["nats"])
      const socket = connect(hub.port, "127.0.0.1")
      socket.on("error", () => {})
      socket.write("GET /wait-abort HTTP/1.1\r\nhost: x\r\n\r\n")
      await w.waitLine(/^waiting$/)
      socket.destroy()
      await w.waitLine(/^aborted AbortError$/)
      await until(
        async () => ((await (await fetch(`${hub.url}/health`)).json()) as HubHealth).counters.clientAborts === 1,
        "the hub counted the client abort",
      )
    } finally {
      await w.kill()
    }
  }, 30_000)

  test("/health, the live view and slotbus status show the hub's NATS side: the connection, workers by host, the events topic's bridge", async () => {
    const js = await startNats({ jetstream: true, monitor: true }) // the durable events topic's stream
    await using hub = await createHub({ port: 0, nats: js.url, eventsDurable: true, quiet: true })
    const w = await startWorker(hub.url, "shop", [`--nats=${js.url}`, "--host=media-b"])
    try {
      expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
      // the emit went through the worker's events topic over NATS: the hub and the worker hold one connection each,
      // for their bus or worker and their events topic
      expect(((await (await fetch(`${js.monitor}/connz`)).json()) as { num_connections: number }).num_connections).toBe(
        2,
      )
      await until(async () => {
        const h = (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
        const t = h.nats?.find((s) => s.kind === "topic")?.remote?.tables[0]
        return t?.rows[0]?.[2] === 1
      }, "the durable stream's last sequence is 1")
      const health = (await (await fetch(`${hub.url}/health`)).json()) as HubHealth
      const bus = health.nats!.find((s) => s.kind === "bus")!
      expect(bus.remote!.facts).toContainEqual(["connected", true])
      const byHost = bus.remote!.tables.find((t) => t.title === "workers on other hosts")!
      expect(byHost.rows.map((r) => r[0])).toEqual(["media-b"])
      expect(health.workers.map((x) => x.host)).toEqual(["media-b"])
      const topic = health.nats!.find((s) => s.kind === "topic")!
      expect(topic.name).toBe(hub.eventsTopic)
      expect(topic.remote!.facts).toContainEqual(["this host's bridge", `pid ${process.pid} (this process)`])
      expect("nats" in hub.health()).toBe(false) // the sync report leaves the NATS side out

      const stream = await fetch(`${hub.url}/health/stream`)
      const reader = stream.body!.getReader()
      let text = ""
      while (!text.includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value)
      await reader.cancel()
      expect(text).toMatch(/"bus hub\d+\.shop\.\w+: workers on other hosts"/) // the hub's section: each bus's NATS side

      // (async: the hub runs in this process)
      const cli = await run([
        process.execPath,
        join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
        "status",
        hub.url,
        "--once",
      ])
      const out = cli.stdout
      expect(out).toContain("-- across hosts (NATS)")
      expect(out).toMatch(/media-b +1/)
      expect(out).toContain(`SLOTBUS_EV_${hub.eventsTopic.replaceAll(".", "~")}`)
    } finally {
      await w.kill()
      await js.server.kill()
    }
  }, 30_000)

  test("a streamed response over NATS reaches the HTTP client intact, 5 MB: five times the server's max_payload", async () => {
    await using hub = await createHub({ port: 0, nats: url, quiet: true })
    const w = await startWorker(hub.url, "shop", [`--nats=${url}`])
    try {
      const bytes = 5_000_000
      const res = await fetch(`${hub.url}/large?bytes=${bytes}&seed=5&stream=1`)
      expect(res.status).toBe(200)
      expect(Buffer.compare(await res.bytes(), pattern(bytes, 5))).toBe(0)
    } finally {
      await w.kill()
    }
  }, 30_000)

  test("the hub holds one NATS connection for all its workers' buses and its events topic: no connect per registration, closed with the hub", async () => {
    const own = await startNats({ monitor: true, jetstream: true }) // a server of its own: every connection on it is the hub's
    const varz = async () =>
      (await (await fetch(`${own.monitor}/varz`)).json()) as { connections: number; total_connections: number }
    const workers: Child[] = []
    try {
      const before = await varz() // startNats's probe counts as one
      const hub = await createHub({ port: 0, nats: own.url, eventsDurable: true, quiet: true })
      try {
        for (let i = 1; i <= 4; i++) workers.push(await startWorker(hub.url, "shop", [`--instance=shop-${i}`]))
        workers.push(await startWorker(hub.url, "shop", ["--instance=shop-1"])) // shop-1 restarted: a new bus
        await workers[0]!.waitLine(/^closed replaced$/)
        expect(hub.health().workers.length).toBe(4)
        expect(hub.health().counters.registrations).toBe(5)
        expect(await varz()).toMatchObject({ connections: 1, total_connections: before.total_connections + 1 })
        for (let i = 0; i < 8; i++) expect((await fetch(`${hub.url}/items/${i}`)).status).toBe(200)
      } finally {
        await hub.close()
      }
      await until(async () => (await varz()).connections === 0, "the hub's connection closed with it")
    } finally {
      for (const w of workers) await w.kill()
      await own.server.kill()
    }
  }, 30_000)

  test("30 re-registrations on a hub over NATS: the buses of instances that left are not kept alive by its shared connection, nor their subscriptions", async () => {
    const own = await startNats({ monitor: true })
    const connz = async () =>
      (await (await fetch(`${own.monitor}/connz?subs=1`)).json()) as {
        num_connections: number
        connections: { subscriptions: number }[]
      }
    const hub = await createHub({ port: 0, nats: own.url, quiet: true })
    const remote = nats(own.url) // the workers' side: a connection of its own, so the hub's can be told apart
    let worker: SlotWorker | undefined
    try {
      const buses = () => [...(hub as unknown as { registry: Registry }).registry.instances.values()].map((i) => i.bus)
      let gone = 0
      const collected = new FinalizationRegistry(() => gone++)
      const register = async (i: number) => {
        const res = await fetch(`${hub.url}/_slotbus/register`, {
          method: "POST",
          headers: { authorization: `Bearer ${hub.token}` },
          body: JSON.stringify({ name: "shop", instance: "one", pid: 1000 + i, routes: [] }),
        })
        expect(res.status).toBe(200) // each one replaces the one before: its bus closes
        // a worker joins the bus over NATS, as hubWorker({ nats }) does (so the hub stops waiting for it to attach);
        // the one before closes after, so the workers' connection stays open too
        const last = worker
        worker = await SlotWorker.connect(((await res.json()) as { bus: string }).bus, () => "", {
          remote,
          heartbeatMs: 100,
        })
        await until(() => hub.health().workers[0]?.connected === true, "the worker joined over NATS")
        await last?.close()
      }
      const made = async () =>
        ((await (await fetch(`${own.monitor}/varz`)).json()) as { total_connections: number }).total_connections
      await register(0)
      const connected = await made()
      const hubSubs = async () => (await connz()).connections.reduce((n, c) => n + c.subscriptions, 0)
      const baseline = await hubSubs()
      expect(baseline).toBeGreaterThan(0)
      for (let i = 1; i <= 30; i++) {
        const [before] = buses()
        await register(i)
        collected.register(before!, "bus")
      }
      expect((await connz()).num_connections).toBe(2) // the hub's and the workers'
      expect(await made()).toBe(connected) // and no other since the first registration
      await until(async () => (await hubSubs()) === baseline, "the subscriptions of the buses that left are gone")
      for (let i = 0; i < 20 && gone < 28; i++) {
        Bun.gc(true)
        await Bun.sleep(50) // finalization callbacks run between turns
      }
      console.log(`buses of instances that left still alive after a full GC: ${30 - gone} of 30`)
      expect(30 - gone).toBeLessThanOrEqual(2) // the collector may keep a couple it finds on the stack
    } finally {
      await worker?.close()
      await hub.close()
      await own.server.kill()
    }
  }, 60_000)

  test("while NATS cannot be reached, the hub serves the workers on its own host, and says why", async () => {
    const gone = await startNats()
    await gone.server.kill() // nothing answers on its port now: a hub started during an outage
    const logs: string[] = []
    await using hub = await createHub({ port: 0, nats: gone.url, log: (l) => logs.push(l) })
    const w = await startWorker(hub.url, "shop") // on this host: shared memory, no NATS needed
    try {
      const res = await fetch(`${hub.url}/items/7`)
      expect(res.status).toBe(200) // before: every registration failed 500, so 503 "no worker is serving"
      expect(await res.json()).toMatchObject({ id: "7" })
      expect(logs.some((l) => /NATS is unreachable, so bus \S+ serves workers on this host only/.test(l))).toBe(true)
    } finally {
      await w.kill()
    }
  }, 30_000)

  test("a worker over NATS is refused, saying why, by a hub that takes no workers over NATS", async () => {
    await using hub = await createHub({ port: 0, quiet: true })
    const line = await failingWorker(hub.url, "shop", [`--nats=${url}`])
    expect(line).toContain("takes no workers over NATS")
  }, 30_000)

  test("a worker over NATS rejoins a hub restarted on the same port after kill -9, and serves again", async () => {
    const dir = mkdtempSync(join(tmpdir(), "slotbus-nats-restart-"))
    const tokenFile = join(dir, "hub.token")
    const first = startHubProcess(["--port", "0", "--token-file", tokenFile, "--nats", url])
    try {
      const [, hubUrl] = (await first.waitLine(/^slotbus hub listening on (http:\S+)$/))!
      const port = new URL(hubUrl!).port
      const worker = await startWorker(hubUrl!, "shop", [`--token-file=${tokenFile}`, `--nats=${url}`])
      expect((await fetch(`${hubUrl}/items/1`)).status).toBe(200)
      await first.kill() // kill -9: the worker hears no goodbye, only the hub's announcements stopping
      const second = startHubProcess(["--port", port, "--token-file", tokenFile, "--nats", url])
      await second.waitLine(/^slotbus hub listening on /)
      await until(
        async () => {
          const h = (await (await fetch(`${hubUrl}/health`)).json()) as HubHealth
          return h.workers.some((w) => w.pid === worker.pid && w.transport === "nats")
        },
        "the worker has rejoined the new hub over NATS",
        20_000,
      )
      const res = await fetch(`${hubUrl}/items/2`)
      expect(res.status).toBe(200)
      expect(await res.json()).toMatchObject({ id: "2" })
    } finally {
      await stopAll()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
