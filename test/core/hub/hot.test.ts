// `bun --hot` re-runs a server module in the same process: its SlotBus.listen must get the open bus back.
import { afterEach, expect, test } from "bun:test"
import { bunChild, busName, type Child, ECHO_WORKER, REPO, spawn } from "../../support/helpers.ts"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NameInUseError, SlotBus } from "../../../src/index.ts"
import { rejection } from "../../support/helpers.ts"

const children: Child[] = []
afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill()))
})

/** A Bun.serve module that hands every request to the bus's workers and marks the answer with its version. */
const serverModule = (name: string, version: number) => `
import { SlotBus } from ${JSON.stringify(join(REPO, "src/index.ts"))}
const bus = await SlotBus.listen(${JSON.stringify(name)}, { slots: 8 })
const server = Bun.serve({
  port: Number(process.env.PORT),
  fetch: async (req) => {
    const res = await bus.fetch(req)
    return new Response(res.body, { status: res.status, headers: { "x-version": "${version}" } })
  },
})
process.once("SIGTERM", () => void bus.close().then(() => process.exit(0)))
console.log("serving v${version} on " + server.port + " with " + bus.workerCount + " workers")
`

test("a server module reloaded twice by bun --hot keeps its bus (no NameInUseError) and keeps serving through it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-hot-"))
  const name = busName("hot")
  const file = join(dir, "server.ts")
  try {
    writeFileSync(file, serverModule(name, 1))
    const probe = Bun.serve({ port: 0, fetch: () => new Response() })
    const port = probe.port
    probe.stop(true)
    const server = spawn([process.execPath, "--hot", file], { env: { ...process.env, PORT: String(port) }, cwd: dir })
    children.push(server)
    await server.waitLine(/^serving v1 on \d+ with 0 workers$/)
    const worker = bunChild("core/api-worker.ts", [name])
    children.push(worker)
    await worker.waitLine(/^ready$/)
    const ask = async () => {
      const res = await fetch(`http://127.0.0.1:${port}/echo`, { method: "POST", body: "through the bus" })
      return [res.headers.get("x-version"), await res.text()]
    }
    expect(await ask()).toEqual(["1", "through the bus"])

    for (const version of [2, 3]) {
      writeFileSync(file, serverModule(name, version))
      // the same bus came back: the worker connected to the first copy is still there
      await server.waitLine(new RegExp(`^serving v${version} on ${port} with 1 workers$`))
      expect(await ask()).toEqual([String(version), "through the bus"])
    }
    expect(server.stderr).not.toContain("NameInUseError")
    expect(worker.lines).not.toContain("closed hub-closed")
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 30_000)

/** A server module that supervises two workers for its bus, and says which worker processes it has. */
const supervisingModule = (name: string, version: number) => `
import { SlotBus, superviseWorkers } from ${JSON.stringify(join(REPO, "src/index.ts"))}
const bus = await SlotBus.listen(${JSON.stringify(name)}, { slots: 8 })
const pool = superviseWorkers(bus, { command: [process.execPath, ${JSON.stringify(ECHO_WORKER)}, ${JSON.stringify(name)}], instances: 2, stdout: "ignore" })
await bus.waitForWorkers(2)
process.once("SIGTERM", () => void pool.stop().then(() => bus.close()).then(() => process.exit(0)))
console.log("v${version} pool " + pool.instances.map((i) => i.pid).join(",") + " bus " + bus.workers.map((w) => w.pid).sort().join(","))
`

test("superviseWorkers in a module reloaded by bun --hot keeps exactly its instances (before: two more each save)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-hot-pool-"))
  const name = busName("hot-pool")
  const file = join(dir, "server.ts")
  try {
    writeFileSync(file, supervisingModule(name, 1))
    const server = spawn([process.execPath, "--hot", file], { cwd: dir })
    children.push(server)
    const first = await server.waitLine(/^v1 pool (\d+),(\d+) bus (.*)$/)
    const pool = `${first[1]},${first[2]}`
    const pids = [first[1], first[2]].sort().join(",")
    expect(first[3]).toBe(pids)
    for (const version of [2, 3]) {
      writeFileSync(file, supervisingModule(name, version))
      // the same two processes, and no others connected to the bus
      const line = await server.waitLine(new RegExp(`^v${version} pool (.*) bus (.*)$`))
      expect([line[1], line[2]]).toEqual([pool, pids])
    }
    server.signal("SIGTERM")
    await server.exited
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}, 30_000)

test("without hot, a second listen of a name this process listens under says so; with { hot: true } it returns the same bus", async () => {
  await using bus = await SlotBus.listen(busName("twice"), { slots: 2 })
  const e = await rejection(SlotBus.listen(bus.name, { slots: 2 }))
  expect(e).toBeInstanceOf(NameInUseError)
  expect((e as Error).message).toContain("this process already listens")
  expect(await SlotBus.listen(bus.name, { slots: 2, hot: true })).toBe(bus)
  const other = await rejection(SlotBus.listen(bus.name, { slots: 4, hot: true }))
  expect((other as Error).message).toContain("other options")
})
