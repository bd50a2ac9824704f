// Worker output told apart per worker (issue 59 item 7): a supervised pool's workers write through their front,
// each line prefixed with pool, instance and pid (or as JSON, or to rotated files), with hostile bytes escaped, long
// lines cut, a slow stdout costing dropped lines that are counted and said, never the front's memory.
import { afterEach, describe, expect, test } from "bun:test"
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  constants as fsc,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Supervisor, WorkerLogsError } from "../../../src/index.ts"
import { processCpuSeconds } from "../../../bench/lib/cpu.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../../support/uid.ts"
import { alive, busName, type Child, FIXTURES, run, spawn, stopAll, until } from "../../support/helpers.ts"

const FRONT = join(FIXTURES, "kit/logs-front.ts")
type Report = { start?: number; exit?: number; instance?: number; stats?: Stats | null }
type Stats = { lines: number; dropped: number; truncated: number; overBudget: number }
const dirs: string[] = []
const cleanups: (() => void)[] = []
/** Every worker a front reported: killed after each test, its front first (they also leave once it is gone). */
const workerPids = new Set<number>()

afterEach(async () => {
  await stopAll()
  for (const c of cleanups.splice(0)) c()
  for (const pid of workerPids) if (alive(pid)) process.kill(pid, "SIGKILL")
  workerPids.clear()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "slotbus-worker-logs-"))
  dirs.push(d)
  return d
}

/** A front (test/support/kit/logs-front.ts) with its workers' pids by instance, as it reported them over IPC. */
function startFront(cfg: { worker?: string[]; command?: string[]; instances?: number; logs?: unknown; bus?: string }) {
  const pids = new Map<number, number>()
  let stats: Stats | null | undefined
  const front: Child = spawn([process.execPath, FRONT, JSON.stringify(cfg)], {
    ipc: (m) => {
      const r = m as Report
      if (r.start) {
        pids.set(r.instance!, r.start)
        workerPids.add(r.start)
      }
      if (r.stats !== undefined) stats = r.stats
    },
  })
  const askStats = async (): Promise<Stats | null> => {
    stats = undefined
    front.send("stats")
    await until(() => stats !== undefined, "the front's stats")
    return stats!
  }
  return { front, pids, askStats }
}

const stderrLines = (c: Child) => c.stderr.split("\n")

