// The portable backend (docs/PROTOCOL.md §13), the one macOS runs, tested here on Linux with SLOTBUS_PLATFORM=posix:
// which kernel objects it opens (none of memfd, eventfd, pidfd), what it leaves behind (nothing in /dev/shm, even
// after kill -9), stale socket files, long names, and a peer shrinking the shared region. The core, topic and lease
// suites run again on this backend from test/portable-suites.test.ts.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { bunChild, busName, FIXTURES, findTool, run, spawn, stopAll, type Child } from "../support/helpers.ts"
import { straceSkip, tracees } from "../support/strace.ts"
import { SANITIZER_TEST_MS } from "../support/tools.ts"

let dir = ""
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "slotbus-portable-"))
})
afterAll(() => rmSync(dir, { recursive: true, force: true })) // bun test does not run a function beforeAll returns
afterEach(stopAll)

const posix = () => ({ ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir })
const linux = () => {
  const env = { ...process.env }
  delete env.SLOTBUS_PLATFORM
  return env
}

/** What a process's fds point at (readlink of /proc/<pid>/fd/*). */
function fdTargets(pid: number): string[] {
  const out: string[] = []
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.push(readlinkSync(`/proc/${pid}/fd/${fd}`))
    } catch {} // closed while we looked
  }
  return out
}

const kinds = (targets: string[]) => ({
  memfd: targets.filter((t) => t.startsWith("/memfd:")).length,
  eventfd: targets.filter((t) => t === "anon_inode:[eventfd]").length,
  pidfd: targets.filter((t) => t === "anon_inode:[pidfd]").length,
  shm: targets.filter((t) => t.startsWith("/dev/shm/")),
})

/** The first line of c matching re that comes after its first line matching after. */
async function lineAfter(c: Child, re: RegExp, after: RegExp): Promise<RegExpMatchArray> {
  let n = 0
  while (!after.test(await c.line(n))) n++
  for (;;) {
    const m = (await c.line(++n)).match(re)
    if (m) return m
  }
}

/** Where a portable region's fd points: a file of /dev/shm without a name. */
const REGION_FD = /^\/dev\/shm\/#\d+ \(deleted\)$/
const regionsNow = () => readdirSync("/dev/shm").filter((f) => /^sb\.[0-9a-f]{16}$/.test(f))
/** Portable regions in /dev/shm made since this file started: those of other runs and apps are not this test's. */
const before = new Set(regionsNow())
const portableRegions = () => regionsNow().filter((f) => !before.has(f))

/** A hub and a worker using request/response, a topic and a contested lease, all up. */
async function pair(env: Record<string, string | undefined>, name = busName("portable")) {
  const hub = bunChild("native/portable-member.ts", ["hub", name], { env })
  await hub.waitLine(/^ready$/)
  const worker = bunChild("native/portable-member.ts", ["worker", name], { env })
  await worker.waitLine(/^ready$/)
  await hub.waitLine(/^response 200$/)
  await hub.waitLine(/^event x$/)
  return { hub, worker, name }
}

/** The eventfds bun holds by itself (its event loop's). */
async function bunEventfds(): Promise<number> {
  const idle = bunChild("native/portable-member.ts", ["baseline"], { env: posix() })
  await idle.waitLine(/^ready$/)
  return kinds(fdTargets(idle.pid)).eventfd
}

describe("kernel objects", () => {
  test("the Linux backend's hub and worker hold memfds (the census below can see them) and no eventfd of their own: doorbells are socketpairs (protocol 4)", async () => {
    const own = await bunEventfds()
    const { hub, worker } = await pair(linux())
    for (const p of [hub, worker]) {
      const k = kinds(fdTargets(p.pid))
      expect(k.memfd).toBeGreaterThan(0)
      expect(k.eventfd).toBe(own)
    }
  })

  test("on the portable backend neither a hub nor a worker opens a memfd, an eventfd or a pidfd", async () => {
    const own = await bunEventfds()
    const { hub, worker } = await pair(posix())
    for (const p of [hub, worker]) {
      const k = kinds(fdTargets(p.pid))
      expect({ memfd: k.memfd, eventfd: k.eventfd, pidfd: k.pidfd }).toEqual({ memfd: 0, eventfd: own, pidfd: 0 })
      // its regions are files in /dev/shm that never had a name (O_TMPFILE, docs/PROTOCOL.md §13.3)
      expect(k.shm.length).toBeGreaterThan(0)
      for (const t of k.shm) expect(t).toMatch(REGION_FD)
    }
    expect(portableRegions()).toEqual([])
  })

  test("kill -9 of both leaves nothing in /dev/shm, and the stale socket files are recovered by the next hub", async () => {
    const { hub, worker, name } = await pair(posix())
    await Promise.all([hub.kill(), worker.kill()])
    expect(portableRegions()).toEqual([])
    const stale = readdirSync(dir).filter((f) => f.includes(name))
    expect(stale.length).toBeGreaterThan(0) // the hub's, the topic's and the contest's socket files, unbound now
    // the same names again: each is found stale (nobody answers) and taken over
    const again = await pair(posix(), name)
    expect(again.hub.running && again.worker.running).toBe(true)
  })
})

