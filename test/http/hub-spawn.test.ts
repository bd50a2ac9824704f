// `slotbus hub --spawn "<worker command>" --instances N`: the hub keeps its workers alive (core superviseWorkers), and
// they go with it.
import { afterAll, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { libraryPath } from "../../src/native/lib-path.ts"
import { alive, freePort, spawn, until } from "../support/helpers.ts"
import { buildForNode, findNode, nodeFlags } from "../support/runtime/node.ts"
import { type PeerRuntime, peerSkip } from "../support/runtime/peers.ts"

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

// before: a kill -9 (or the OOM killer) of the hub left its spawned workers rejoining a hub that never came back, for
// good: in their own sessions, a kill of the hub's group missed them too
describe.each(["bun", "node"] as PeerRuntime[])("slotbus hub --spawn under %s", (runtime) => {
  let built: ReturnType<typeof buildForNode> | undefined
  afterAll(() => built?.remove())

  test("killed with SIGKILL, its workers are ended (SIGTERM) by its reaper", async () => {
    if (peerSkip(runtime)) return console.log(`skipped: ${peerSkip(runtime)}`)
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const dir = mkdtempSync(join(tmpdir(), "hub-spawn-"))
    const worker = `${process.execPath} ${join(ROOT, "test", "support", "http", "http-worker.ts")} ${url} shop`
    const args = ["--port", String(port), "--token-file", join(dir, "token"), "--spawn", worker, "--instances", "2"]
    let hubArgv = [process.execPath, join(ROOT, "test", "support", "http", "http-hub.ts"), ...args]
    if (runtime === "node") {
      const node = findNode()!
      built ??= buildForNode("http/http-hub.ts")
      hubArgv = [node, ...nodeFlags(node), built.entry, ...args]
    }
    const hub = spawn(hubArgv, { env: { ...process.env, SLOTBUS_LIB: await libraryPath(), NODE_NO_WARNINGS: "1" } })
    const ready = () =>
      hub.lines.flatMap((l) => /^\[http-worker#\d pid (\d+)\] ready \1$/.exec(l)?.[1] ?? []).map(Number)
    let pids: number[] = []
    try {
      await until(() => ready().length === 2, "two workers ready", 30_000)
      pids = ready()
      expect((await fetch(`${url}/items/7`)).status).toBe(200)
      hub.signal("SIGKILL")
      await hub.exited
      await until(() => pids.every((pid) => !alive(pid)), "both workers ended", 20_000)
    } finally {
      for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL")
      await hub.kill()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})
