// An app built with `bun build --compile` starts its workers (issue 47): the front is compiled, copied to a folder
// with no node_modules, and started; it supervises its workers (the same binary in a worker role, selfCommand, or
// a second compiled binary) and serves HTTP through bus.fetch; SIGTERM stops the front and every worker.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { selfCommand } from "../../src/index.ts"
import { isCompiled } from "../../src/core/ops/self-command.ts"
import { alive, busName, REPO, run, spawn, stopAll, until } from "../support/helpers.ts"

// The app as its docs write it: one entry, a role argument picks the worker.
const APP = `
import { SlotBus, selfCommand, superviseWorkers } from "slotbus"
import { dirname, join } from "node:path"

if (process.argv[2] === "worker") await import("./worker.ts")
else {
  const bus = await SlotBus.listen(process.env.APP_BUS!)
  const command =
    process.env.APP_WORKERS === "binary"
      ? [join(dirname(process.execPath), "worker")]
      : process.env.APP_WORKERS === "script" // what the issue tried: the compiled app runs itself again
        ? [process.execPath, "worker.ts"]
        : selfCommand("worker")
  const workers = superviseWorkers(bus, { command, instances: 2 })
  await bus.waitForWorkers(2, { timeoutMs: 20_000 })
  const server = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (req) => bus.fetch(req) })
  console.log("serving", server.port, workers.instances.map((i) => i.pid).join(" "))
  process.on("SIGTERM", async () => {
    await server.stop()
    await workers.stop()
    await bus.close()
    process.exit(0)
  })
}
`
const WORKER = `
import { SlotWorker } from "slotbus"
const worker = await SlotWorker.connect(process.env.APP_BUS!, (req) => req.method + " " + req.path + " from " + process.pid)
await worker.closed
process.exit(0)
`

let src: string // the sources, with node_modules/slotbus
let away: string // the two binaries alone
const workerPids: number[] = []

beforeAll(async () => {
  src = mkdtempSync(join(tmpdir(), "slotbus-compiled-src-"))
  away = mkdtempSync(join(tmpdir(), "slotbus-compiled-app-"))
  mkdirSync(join(src, "node_modules"))
  symlinkSync(REPO, join(src, "node_modules", "slotbus"))
  writeFileSync(join(src, "app.ts"), APP)
  writeFileSync(join(src, "worker.ts"), WORKER)
  for (const [entry, out] of [
    ["app.ts", "app"],
    ["worker.ts", "worker"],
  ]) {
    const build = await run([process.execPath, "build", "--compile", entry, "--outfile", join(away, out!)], {
      cwd: src,
    })
    if (build.code !== 0) throw new Error(`bun build --compile ${entry} failed: ${build.stderr}`)
  }
}, 120_000)

afterEach(async () => {
  await stopAll()
  for (const pid of workerPids.splice(0)) if (alive(pid)) process.kill(pid, "SIGKILL")
})
afterAll(() => {
  rmSync(src, { recursive: true, force: true })
  rmSync(away, { recursive: true, force: true })
})

/** Starts `argv` in `cwd` as the front, serves 16 requests at once through it, then stops it with SIGTERM. */
async function serveAndStop(argv: string[], cwd: string, env: Record<string, string> = {}) {
  const childEnv: Record<string, string | undefined> = { ...process.env, APP_BUS: busName("compiled"), ...env }
  delete childEnv.SLOTBUS_LIB // only what the binary carries
  const front = spawn(argv, { cwd, env: childEnv })
  const [, port, pids] = await front.whileAlive(front.waitLine(/^serving (\d+) (\d+ \d+)$/, 30_000))
  const workers = pids!.split(" ").map(Number)
  workerPids.push(...workers)
  const answers = await Promise.all(
    Array.from({ length: 16 }, (_, i) => fetch(`http://127.0.0.1:${port}/thumb/${i}`).then((r) => r.text())),
  )
  answers.forEach((a, i) => expect(a).toMatch(new RegExp(`^GET /thumb/${i} from (${workers.join("|")})$`)))
  const cmdlines = workers.map((pid) => readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").slice(0, -1))
  const exes = workers.map((pid) => readlinkSync(`/proc/${pid}/exe`))
  front.signal("SIGTERM")
  expect(await front.exited).toBe(0)
  await until(() => workers.every((pid) => !alive(pid)), "the workers are gone")
  return { cmdlines, exes, stderr: front.stderr }
}

describe("a compiled front starts its workers", () => {
  test("as itself in a worker role (selfCommand), serving HTTP from a folder without node_modules", async () => {
    const r = await serveAndStop([join(away, "app")], away)
    expect(r.cmdlines).toEqual([
      [join(away, "app"), "worker"],
      [join(away, "app"), "worker"],
    ])
    expect(r.exes).toEqual([join(away, "app"), join(away, "app")])
    expect(r.stderr).toBe("")
  }, 60_000)

  test("as a second compiled binary next to it", async () => {
    const r = await serveAndStop([join(away, "app")], away, { APP_WORKERS: "binary" })
    expect(r.exes).toEqual([join(away, "worker"), join(away, "worker")])
    expect(r.stderr).toBe("")
  }, 60_000)

  test('given [process.execPath, "worker.ts"], it fails at once with a TypeError naming selfCommand, starting nothing', async () => {
    const childEnv: Record<string, string | undefined> = {
      ...process.env,
      APP_BUS: busName("compiled"),
      APP_WORKERS: "script",
    }
    delete childEnv.SLOTBUS_LIB
    const r = await run([join(away, "app")], { cwd: away, env: childEnv, timeoutMs: 30_000 })
    expect(r.code).not.toBe(0) // before: NameInUseError from each worker until the pool gave up
    expect(r.stderr).toContain("TypeError")
    expect(r.stderr).toContain('selfCommand("worker")')
    expect(r.stdout).not.toContain("serving")
  }, 60_000)

  test("and the same entry run by bun, not compiled, starts them with bun and the entry file", async () => {
    const r = await serveAndStop([process.execPath, "app.ts"], src)
    expect(r.cmdlines).toEqual([
      [process.execPath, join(src, "app.ts"), "worker"],
      [process.execPath, join(src, "app.ts"), "worker"],
    ])
  }, 60_000)
})

test("selfCommand here (bun, not compiled) is bun, the entry file and the arguments; a non-string is a TypeError", () => {
  expect(isCompiled()).toBe(false)
  expect(selfCommand("worker", "--idle", "park")).toEqual([process.execPath, Bun.main, "worker", "--idle", "park"])
  expect(() => selfCommand(5 as never)).toThrow(TypeError)
  expect(() => selfCommand("a\0b")).toThrow(TypeError)
})