describe("worker logs", () => {
  test("kill -9 of the front: a worker's last line, why it exits, is in the pool's log file, written by the worker", async () => {
    const dir = tempDir()
    const name = busName("lastw")
    const file = join(dir, `${name}.log`)
    const { front, pids } = startFront({ command: ["../echo-worker.ts", name], bus: name, logs: { dir } })
    await until(
      () => existsSync(file) && readFileSync(file, "utf8").includes("ready"),
      "the worker's ready line",
      30_000,
    )
    const pid = pids.get(0)!
    await front.kill() // kill -9: nothing reads the worker's stderr any more
    await until(() => !alive(pid), "the worker exited with its front", 30_000, 100)
    const lines = readFileSync(file, "utf8").split("\n")
    // why: the hub's close (hub-gone) or the front's death seen first (the front that started it is gone)
    const exits = `slotbus: worker ${pid} of "${name}" exits: `
    expect(lines.find((l) => l.includes(exits))).toMatch(
      new RegExp(`^\\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z \\[${name}#0 pid ${pid} stderr\\] slotbus: worker ${pid} `),
    )
  }, 60_000)

  test("kill -9 of a front that writes its workers' lines to its stderr: a worker's last line reaches that stderr, written by the worker", async () => {
    const name = busName("lastp")
    const { front, pids } = startFront({ command: ["../echo-worker.ts", name], bus: name })
    await until(() => pids.has(0), "the worker started", 30_000)
    const pid = pids.get(0)!
    await until(
      () => front.lines.some((l) => l.startsWith(`[${name}#0 pid ${pid}] `)),
      "the worker's first line",
      30_000,
    )
    await front.kill() // kill -9: nothing reads the worker's stderr pipe any more
    await until(() => !alive(pid), "the worker exited with its front", 30_000, 100)
    const exits = `[${name}#0 pid ${pid}] slotbus: worker ${pid} of "${name}" exits: `
    await until(
      () => stderrLines(front).some((l) => l.startsWith(exits)),
      "the worker's last line on the front's stderr",
      10_000,
    )
  }, 60_000)

  test("by default each worker's stdout and stderr lines reach the front's stdout and stderr prefixed with pool, instance and pid", async () => {
    const name = busName("logs")
    const { front, pids } = startFront({ worker: ["hello"], instances: 2, bus: name })
    await until(() => pids.size === 2, "both workers started", 20_000)
    await until(
      () => [0, 1].every((s) => stderrLines(front).some((l) => l.endsWith(`complaint from instance ${s}`))),
      "both workers' stderr lines",
      20_000,
    )
    await until(
      () => [0, 1].every((s) => front.lines.some((l) => l.endsWith(`hello from instance ${s}`))),
      "both workers' stdout lines",
      20_000,
    )
    for (const instance of [0, 1]) {
      const head = `[${name}#${instance} pid ${pids.get(instance)}]`
      expect(front.lines).toContain(`${head} hello from instance ${instance}`)
      expect(stderrLines(front)).toContain(`${head} complaint from instance ${instance}`)
    }
    expect(front.lines.join("\n")).not.toContain("complaint")
    expect(front.stderr).not.toContain("hello")
  }, 60_000)

  test('with logs: "json" each line is one JSON object with time, pool, instance, pid, stream and msg', async () => {
    const { front, pids } = startFront({ worker: ["hello"], logs: "json" })
    await until(() => front.lines.length > 0 && stderrLines(front).length > 1, "a line on each stream", 20_000)
    const out = JSON.parse(front.lines[0]!)
    const err = JSON.parse(stderrLines(front)[0]!)
    const pid = pids.get(0)
    expect(out).toEqual({
      time: expect.any(String),
      pool: "log-worker",
      instance: 0,
      pid,
      stream: "stdout",
      msg: "hello from instance 0",
    })
    expect(err).toEqual({
      time: expect.any(String),
      pool: "log-worker",
      instance: 0,
      pid,
      stream: "stderr",
      msg: "complaint from instance 0",
    })
    expect(Number.isNaN(Date.parse(out.time))).toBe(false)
  }, 60_000)

  test("terminal escapes and binary bytes arrive escaped, a 100 kB line is cut and marked, and the unterminated last line before kill -9 is kept", async () => {
    const once = join(tempDir(), "once")
    const { front, pids, askStats } = startFront({ worker: ["hostile", once] })
    await until(() => stderrLines(front).some((l) => l.includes("last words")), "the last words on stderr", 20_000)
    await until(() => front.lines.some((l) => l.includes("after the long line")), "the line after the long one", 20_000)
    const head = `[log-worker#0 pid ${pids.get(0)}]`
    const all = `${front.lines.join("\n")}\n${front.stderr}`
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach the front's terminal
    expect(all).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
    expect(front.lines).toContain(`${head} \\x1b]0;pwned\\x07\\x1b[2Jcolour \\x1b[31mred\\x1b[0m`)
    expect(front.lines).toContain(`${head} \ufffd\ufffd bin`)
    const long = front.lines.find((l) => l.startsWith(`${head} aaa`))!
    expect(long).toBe(`${head} ${"a".repeat(16_384)} [truncated]`)
    expect(front.lines).toContain(`${head} after the long line`)
    expect(stderrLines(front)).toContain(`${head} last words`)
    expect((await askStats())?.truncated).toBe(1)
  }, 60_000)

  test("a worker writing fast while the front's stdout is not read costs dropped lines, counted and said where they were, and holds a bounded part of the flood", async () => {
    const dir = tempDir()
    const fifo = join(dir, "stdout")
    expect((await run(["mkfifo", fifo])).code).toBe(0)
    const held = openSync(fifo, fsc.O_RDWR) // both ends: nobody reads until the test does, yet opening never blocks
    cleanups.push(() => closeSync(held))
    const n = 20_000
    let stats: Stats | null | undefined
    const front = Bun.spawn(
      [
        process.execPath,
        FRONT,
        JSON.stringify({
          worker: ["flood", String(n), join(dir, "once")],
          logs: { maxBufferedBytes: 65_536, maxLinesPerSecond: 1e9 },
        }),
      ],
      {
        stdin: "ignore",
        stdout: held,
        stderr: "pipe",
        ipc: (m) => {
          const r = m as Report
          if (r.start) workerPids.add(r.start)
          if (r.stats !== undefined) stats = r.stats
        },
      },
    )
    cleanups.push(() => front.kill("SIGKILL"))
    await until(
      async () => {
        stats = undefined
        front.send("stats")
        await until(() => stats !== undefined, "the front's stats")
        return stats !== null && stats!.lines === n + 1
      },
      "the front to have read every line of the flood",
      60_000,
      100,
    )
    expect(stats!.dropped).toBeGreaterThan(0)
    const reader = spawn(["cat", fifo])
    const count = (re: RegExp) => reader.lines.flatMap((l) => re.exec(l)?.[1] ?? []).map(Number)
    const seen = () => count(/^\[log-worker#0 pid \d+\] flood (\d{8}) x+$/)
    const said = () =>
      count(/^\[log-worker\] (\d+) lines dropped: the front's stdout was slow/).reduce((s, x) => s + x, 0)
    const ended = () => reader.lines.filter((l) => /^\[log-worker#0 pid \d+\] flood end$/.test(l)).length
    // every line of the flood (and its end) is either written or counted in a drop notice
    await until(() => seen().length + ended() + said() === n + 1, "every line written or said dropped", 30_000)
    expect(said()).toBe(stats!.dropped)
    expect(seen()).toEqual([...seen()].sort((x, y) => x - y))
    // what was written had waited while nobody read (the fifo, Bun's buffer, maxBufferedBytes): not the flood
    expect(seen().length).toBeLessThan(n / 4)
  }, 120_000)

  test("with logs: { dir, maxBytes, keep } lines go to 0600 files rotated by size, keep files kept, none on stdout", async () => {
    const dir = join(tempDir(), "logs")
    const { front, askStats } = startFront({
      worker: ["flood", "400", join(dir, "..", "once")],
      logs: { dir, maxBytes: 8192, keep: 2 },
    })
    await until(async () => (await askStats())?.lines === 401, "the flood read", 30_000, 100)
    await until(
      () => readFileSync(join(dir, "log-worker.log"), "utf8").includes("flood end"),
      "the last line in the file",
    )
    expect(readdirSync(dir).sort()).toEqual(["log-worker.log", "log-worker.log.1", "log-worker.log.2"])
    expect(statSync(dir).mode & 0o777).toBe(0o700)
    const text = ["log-worker.log.2", "log-worker.log.1", "log-worker.log"].map((f) => {
      const st = statSync(join(dir, f))
      expect(st.mode & 0o777).toBe(0o600)
      expect(st.size).toBeLessThanOrEqual(8192)
      return readFileSync(join(dir, f), "utf8")
    })
    const lines = text.join("").trimEnd().split("\n")
    for (const l of lines) expect(l).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[log-worker#0 pid \d+\] flood /)
    const numbers = lines.flatMap((l) => / flood (\d{8}) /.exec(l)?.[1] ?? []).map(Number)
    expect(numbers.at(-1)).toBe(399) // the newest lines, contiguous across the rotated files
    expect(numbers).toEqual(numbers.map((_, i) => 400 - numbers.length + i))
    expect(front.lines.join("\n")).not.toContain("flood")
  }, 60_000)

  test.skipIf(whyNotAsNobody(FRONT) !== null)(
    "logs.dir under another uid's directory: that uid swapping it for a link to another directory while the pool rotates leaves that directory untouched",
    async () => {
      // /tmp/shop is theirs, /tmp/shop/logs this user's: they cannot write in logs, but can rename it and put a
      // link in its place, to a directory of this user (victim) whose app.log they want rotated away
      const base = tempDir()
      chmodSync(base, 0o755)
      const shop = join(base, "shop")
      mkdirSync(shop, { mode: 0o755 })
      chownSync(shop, NOBODY, NOBODY)
      const dir = join(shop, "logs")
      const victim = join(base, "victim")
      mkdirSync(victim, { mode: 0o700 })
      writeFileSync(join(victim, "app.log"), "precious\n", { mode: 0o600 })
      const gate = join(base, "gate")
      const n = 20_000
      const { front, askStats } = startFront({
        worker: ["gated-flood", String(n), gate],
        logs: { dir, pool: "app", maxBytes: 4096, keep: 3, maxLinesPerSecond: 1e9 },
      })
      await until(async () => (await askStats()) !== null, "the front's pool", 30_000, 100)
      const real = join(shop, "real")
      const swap = `const { renameSync, symlinkSync, unlinkSync } = require("node:fs")
const [dir, real, victim] = ${JSON.stringify([dir, real, victim])}
for (let n = 1; ; n++) {
  try {
    renameSync(dir, real)
    symlinkSync(victim, dir)
    for (let i = 0; i < 20; i++) require("node:fs").statSync(dir)
    unlinkSync(dir)
    renameSync(real, dir)
  } catch (e) {
    console.error(e.message)
    process.exit(1)
  }
  if (n % 500 === 0) console.log(n)
}`
      const attacker = spawn(asNobody([process.execPath, "-e", swap]), { env: nobodyEnv })
      let stats: Stats | null = null
      try {
        await attacker.waitLine(/^\d+$/, 30_000)
        writeFileSync(gate, "")
        // every line of the flood is read; written (through the directory the pool opened) or counted dropped
        await until(async () => (stats = await askStats())?.lines === n + 1, "the flood read", 120_000, 100)
        expect(attacker.running).toBe(true) // swapping all along
      } finally {
        await attacker.kill()
        await front.kill()
      }
      // put the directory back where it was, whatever step the attacker was killed at
      if (lstatSync(dir, { throwIfNoEntry: false })?.isSymbolicLink()) rmSync(dir)
      if (existsSync(real)) renameSync(real, dir)
      expect(readdirSync(victim)).toEqual(["app.log"])
      expect(readFileSync(join(victim, "app.log"), "utf8")).toBe("precious\n")
      // and every line went to the directory the pool opened, whatever its path pointed at meanwhile
      expect(stats!.dropped).toBe(0)
      expect(readFileSync(join(dir, "app.log"), "utf8")).toContain("flood end")
    },
    180_000,
  )

  test("a worker logging in a loop gets its budget of lines a second through, the rest dropped and said once a second, and the front reads a bounded part of it", async () => {
    const { front, askStats } = startFront({ worker: ["spam"] }) // the default budget: 1000 lines a second
    const notice = /^\[log-worker#0 pid \d+\] (\d+) lines dropped: over the budget of 1000 lines a second$/
    const notices = () => front.lines.filter((l) => notice.test(l)).length
    await until(() => notices() >= 2, "the first budget notices", 30_000)
    const a = await askStats()
    const cpu0 = processCpuSeconds(front.pid)
    const t0 = performance.now()
    await until(() => notices() >= 5, "three more seconds of budget notices", 30_000)
    const b = await askStats()
    const seconds = (performance.now() - t0) / 1000
    const cpu = (processCpuSeconds(front.pid) - cpu0) / seconds
    // between two notices (a second), at most the budget of the worker's lines got through, in order
    let passed = 0
    let said = 0
    let last = -1
    for (const l of front.lines) {
      const m = notice.exec(l)
      if (m) {
        expect(passed).toBeLessThanOrEqual(1000)
        said += Number(m[1])
        passed = 0
        continue
      }
      const n = / spam (\d{8}) E+$/.exec(l)
      if (!n) continue
      expect(Number(n[1])).toBeGreaterThan(last)
      last = Number(n[1])
      passed++
    }
    expect(passed).toBeLessThanOrEqual(1000)
    expect(b!.overBudget).toBeGreaterThan(0)
    expect(said).toBeGreaterThan(0)
    expect(said).toBeLessThanOrEqual(b!.dropped) // the notices said what was dropped (the last second's comes later)
    // lines read (relayed or dropped) are bounded by maxReadBytesPerSecond (8 MiB, ~40 000 200-byte lines) a second,
    // not by how fast the worker writes: a front that read all of it read ~1.5 M lines a second
    expect(b!.lines - a!.lines).toBeLessThanOrEqual((seconds + 1) * ((8 << 20) / 200 + 1000))
    console.log(`front: ${cpu.toFixed(2)} core over ${seconds.toFixed(1)} s, ${b!.lines - a!.lines} lines read`)
    expect(cpu).toBeLessThan(0.4) // the old front spent 0.6-0.97 of a core relaying this worker
  }, 90_000)

  test('logs: "inherit" leaves the workers on the front\'s stdout and stderr as they are', async () => {
    const { front } = startFront({ worker: ["hello"], logs: "inherit" })
    await front.waitLine(/hello/, 20_000)
    await until(() => front.stderr.includes("complaint"), "the stderr line", 20_000)
    expect(front.lines).toContain("hello from instance 0")
    expect(stderrLines(front)).toContain("complaint from instance 0")
  }, 60_000)
})

describe("worker logs options", () => {
  const command = ["true"]
  test.each([
    [
      "a format that does not exist",
      "prefixed",
      TypeError,
      /logs must be "prefix", "json", "inherit" or \{ format, pool, dir/,
    ],
    ["a misspelt name", { fromat: "json" }, TypeError, /logs: unknown option "fromat"; did you mean "format"/],
    [
      "a format in the object that does not exist",
      { format: "xml" },
      TypeError,
      /logs\.format must be "prefix" or "json"/,
    ],
    ["a pool name with a slash", { pool: "a/b" }, TypeError, /logs\.pool must be 1-64 characters of/],
    ["files under 4 KiB", { dir: "/tmp/x", maxBytes: 10 }, RangeError, /logs\.maxBytes must be an integer ≥ 4096/],
    ["maxBytes without dir", { maxBytes: 1 << 20 }, TypeError, /logs\.maxBytes and logs\.keep need logs\.dir/],
    ["a negative keep", { dir: "/tmp/x", keep: -1 }, RangeError, /logs\.keep must be an integer in 0\.\.100/],
    ["lines cut under 256 bytes", { maxLineBytes: 10 }, RangeError, /logs\.maxLineBytes must be an integer in 256\.\./],
  ])("%s is refused with a message saying what to pass", (_, logs, kind, message) => {
    expect(() => new Supervisor({ command, logs: logs as never })).toThrow(kind)
    expect(() => new Supervisor({ command, logs: logs as never })).toThrow(message)
  })

  test("a directory that is a symbolic link, writable by others or another user's is refused with WorkerLogsError", () => {
    const base = tempDir()
    const real = join(base, "real")
    mkdirSync(real, { mode: 0o700 })
    symlinkSync(real, join(base, "link"))
    mkdirSync(join(base, "open"))
    chmodSync(join(base, "open"), 0o777)
    mkdirSync(join(base, "theirs"), { mode: 0o700 })
    chownSync(join(base, "theirs"), 65534, 65534)
    const refused = (dir: string) => {
      try {
        new Supervisor({ command, logs: { dir } })
      } catch (e) {
        return e
      }
      throw new Error(`logs.dir ${dir} was accepted`)
    }
    for (const [d, why] of [
      ["link", /is a symbolic link/],
      ["open", /others can write it \(mode 0777\)/],
      ["theirs", /belongs to uid 65534/],
    ] as const) {
      const e = refused(join(base, d))
      expect(e).toBeInstanceOf(WorkerLogsError)
      expect((e as Error).message).toMatch(why)
    }
  })

  test("a log file that is a symbolic link is refused and what it points at is left untouched", () => {
    const dir = tempDir()
    chmodSync(dir, 0o700)
    const target = join(dir, "target")
    writeFileSync(target, "precious\n")
    symlinkSync(target, join(dir, "app.log"))
    expect(() => new Supervisor({ command, logs: { dir, pool: "app" } })).toThrow(WorkerLogsError)
    expect(readFileSync(target, "utf8")).toBe("precious\n")
  })

  test("a directory that does not exist yet is made with mode 0700", () => {
    const dir = join(tempDir(), "a", "b")
    new Supervisor({ command, logs: { dir } })
    expect(statSync(dir).mode & 0o777).toBe(0o700)
  })
})
