// `slotbus hub --spawn "<worker command>" --instances N`: the hub keeps its workers alive (core superviseWorkers).
import { expect, test } from "bun:test"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

const ROOT = join(import.meta.dir, "..", "..")

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } })
  const port = s.port
  s.stop(true)
  return port
}

async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 20_000) {
  const end = performance.now() + ms
  while (!(await cond())) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(20)
  }
}

test("slotbus hub --spawn keeps N workers running: one killed with SIGKILL is replaced, and SIGTERM stops them all", async () => {
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const tokenFile = join(mkdtempSync(join(tmpdir(), "hub-spawn-")), "token")
  const worker = `${process.execPath} ${join(ROOT, "test", "support", "http-worker.ts")} ${url} shop`
  const hub = Bun.spawn([process.execPath, join(ROOT, "bin", "slotbus.ts"), "hub", "--port", String(port), "--token-file", tokenFile, "--spawn", worker, "--instances", "2"], { stdout: "pipe", stderr: "pipe" })
  let out = ""
  void (async () => {
    for await (const c of hub.stdout) out += new TextDecoder().decode(c)
  })()
  const ready = () => [...out.matchAll(/^ready (\d+)$/gm)].map((m) => Number(m[1]))
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch {
      return false
    }
  }
  try {
    await until(() => ready().length === 2, "two workers ready")
    const [victim, survivor] = ready() as [number, number]
    expect((await fetch(`${url}/items/7`)).status).toBe(200)
    process.kill(victim, "SIGKILL")
    await until(() => ready().length === 3, "a replacement worker")
    expect(out).toMatch(/worker \d exited; restarting in \d+ ms/)
    const replacement = ready()[2]!
    expect(replacement).not.toBe(victim)
    await until(async () => (await fetch(`${url}/items/8`)).status === 200, "the hub to serve again")
    hub.kill("SIGTERM")
    expect(await hub.exited).toBe(0)
    await until(() => !alive(survivor) && !alive(replacement), "the workers to stop")
  } finally {
    if (hub.exitCode === null) hub.kill("SIGKILL")
    await hub.exited
  }
}, 60_000)
