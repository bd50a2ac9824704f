import { afterAll, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, SlotWorker } from "../../src/index.ts"
import type { HubHealth } from "../../src/http/index.ts"
import { socketDir } from "../support/fds.ts"
import { spawn, stopAll, until } from "../support/helpers.ts"
import { startHubProcess, startWorker } from "../support/http/http.ts"

afterAll(stopAll)

test("a worker rejoins a hub restarted on the same port after kill -9, and serves again", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-restart-"))
  const tokenFile = join(dir, "hub.token")
  const first = startHubProcess(["--port", "0", "--token-file", tokenFile])
  try {
    const [, url] = (await first.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    const port = new URL(url!).port
    const worker = await startWorker(url!, "shop", [`--token-file=${tokenFile}`])
    expect((await fetch(`${url}/items/1`)).status).toBe(200)
    const firstToken = await Bun.file(tokenFile).text()

    await first.kill() // kill -9: no goodbye to the worker, the token file stays behind
    expect((await fetch(`${url}/health`).catch(() => null))?.status).toBeUndefined()

    const second = startHubProcess(["--port", port, "--token-file", tokenFile])
    await second.waitLine(/^slotbus hub listening on /)
    expect(await Bun.file(tokenFile).text()).not.toBe(firstToken)
    await until(
      async () => {
        const h = (await (await fetch(`${url}/health`)).json()) as HubHealth
        return h.workers.some((w) => w.pid === worker.pid && w.connected)
      },
      "the worker has rejoined the new hub",
      20_000,
    )
    const res = await fetch(`${url}/items/2`)
    expect(res.status).toBe(200)
    expect(await res.json()).toMatchObject({ id: "2" })

    second.signal("SIGTERM") // the CLI closes the hub and removes its token file
    await second.proc.exited
    expect(await Bun.file(tokenFile).exists()).toBe(false)
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
})

test("a hub started on the port of one killed with kill -9 removes the socket files of its buses, none of a live bus", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-restart-"))
  const tokenFile = join(dir, "hub.token")
  const first = startHubProcess(["--port", "0", "--token-file", tokenFile])
  let live: SlotBus | undefined
  try {
    const [, url] = (await first.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    const port = new URL(url!).port
    const filesOf = (start: string) =>
      readdirSync(socketDir()).filter((f) => f.startsWith(`slotbus.${start}`) || f.startsWith(`slotbus-ctl.${start}`))
    const worker = await startWorker(url!, "shop", [`--token-file=${tokenFile}`])
    const dead = filesOf(`hub${port}.shop.`) // its bus's socket file and its control socket's
    expect(dead.length).toBe(2)
    await first.kill() // kill -9: the files stay, under names with the dead hub's tag that nobody binds again
    await worker.kill()
    expect(dead.every((f) => existsSync(join(socketDir(), f)))).toBe(true)
    // a live bus whose name looks like a hub's of that port: another process's, and nothing of the sweep's
    live = await SlotBus.listen(`hub${port}.live.x0`)
    const second = startHubProcess(["--port", port, "--token-file", tokenFile])
    await second.waitLine(/^slotbus hub listening on /)
    expect(dead.filter((f) => existsSync(join(socketDir(), f)))).toEqual([])
    expect(filesOf(`hub${port}.live.`).length).toBe(2)
    const w = await SlotWorker.connect(`hub${port}.live.x0`, () => "still here")
    await live.waitForWorkers(1)
    expect((await live.request({ path: "/" })).text()).toBe("still here")
    await w.close()
  } finally {
    await live?.close()
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
})

test("a worker started before its hub waits for it and joins once it is up", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-late-"))
  const tokenFile = join(dir, "hub.token")
  const probe = Bun.serve({ port: 0, fetch: () => new Response() })
  const port = probe.port
  probe.stop(true)
  try {
    const url = `http://127.0.0.1:${port}`
    const worker = spawn([
      process.execPath,
      join(import.meta.dir, "..", "support", "http", "http-worker.ts"),
      url,
      "shop",
      `--token-file=${tokenFile}`,
    ])
    await Bun.sleep(300) // a few refused attempts: no token file yet, then nothing listening
    expect(worker.lines.some((l) => l.startsWith("ready"))).toBe(false)
    const hub = startHubProcess(["--port", String(port), "--token-file", tokenFile])
    await hub.waitLine(/^slotbus hub listening on /)
    await worker.waitLine(/^ready \d+$/)
    expect((await fetch(`${url}/items/3`)).status).toBe(200)
  } finally {
    await stopAll()
    rmSync(dir, { recursive: true, force: true })
  }
})

test("slotbus hub --port runs a hub that answers /health until SIGTERM", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-cli-"))
  const tokenFile = join(dir, "hub.token")
  const cli = spawn([
    process.execPath,
    join(import.meta.dir, "..", "..", "bin", "slotbus.ts"),
    "hub",
    "--port",
    "0",
    "--token-file",
    tokenFile,
  ])
  try {
    const [, url] = (await cli.waitLine(/^slotbus hub listening on (http:\S+)$/))!
    expect(((await (await fetch(`${url}/health`)).json()) as HubHealth).status).toBe("ok")
    expect(await Bun.file(tokenFile).exists()).toBe(true)
    cli.signal("SIGTERM")
    expect(await cli.proc.exited).toBe(0)
  } finally {
    await cli.kill()
    rmSync(dir, { recursive: true, force: true })
  }
})
