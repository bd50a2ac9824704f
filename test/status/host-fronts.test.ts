// `slotbus requests`, `top` and `ls` of a name several shared fronts listen under (docs/PROTOCOL.md §15) read every
// front's flight recorder file: a slow request on any front is shown, with the front that holds it. Real fronts
// (test/support/status/host-app.ts --shared), a real worker serving both, the CLI as a subprocess.
import { describe, expect, test } from "bun:test"
import { existsSync, unlinkSync } from "node:fs"
import { join } from "node:path"
import { recorderDir } from "../../src/native/recorder-layout.ts"
import { busName, type Child, REPO, spawn, spawnWorker, until } from "../support/helpers.ts"
import { hostCli as cli, undoAfterEach } from "../support/status/host-files.ts"

const cleanups = undoAfterEach()

/** Two shared fronts of one name, each holding one request 60 s on the one worker that serves both. */
async function twoFrontsHolding(): Promise<{ name: string; fronts: Child[]; worker: Child }> {
  const name = busName("fronts")
  const fronts: Child[] = []
  for (let i = 0; i < 2; i++) {
    const app = spawn([
      process.execPath,
      join(REPO, "test", "support", "status", "host-app.ts"),
      "front",
      name,
      "--shared",
      "--workers=1",
      "--hold=1",
    ])
    cleanups.push(async () => {
      await app.kill()
      const file = join(recorderDir(), `${name}.${app.pid}.rec`)
      if (existsSync(file)) unlinkSync(file)
    })
    await app.waitLine(/^ready$/, 20_000)
    fronts.push(app)
  }
  const worker = await spawnWorker(name)
  cleanups.push(() => worker.kill())
  for (const f of fronts) await f.waitLine(/^sent$/, 20_000)
  return { name, fronts, worker }
}

const pidsOf = (fronts: Child[]) => fronts.map((f) => f.pid).sort((a, b) => a - b)

describe.skipIf(!existsSync("/proc/net/unix"))("the host's view of a name with several fronts", () => {
  test("requests --slow shows the slow request of every front, each with its front's pid", async () => {
    const { name, fronts } = await twoFrontsHolding()
    const slow = async () => {
      const r = await cli("requests", name, "--slow", "200", "--json")
      expect(r.code).toBe(0)
      return r.json() as { fronts: { pid: number }[]; requests: { what: string; frontPid: number; phase: string }[] }
    }
    await until(async () => (await slow()).requests?.length === 2, "both holds ran past 200 ms", 20_000, 200)
    const j = await slow()
    expect(j.requests.map((q) => q.frontPid).sort((a, b) => a - b)).toEqual(pidsOf(fronts))
    for (const q of j.requests) expect(q).toMatchObject({ what: "GET /hold-0", phase: "in flight" })
    expect(j.fronts.map((b) => b.pid).sort((a, b) => a - b)).toEqual(pidsOf(fronts))
    const text = await cli("requests", name, "--slow", "200")
    expect(text.code).toBe(0)
    for (const f of fronts) expect(text.stdout).toMatch(new RegExp(`^\\d+\\s+${f.pid}\\s.*GET /hold-0`, "m"))
  }, 90_000)

  test("ls and top list every front of the name with its worker and its request in flight", async () => {
    const { name, fronts, worker } = await twoFrontsHolding()
    const ls = await cli("ls", "--json")
    const buses = (ls.json().buses as { name: string; pid: number; workerPids: number[]; inFlight: number }[]).filter(
      (b) => b.name === name,
    )
    expect(buses.map((b) => b.pid).sort((a, b) => a - b)).toEqual(pidsOf(fronts))
    for (const b of buses) expect(b).toMatchObject({ workerPids: [worker.pid], inFlight: 1 })
    const top = await cli("top", name, "--once")
    expect(top.code).toBe(0)
    for (const f of fronts) expect(top.stdout).toMatch(new RegExp(`bus ${name}\\s+pid ${f.pid}\\s+live.*1 in flight`))
  }, 90_000)
})