describe("regions and kill -9", () => {
  test.skipIf(straceSkip !== null)(
    "a kill -9 of a hub at a random moment while workers come and go leaves no region's name in /dev/shm",
    async () => {
      const left: string[] = []
      let made = 0
      for (let round = 0; round < 3; round++) {
        const name = busName("regions")
        const log = join(dir, `strace-${round}.log`)
        // every unlink held 1 s: where a region has a name from its open to its unlink, the hub spends most of its
        // time in that window, and a kill at a random moment lands there
        const trace = ["-f", "-qq", "-o", log, "-e", "trace=open,openat,unlink,unlinkat", "-e", "signal=none"]
        const hold = ["-e", "inject=unlink,unlinkat:delay_enter=1000000"]
        const member = [process.execPath, join(FIXTURES, "native/portable-member.ts"), "listen", name]
        const hub = spawn([findTool("strace") ?? "strace", ...trace, ...hold, ...member], { env: posix() })
        try {
          await hub.waitLine(/^ready$/, 60_000)
          const churn = bunChild("native/portable-member.ts", ["churn", name], { env: posix() })
          await churn.waitLine(/^connected 1$/, 30_000)
          await Bun.sleep(Math.random() * 1500)
        } finally {
          for (const pid of tracees(hub.pid)) process.kill(pid, "SIGKILL") // killing strace would leave it running
          await hub.exited
        }
        const text = readFileSync(log, "utf8")
        const named = [...new Set([...text.matchAll(/"\/dev\/shm\/(sb\.[0-9a-f]{16})"/g)].map((m) => m[1]!))]
        made += named.length + [...text.matchAll(/"\/dev\/shm", [^)]*O_TMPFILE/g)].length
        for (const n of named.filter((f) => existsSync(`/dev/shm/${f}`))) {
          left.push(n)
          rmSync(`/dev/shm/${n}`, { force: true })
        }
      }
      expect(made).toBeGreaterThan(0)
      expect(left).toEqual([])
    },
    120_000,
  )
})

describe("names", () => {
  test("a 64-character name works: the socket files that would not fit sun_path get hashed names", async () => {
    const name = `${busName("long")}-`.padEnd(64, "x")
    const { hub } = await pair(posix(), name)
    expect(hub.running).toBe(true)
    const files = readdirSync(dir)
    expect(files).toContain(`slotbus.${name}`) // fits: /tmp/…/slotbus.<64 characters>
    expect(files.some((f) => /^h\.[0-9a-f]{16}$/.test(f))).toBe(true) // the subscriber's wake socket did not
  })
})

describe("a peer without seals", () => {
  test("a worker that shrinks the region to 0 bytes costs the hub that worker, not a SIGBUS; the next worker is served", async () => {
    const name = busName("truncate")
    const hub = bunChild("native/portable-member.ts", ["hub", name], { env: posix() })
    await hub.waitLine(/^ready$/)
    const hostile = bunChild("native/portable-member.ts", ["truncater", name], { env: posix() })
    await hostile.waitLine(/^truncated$/)
    // the hub had a request in the region when it shrank, so it reads the region past its end: without the guard
    // that is a SIGBUS and the hub is gone
    const failed = await lineAfter(hub, /^error (\w+): (.*)$/, /^ready$/)
    expect(failed[1]).toMatch(/^(ProtocolError|WorkerGoneError)$/)
    expect(hub.running).toBe(true)
    const honest = bunChild("native/portable-member.ts", ["worker", name], { env: posix() })
    await honest.waitLine(/^ready$/)
    await lineAfter(hub, /^response 200$/, /^error /)
    expect(hub.running).toBe(true)
  }, 30_000)
})

describe("the slot state machine's C stress test (csrc/test/stress.c)", () => {
  test.each([
    ["stress", 200_000, "0"],
    ["stress-tsan", 50_000, "1"],
  ])(
    "%s passes on the portable backend (socketpair doorbells, its futex path, no trimming)",
    async (step, n, tsan) => {
      const binary = join(await zigBuild(step), step)
      const env = { ...posix(), TSAN_OPTIONS: "halt_on_error=1 exitcode=66" }
      const r = await run([binary, String(n)], { env })
      if (r.code !== 0)
        throw new Error(`${binary} exited with ${r.code}:\n${r.stdout.slice(-2000)}${r.stderr.slice(-4000)}`)
      expect(r.stdout).toMatch(new RegExp(`^stress ok: requests=${n} .* trims=0 .* tsan=${tsan}$`, "m"))
    },
    SANITIZER_TEST_MS,
  )
})
