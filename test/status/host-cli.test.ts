// `slotbus ls`, `slotbus requests` and `slotbus top` run as real subprocesses against an app that serves no
// status (test/support/status/host-app.ts) and real worker processes: what they find comes from the flight recorder
// files (docs/PROTOCOL.md §16) and /proc alone.
import { afterAll, beforeAll, describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { RecConst, RecHeader, recorderDir } from "../../src/native/recorder-layout.ts"
import { alive, busName, type Child, REPO, spawn, spawnWorker, until } from "../support/helpers.ts"
import { zigBuild } from "../../scripts/zig.ts"
import { forgeRecorder, hostCli as cli, undoAfterEach } from "../support/status/host-files.ts"

const HOST_APP = join(REPO, "test", "support", "status", "host-app.ts")

const cleanups = undoAfterEach()

// This file's fronts, and the CLI it runs, keep their recorder files in a directory of their own ($XDG_RUNTIME_DIR,
// §16.1): a bus that another test file opens meanwhile sweeps the files of dead fronts in the shared one, the stale
// file the kill -9 test reads included.
const xdgBefore = process.env.XDG_RUNTIME_DIR
beforeAll(() => {
  process.env.XDG_RUNTIME_DIR = mkdtempSync(join(tmpdir(), "host-cli-xdg-")) // 0700, ours
})
afterAll(() => {
  rmSync(process.env.XDG_RUNTIME_DIR!, { recursive: true, force: true })
  if (xdgBefore === undefined) delete process.env.XDG_RUNTIME_DIR
  else process.env.XDG_RUNTIME_DIR = xdgBefore
})

interface BusJson {
  name: string
  pid: number
  state: string
  file?: string
  workers?: number
  workerPids?: number[]
  inFlight?: number
  queued?: number
  requests?: number
  workerGone?: number
}
interface RequestJson {
  what: string
  workerPid: number
  phase: string
  outcome: string
  status: number
  ranMs: number
  queuedMs: number
  startedAt: string
  frontGone?: true
}

async function front(name: string, flags: string[]): Promise<Child> {
  const app = spawn([process.execPath, HOST_APP, "front", name, ...flags])
  cleanups.push(async () => {
    await app.kill() // kill -9 leaves its file (stale): remove it as the next bus to listen would
    const file = join(recorderDir(), `${name}.${app.pid}.rec`)
    if (existsSync(file)) unlinkSync(file)
  })
  await app.waitLine(/^ready$/, 20_000)
  return app
}

/** An app with `workers` echo worker processes, `fast` answered requests and `hold` requests held 60 s. */
async function appWithWorkers(workers: number, fast: number, hold: number) {
  const name = busName("host")
  const app = await front(name, [`--workers=${workers}`, `--fast=${fast}`, `--hold=${hold}`])
  const procs: Child[] = []
  for (let i = 0; i < workers; i++) procs.push(await spawnWorker(name))
  await app.waitLine(/^sent$/, 20_000)
  return { name, app, workers: procs }
}

/** Root may start a process under a pid of its choice (Linux: clone3's set_tid, as csrc/test/pid_at.c does). */
const canReusePid = process.platform === "linux" && process.getuid?.() === 0

/** A process (sleep) under `pid`, a dead process's. clone3 asks for that pid exactly, so no fork elsewhere on a
 * busy machine can take it first, as one could between a write of ns_last_pid and our fork. */
async function spawnWithPid(pid: number): Promise<number> {
  const pidAt = spawn([join(await zigBuild("pid-at"), "pid-at"), String(pid), "sleep", "60"])
  cleanups.push(async () => {
    if (alive(pid)) process.kill(pid, "SIGKILL") // pid-at then exits with it
    await pidAt.exited
  })
  const [line] = await pidAt.waitLine(/^\d+$/)
  return Number(line)
}

/** What another test file running beside this one does: a bus opened and closed in the user's shared recorder
 * directory, whose listen sweeps the files of dead fronts there (§16.1). */
async function busOpenedElsewhere() {
  const env = { ...process.env, XDG_RUNTIME_DIR: xdgBefore }
  const code = `const { SlotBus } = await import(${JSON.stringify(join(REPO, "src", "index.ts"))})
    await (await SlotBus.listen(${JSON.stringify(busName("host-elsewhere"))})).close({ drain: false })`
  const child = spawn([process.execPath, "-e", code], { env })
  expect(await child.exited).toBe(0)
}

async function lsBus(name: string): Promise<BusJson | undefined> {
  const r = await cli("ls", "--json")
  expect(r.code).toBe(0)
  return (r.json().buses as BusJson[]).find((b) => b.name === name)
}

// /proc (Linux, either backend: test/status runs them on the portable one too with SLOTBUS_PLATFORM=posix)
describe.skipIf(!existsSync("/proc/net/unix"))("slotbus ls, requests and top, from another process", () => {
  test("ls finds a bus, a topic and a contest with their pids, workers, in-flight and queued counts", async () => {
    const { name, app, workers } = await appWithWorkers(2, 3, 3)
    const member = spawn([process.execPath, HOST_APP, "member", name])
    await member.waitLine(/^ready$/, 20_000)
    // 2 workers of 1 slot each: two holds in flight, the third queued
    await until(async () => (await lsBus(name))?.inFlight === 2, "both holds are in flight", 20_000, 100)
    const r = await cli("ls", "--json")
    expect(r.code).toBe(0)
    const view = r.json()
    const bus = (view.buses as BusJson[]).find((b) => b.name === name)!
    expect(bus).toMatchObject({ pid: app.pid, state: "live", workers: 2, inFlight: 2, queued: 1, requests: 5 })
    expect(bus.workerPids!.sort()).toEqual(workers.map((w) => w.pid).sort())
    const both = [app.pid, member.pid].sort((a, b) => a - b)
    expect(view.topics).toContainEqual({ name, pids: both })
    expect(view.contests).toContainEqual({ name, pids: both })

    const text = await cli("ls")
    expect(text.code).toBe(0)
    const line = text.stdout.split("\n").find((l) => l.startsWith("bus") && l.includes(` ${name} `))!
    expect(line).toContain(String(app.pid))
    expect(line).toContain("live")
    expect(text.stdout).toMatch(new RegExp(`topic\\s+${name}\\s+${both.join(",")}`))
    expect(text.stdout).toMatch(new RegExp(`contest\\s+${name}\\s+${both.join(",")}`))
  }, 90_000)

  test("requests shows the requests in flight and the finished ones with their paths, worker pids and outcomes", async () => {
    const { name, workers } = await appWithWorkers(2, 3, 2)
    const pids = workers.map((w) => w.pid)
    await until(async () => (await lsBus(name))?.inFlight === 2, "both holds are in flight", 20_000, 100)
    const r = await cli("requests", name, "--json")
    expect(r.code).toBe(0)
    const reqs = r.json().requests as RequestJson[]
    const holds = reqs.filter((q) => q.what.startsWith("GET /hold-"))
    expect(holds.map((q) => q.what).sort()).toEqual(["GET /hold-0", "GET /hold-1"])
    for (const q of holds) expect(q).toMatchObject({ phase: "in flight", outcome: "" })
    expect(holds.map((q) => q.workerPid).sort()).toEqual([...pids].sort()) // one on each worker
    const fast = reqs.filter((q) => q.what.startsWith("GET /fast-"))
    expect(fast.map((q) => q.what).sort()).toEqual(["GET /fast-0", "GET /fast-1", "GET /fast-2"])
    for (const q of fast) {
      expect(q).toMatchObject({ phase: "done", outcome: "answered", status: 200 })
      expect(pids).toContain(q.workerPid)
    }
    // in flight first, then the newest finished
    expect(reqs.slice(0, 2).every((q) => q.phase === "in flight")).toBe(true)

    const text = await cli("requests", name)
    expect(text.code).toBe(0)
    const hold = text.stdout.split("\n").find((l) => l.includes("GET /hold-0"))!
    expect(hold).toContain("in flight")
    expect(hold).toContain(String(holds.find((q) => q.what === "GET /hold-0")!.workerPid))
    // --slow leaves out what ran less: the holds are still running, the fast ones took far less than a minute
    const slow = await cli("requests", name, "--slow", "60000", "--json")
    expect((slow.json().requests as RequestJson[]).length).toBe(0)
  }, 90_000)

  test("requests --limit holds when more requests are in flight than the limit: the oldest are left out", async () => {
    const { name } = await appWithWorkers(5, 3, 5) // each worker holds one (1 slot each)
    await until(async () => (await lsBus(name))?.inFlight === 5, "five holds are in flight", 20_000, 100)
    const all = (await cli("requests", name, "--json")).json().requests as RequestJson[]
    expect(all.filter((q) => q.phase === "in flight")).toHaveLength(5)
    const r = await cli("requests", name, "--limit", "3", "--json")
    expect(r.code).toBe(0)
    const some = r.json().requests as RequestJson[]
    expect(some.map((q) => q.what)).toEqual(all.slice(0, 3).map((q) => q.what)) // the newest, in flight first
    const text = await cli("requests", name, "--limit", "3")
    expect(text.stdout.split("\n").filter((l) => l.includes("GET /hold-"))).toHaveLength(3)
  }, 90_000)

  test("a worker killed with kill -9 in the middle of a request: its pid, how long it ran and worker gone stay readable", async () => {
    const { name, app, workers } = await appWithWorkers(1, 1, 1)
    const victim = workers[0]!
    await until(async () => (await lsBus(name))?.inFlight === 1, "the hold is in flight", 20_000, 100)
    await victim.kill("SIGKILL")
    await app.waitLine(/^failed \/hold-0 WorkerGoneError$/, 20_000)
    expect(alive(victim.pid)).toBe(false)
    const r = await cli("requests", name, "--json")
    expect(r.code).toBe(0)
    const hold = (r.json().requests as RequestJson[]).find((q) => q.what === "GET /hold-0")!
    expect(hold).toMatchObject({ workerPid: victim.pid, phase: "done", outcome: "worker gone", status: 0 })
    expect(hold.ranMs).toBeGreaterThan(0)
    expect(Date.parse(hold.startedAt)).toBeLessThanOrEqual(Date.now())
    const bus = await lsBus(name)
    expect(bus).toMatchObject({ workers: 0, inFlight: 0, workerGone: 1 })
    const text = await cli("requests", name)
    const line = text.stdout.split("\n").find((l) => l.includes("GET /hold-0"))!
    expect(line).toContain("worker gone")
    expect(line).toContain(String(victim.pid))
  }, 90_000)

  test("a front killed with kill -9 leaves its file stale: ls says so, requests still reads it, nothing crashes", async () => {
    const { name, app } = await appWithWorkers(1, 2, 1)
    await until(async () => (await lsBus(name))?.inFlight === 1, "the hold is in flight", 20_000, 100)
    const file = (await lsBus(name))!.file!
    cleanups.push(() => existsSync(file) && unlinkSync(file))
    await app.kill("SIGKILL")
    await busOpenedElsewhere()
    const bus = await lsBus(name)
    expect(bus).toMatchObject({ pid: app.pid, file })
    // or, on a machine that made ~32k processes and threads since (the pid wrapped round), another process's pid:
    // the next test makes that happen
    expect(bus!.state).toMatch(/^stale: (its front \(pid \d+\) is gone|pid \d+ is another process now)$/)
    const r = await cli("requests", name, "--json")
    expect(r.code).toBe(0)
    expect(r.json().bus.state).toMatch(/^stale/)
    const reqs = r.json().requests as RequestJson[]
    // what the dead front was doing when it died: the hold was still out
    const hold = reqs.find((q) => q.what === "GET /hold-0")
    expect(hold).toMatchObject({ phase: "in flight", frontGone: true })
    expect(reqs.filter((q) => q.outcome === "answered").map((q) => q.what)).toEqual(["GET /fast-1", "GET /fast-0"])
    // it stopped when its front died: its time does not run on (it grew with each look, as if still running)
    await Bun.sleep(1100)
    const later = (await cli("requests", name, "--json")).json().requests as RequestJson[]
    expect(later.find((q) => q.what === "GET /hold-0")!.ranMs).toBe(hold!.ranMs)
    expect((await cli("requests", name)).stdout).toMatch(/in flight, front gone .*GET \/hold-0/)
    const text = await cli("ls")
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(new RegExp(`bus\\s+${name}\\s+${app.pid}.*stale`))
  }, 90_000)

  test("top shows a front killed with kill -9 as requests does: its request in flight when it died, its time stopped", async () => {
    const { name, app } = await appWithWorkers(1, 1, 1)
    await until(async () => (await lsBus(name))?.inFlight === 1, "the hold is in flight", 20_000, 100)
    const file = (await lsBus(name))!.file!
    cleanups.push(() => existsSync(file) && unlinkSync(file))
    await app.kill("SIGKILL")
    const holdLine = async (...args: string[]) =>
      (await cli(...args)).stdout.split("\n").find((l) => l.includes("GET /hold-0"))
    const shown = await holdLine("requests", name)
    expect(shown).toMatch(/in flight, front gone .*\+/)
    const ran = (line: string | undefined) => /(\S+)\+/.exec(line ?? "")?.[1]
    // main: "in flight … 1.23s…", growing with each frame, as if the dead front's request still ran
    const first = await holdLine("top", name, "--once")
    expect(first).toMatch(/in flight, front gone /)
    expect(ran(first)).toBe(ran(shown))
    await Bun.sleep(1100)
    expect(ran(await holdLine("top", name, "--once"))).toBe(ran(shown))
  }, 90_000)

  test.skipIf(!canReusePid)(
    "a front killed with kill -9 whose pid another process took since: ls says stale, that pid is another process now",
    async () => {
      const { name, app } = await appWithWorkers(1, 1, 0)
      const file = (await lsBus(name))!.file!
      cleanups.push(() => existsSync(file) && unlinkSync(file))
      await app.kill("SIGKILL")
      expect(await spawnWithPid(app.pid)).toBe(app.pid)
      const bus = await lsBus(name)
      expect(bus).toMatchObject({ pid: app.pid, file, state: `stale: pid ${app.pid} is another process now` })
      const r = await cli("requests", name, "--json")
      expect(r.code).toBe(0)
      expect(r.json().bus.state).toBe(`stale: pid ${app.pid} is another process now`)
    },
    90_000,
  )

  test("junk in the recorder directory (another process writing it) is reported and skipped; the rest is listed", async () => {
    const bus = await SlotBus.listen(busName("host-junk"))
    cleanups.push(() => bus.close({ drain: false }))
    const dir = recorderDir()
    const at = (f: string) => join(dir, `${f}-${process.pid}.${process.pid}.rec`)
    const header = (count: number, name: string) =>
      forgeRecorder({ name, pid: process.pid, count, uid: process.geteuid?.(), headerOnly: true })
    const junk: [string, string | Buffer | null, RegExp][] = [
      [at("noise"), Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 7919) & 255)), /bad magic/],
      [at("short"), Buffer.from("hello"), /shorter than the 4096-byte header/],
      [
        at("huge"),
        header(RecConst.MAX_RECORDS, `huge-${process.pid}`),
        /record_count 65536 needs \d+ bytes; the file has 4096/,
      ],
      [
        at("liar"),
        Buffer.concat([header(1, "someone-else"), Buffer.alloc(RecConst.RECORD_BYTES)]),
        /its header names bus "someone-else"/,
      ],
      [at("fifo"), null, /not a regular file/],
      [at("link"), "/etc/passwd", /cannot open it \(ELOOP\)/],
      [join(dir, `notes-${process.pid}.txt`), "not mine", /not a recorder file's name/],
    ]
    // records of impossible values behind a good header: skipped as torn or impossible, never shown
    const garbage = Buffer.alloc(4 * RecConst.RECORD_BYTES, 0xff)
    garbage.writeUInt32LE(2, 0) // an even seq, then phase 0xffffffff
    const hostile = at("garbage")
    for (const [path, content] of junk) {
      cleanups.push(() => existsSync(path) && unlinkSync(path))
      if (content === null) execFileSync("mkfifo", [path])
      else if (path.endsWith("link-" + `${process.pid}.${process.pid}.rec`)) symlinkSync(content as string, path)
      else writeFileSync(path, content)
    }
    cleanups.push(() => existsSync(hostile) && unlinkSync(hostile))
    writeFileSync(hostile, Buffer.concat([header(4, `garbage-${process.pid}`), garbage]))

    const r = await cli("ls", "--json")
    expect(r.code).toBe(0)
    const view = r.json()
    const problems = view.problems as { path: string; malformed: string }[]
    for (const [path, , why] of junk) expect(problems.find((p) => p.path === path)?.malformed).toMatch(why)
    expect(view.buses).toContainEqual(expect.objectContaining({ name: bus.name, pid: process.pid, state: "live" }))
    expect(view.buses).toContainEqual(expect.objectContaining({ name: `garbage-${process.pid}`, requests: 0 }))
    const g = await cli("requests", `garbage-${process.pid}`, "--json")
    expect(g.code).toBe(0)
    expect(g.json().requests).toEqual([])

    const text = await cli("ls")
    expect(text.code).toBe(0)
    for (const [path] of junk) expect(text.stdout).toContain(`skipped ${path}: `)
    expect(text.stdout).toContain(bus.name)
  }, 60_000)

  test("a bus listening with recorder: false is listed from its socket, and requests says it keeps no file", async () => {
    const bus = await SlotBus.listen(busName("host-off"), { recorder: false })
    cleanups.push(() => bus.close({ drain: false }))
    expect(await lsBus(bus.name)).toEqual({ name: bus.name, pid: process.pid, state: "no recorder" })
    const r = await cli("requests", bus.name)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`bus "${bus.name}" (pid ${process.pid}) keeps no flight recorder file`)
  }, 60_000)

  test("top --once shows a bus's rate, its workers' latency and its slowest request", async () => {
    const { name, workers } = await appWithWorkers(1, 3, 1)
    await until(async () => (await lsBus(name))?.inFlight === 1, "the hold is in flight", 20_000, 100)
    const r = await cli("top", name, "--once")
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(new RegExp(`bus ${name}\\s+pid \\d+\\s+live\\s+[\\d.]+ req/s\\s+1 workers\\s+1 in flight`))
    expect(r.stdout).toMatch(new RegExp(`^${workers[0]!.pid}\\s+1\\s+4\\s+3\\s`, "m")) // in flight, requests, done lately
    expect(r.stdout).toContain("GET /hold-0")
  }, 60_000)

  test("top's p50 and p99 are nearest ranks, as bus.stats() and /metrics take them: of a fast and a slow request, p50 is the fast one", async () => {
    const name = busName("host")
    const app = await front(name, ["--workers=1", "--fast=1", "--slow=1"])
    const worker = await spawnWorker(name)
    await app.waitLine(/^sent$/, 20_000)
    const r = await cli("top", name, "--once")
    expect(r.code).toBe(0)
    const row = r.stdout.split("\n").find((l) => l.startsWith(`${worker.pid} `))
    const [, , , done, p50, p99, max] = row!.trim().split(/\s+/)
    expect(done).toBe("2")
    expect(p99).toBe(max!)
    expect(p50).not.toBe(max)
  }, 60_000)

  test("top of a bus nobody runs exits 2 naming it; ls, top and requests take --help; ls takes no argument", async () => {
    const r = await cli("top", `nobody-${process.pid}`, "--once")
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`no bus named "nobody-${process.pid}" on this host`)
    for (const c of ["ls", "top", "requests"]) {
      const h = await cli(c, "--help")
      expect([c, h.code, h.stdout]).toEqual([c, 0, expect.stringContaining(`usage: slotbus ${c}`)])
    }
    const extra = await cli("ls", "extra")
    expect([extra.code, extra.stderr.trim()]).toEqual([2, "slotbus ls: no argument, got extra"])
    // each takes its own options only (top --json printed text, exit 0, to a script that wanted JSON)
    for (const [c, option] of [
      ["top", "--json"],
      ["ls", "--slow=3"],
      ["ls", "--once"],
      ["requests", "--once"],
    ]) {
      const wrong = await cli(c!, option!)
      expect([wrong.code, wrong.stdout]).toEqual([2, ""])
      expect(wrong.stderr).toStartWith(
        `slotbus ${c}: --${option!.slice(2).split("=")[0]} is not an option of this command; usage: slotbus ${c}`,
      )
    }
    const unnamed = await cli("requests")
    expect([unnamed.code, unnamed.stderr.trim()]).toEqual([
      2,
      "slotbus requests: name the bus: slotbus requests <bus> (`slotbus ls` lists them)",
    ])
  }, 60_000)

  test("top into a pipe writes frame after frame, no terminal escapes", async () => {
    const top = spawn([process.execPath, join(REPO, "bin", "slotbus.ts"), "top"])
    try {
      const frames = () => top.lines.filter((l) => l.includes("slotbus top — "))
      await until(() => frames().length >= 2, "two frames", 20_000)
      expect(frames().every((l) => l.startsWith("slotbus top — "))).toBe(true)
      expect(top.lines.join("\n")).not.toContain("\x1b")
    } finally {
      await top.kill()
    }
  }, 60_000)

  test("a front's request counter that goes down between frames is a new file: top says - req/s, never a negative rate", async () => {
    const name = busName("host-rate")
    const file = join(recorderDir(), `${name}.${process.pid}.rec`) // a live front of ours: this process
    mkdirSync(recorderDir(), { recursive: true, mode: 0o700 })
    cleanups.push(() => rmSync(file, { force: true }))
    const forged = forgeRecorder({ name, pid: process.pid, count: 1, uid: process.geteuid!() })
    forged.writeBigUInt64LE(1_000_000n, RecHeader.requests)
    writeFileSync(file, forged, { mode: 0o600 })
    const top = spawn([process.execPath, join(REPO, "bin", "slotbus.ts"), "top", name])
    try {
      const rates = () => top.lines.filter((l) => l.startsWith(`bus ${name} `))
      await until(() => rates().some((l) => l.includes(" 0.0 req/s")), "a frame with its rate", 20_000)
      forged.writeBigUInt64LE(10n, RecHeader.requests) // a new front at that path: its count starts again
      writeFileSync(file, forged)
      await until(() => rates().some((l) => l.includes(" 10 requests")), "a frame of the new count", 20_000)
      await until(() => rates().filter((l) => l.includes(" 10 requests")).length >= 2, "another frame", 20_000)
      // main: "-999990.0 req/s" the frame after
      expect(rates().filter((l) => / -\d[\d.]* req\/s/.test(l))).toEqual([])
      expect(rates().find((l) => l.includes(" 10 requests"))).toContain(" - req/s")
    } finally {
      await top.kill()
    }
  }, 60_000)

  test("requests of a bus nobody runs exits 2 naming it; a bad option exits 2", async () => {
    const r = await cli("requests", `nobody-${process.pid}`)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`no bus named "nobody-${process.pid}" on this host`)
    const bad = await cli("requests", "x", "--slow", "soon")
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--slow takes a number ≥ 0, got "soon"')
    // node:util's complaint is sentences on lines of their own: one line, no "\n" escaped into it (it had them)
    const dash = await cli("requests", "x", "--limit", "-1")
    expect([dash.code, dash.stderr.trim().split("\n").length]).toEqual([2, 1])
    expect(dash.stderr).toContain("argument is ambiguous. Did you forget")
  }, 60_000)
})
