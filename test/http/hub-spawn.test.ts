// `slotbus hub --spawn "<worker command>" --instances N`: the hub keeps its workers alive (core superviseWorkers).
import { expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { alive, freePort, spawn, until } from "../support/helpers.ts"

const ROOT = join(import.meta.dir, "..", "..")

test("slotbus hub --spawn keeps N workers running: one killed with SIGKILL is replaced, and SIGTERM stops them all", async () => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const dir = mkdtempSync(join(tmpdir(), "hub-spawn-"))
  const tokenFile = join(dir, "token")
  const worker = `${process.execPath} ${join(ROOT, "test", "support", "http", "http-worker.ts")} ${url} shop`
  const hub = spawn([
    process.execPath,
    join(ROOT, "bin", "slotbus.ts"),
    "hub",
    "--port",
    String(port),
    "--token-file",
    tokenFile,
    "--spawn",
    worker,
    "--instances",
    "2",
  ])
  // each worker line comes prefixed with its pool (the script's name), instance and pid
  const ready = () => hub.lines.flatMap((l) => /^\[http-worker#\d pid (\d+)\] ready \1$/.exec(l)?.[1] ?? []).map(Number)
  try {
    await until(() => ready().length === 2, "two workers ready", 20_000)
    const [victim, survivor] = ready() as [number, number]
    expect((await fetch(`${url}/items/7`)).status).toBe(200)
    process.kill(victim, "SIGKILL")
    await until(() => ready().length === 3, "a replacement worker", 20_000)
    expect(hub.lines.join("\n")).toMatch(/worker \d exited; restarting in \d+ ms/)
    const replacement = ready()[2]!
    expect(replacement).not.toBe(victim)
    await until(async () => (await fetch(`${url}/items/8`)).status === 200, "the hub to serve again", 20_000)
    hub.signal("SIGTERM")
    expect(await hub.exited).toBe(0)
    await until(() => !alive(survivor) && !alive(replacement), "the workers to stop", 20_000)
  } finally {
    await hub.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}, 60_000)
