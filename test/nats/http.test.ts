// The HTTP hub with workers over NATS (createHub({ nats }), hubWorker(…, { nats })): requests, a streamed
// response larger than max_payload, the client's disconnect reaching the far handler, /health saying how each worker is reached, and a clear refusal when the hub
// takes no workers over NATS.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHub, type HubHealth } from "../../src/http/index.ts"
import { pattern, run, stopAll, until, type Child } from "../support/helpers.ts"
import { failingWorker, startHubProcess, startWorker } from "../support/http.ts"
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
    const js = await startNats({ jetstream: true }) // the durable events topic's stream
    await using hub = await createHub({ port: 0, nats: js.url, eventsDurable: true, quiet: true })
    const w = await startWorker(hub.url, "shop", [`--nats=${js.url}`, "--host=media-b"])
    try {
      expect((await fetch(`${hub.url}/emit/order.created`, { method: "POST", body: "{}" })).status).toBe(200)
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
