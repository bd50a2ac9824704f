// `slotbus ls`, `requests` and `top` against what other users may leave in /dev/shm (issue 56 items 3, 4, 9, 12):
// terminal controls in their bytes, links and foreign directories where a uid's recorder directory belongs,
// forged files, many maximal files. The commands run as real subprocesses, as root (reading every uid's files)
// or as another uid through setpriv; the other uids' directories are made with their owner and mode, as theirs.
import { describe, expect, test } from "bun:test"
import { execFileSync } from "node:child_process"
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus } from "../../src/index.ts"
import { Topic } from "../../src/events/index.ts"
import { MAX_FILES_PER_DIR } from "../../src/status/host-discover.ts"
import { RecConst, RecHeader } from "../../src/native/recorder-layout.ts"
import { busName, linuxBackend, REPO, run, spawn, until } from "../support/helpers.ts"
import { forgeRecorder, hostCli as cli, undoAfterEach, writeRecord } from "../support/status/host-files.ts"
import { asNobody, NOBODY, nobodyEnv, whyNotAsNobody } from "../support/uid.ts"

const CLI = join(REPO, "bin", "slotbus.ts")
const PEAK = join(REPO, "test", "support", "status", "host-peak.ts")
const SHM = "/dev/shm"
const MAX_FILE = RecConst.HEADER_BYTES + RecConst.MAX_RECORDS * RecConst.RECORD_BYTES
// biome-ignore lint/suspicious/noControlCharactersInRegex: a control character in the output is the failure
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/

const cleanups = undoAfterEach()

let uids = 0
/** A uid no account and no other test uses. */
const otherUid = () => 2_000_000_000 + (process.pid % 1_000_000) * 64 + ++uids

/** /dev/shm/slotbus-<uid> as that uid makes it (0700, its own) unless told otherwise; removed after the test. */
function uidDir(uid: number, how: { owner?: number; mode?: number } = {}): string {
  const dir = join(SHM, `slotbus-${uid}`)
  mkdirSync(dir)
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  chmodSync(dir, how.mode ?? 0o700)
  chownSync(dir, how.owner ?? uid, how.owner ?? uid)
  return dir
}

function place(dir: string, file: string, bytes: Buffer, owner: number): string {
  const path = join(dir, file)
  writeFileSync(path, bytes, { mode: 0o600 })
  chownSync(path, owner, owner)
  return path
}

interface Listed {
  buses: { name: string; pid: number; state: string }[]
  problems: { path: string; malformed: string }[]
  elections?: { name: string; pids: number[] }[]
}

describe.skipIf(!existsSync("/proc/net/unix") || process.getuid?.() !== 0)(
  "slotbus ls, requests and top against other users' files",
  () => {
    test("another user's request paths and file names reach the terminal escaped, never as controls", async () => {
      const uid = otherUid()
      const dir = uidDir(uid)
      const name = busName("evil")
      const paths = ["GET /\x1b]0;owned\x07title", "GET /\x1b[2J\x1b[Hclear", "GET /\u009b31mred"]
      const file = forgeRecorder(
        { name, pid: process.pid, count: 4, uid },
        paths.map((what, i) => ({ what, serial: i + 1, ...(i === 0 && { phase: 1, outcome: 0 }) })), // the first in flight: top shows it
      )
      place(dir, `${name}.${process.pid}.rec`, file, uid)
      const junk = place(dir, "\x1b]52;c;cGF3bmVk\x07\x1b[2J.rec", Buffer.from("x"), uid)

      const outputs: string[] = []
      for (const args of [
        ["ls"],
        ["ls", "--json"],
        ["requests", name],
        ["requests", name, "--json"],
        ["top", name, "--once"],
      ]) {
        const r = await cli(...args)
        expect(r.code).toBe(0)
        outputs.push(r.stdout)
        expect(r.stdout + r.stderr).not.toMatch(CONTROL)
      }
      const [ls, lsJson, requests, requestsJson, top] = outputs as [string, string, string, string, string]
      expect(ls).toContain(`skipped ${dir}/\\x1b]52;c;cGF3bmVk\\x07\\x1b[2J.rec: `)
      expect(JSON.parse(lsJson).problems).toContainEqual(expect.objectContaining({ path: junk }))
      expect(requests).toContain("GET /\\x1b]0;owned\\x07title")
      expect(requests).toContain("GET /\\x1b[2J\\x1b[Hclear")
      expect(requests).toContain("GET /\\x9b31mred")
      expect(
        JSON.parse(requestsJson)
          .requests.map((q: { what: string }) => q.what)
          .sort(),
      ).toEqual([...paths].sort())
      expect(top).toContain("GET /\\x1b]0;owned\\x07title")
    }, 90_000)

    test("a slotbus-<uid> entry that is a link, another uid's directory or open to others is skipped unread", async () => {
      const secret = mkdtempSync(join(tmpdir(), "slotbus-root-only-"))
      cleanups.push(() => rmSync(secret, { recursive: true, force: true }))
      chmodSync(secret, 0o700)
      const cases: { uid: number; dir: string; why: RegExp }[] = []
      const linked = otherUid()
      const link = join(SHM, `slotbus-${linked}`)
      symlinkSync(secret, link)
      cleanups.push(() => rmSync(link, { force: true }))
      cases.push({ uid: linked, dir: link, why: /is a symbolic link of uid 0 .*, not a directory of uid/ })
      const foreign = otherUid()
      cases.push({
        uid: foreign,
        dir: uidDir(foreign, { owner: NOBODY }),
        why: new RegExp(`is a directory of uid ${NOBODY} with mode 0700, not a directory of uid ${foreign}`),
      })
      const open = otherUid()
      cases.push({
        uid: open,
        dir: uidDir(open, { mode: 0o755 }),
        why: /with mode 0755, not a directory of uid \d+ with mode 0700/,
      })
      const names: string[] = []
      for (const c of cases) {
        const name = busName("hidden")
        names.push(name)
        const bytes = forgeRecorder({ name, pid: process.pid, count: 1, uid: c.uid })
        place(c.dir === link ? secret : c.dir, `${name}.${process.pid}.rec`, bytes, c.dir === link ? 0 : c.uid)
      }

      const r = await cli("ls", "--json")
      expect(r.code).toBe(0)
      const view = r.json() as Listed
      for (const [i, c] of cases.entries()) {
        expect(view.buses.map((b) => b.name)).not.toContain(names[i])
        expect(view.problems.find((p) => p.path === c.dir)?.malformed).toMatch(c.why)
      }
      const text = await cli("ls")
      for (const n of names) expect(text.stdout).not.toContain(n)
    }, 60_000)

    test("links in a uid's directory (to a FIFO, /dev/zero, a huge file, another uid's file, a loop) are skipped unopened: ls, requests, top and tail carry on", async () => {
      const uid = otherUid()
      const dir = uidDir(uid)
      const away = mkdtempSync(join(tmpdir(), "slotbus-link-targets-"))
      cleanups.push(() => rmSync(away, { recursive: true, force: true }))
      const tag = busName("linked")
      const fifo = join(away, "fifo")
      execFileSync("mkfifo", [fifo])
      // a valid header claiming every record, then 64 GiB of holes; and root's own valid file, shown if followed
      const huge = place(
        away,
        "huge",
        forgeRecorder({ name: `${tag}-huge`, pid: process.pid, count: RecConst.MAX_RECORDS, uid, headerOnly: true }),
        uid,
      )
      truncateSync(huge, 64 * 1024 ** 3)
      const foreign = place(
        away,
        "foreign",
        forgeRecorder({ name: `${tag}-foreign`, pid: process.pid, count: 1, uid: 0 }, [
          { what: "GET /read-through-a-link", serial: 1 },
        ]),
        0,
      )
      const at = (kind: string) => join(dir, `${tag}-${kind}.${process.pid}.rec`)
      const links: Record<string, string> = {
        fifo,
        zero: "/dev/zero",
        huge,
        foreign,
        self: at("self"),
        dir: ".",
        ping: at("pong"),
        pong: at("ping"),
      }
      for (const [kind, target] of Object.entries(links)) symlinkSync(target, at(kind))
      place(
        dir,
        `${tag}-good.${process.pid}.rec`,
        forgeRecorder({ name: `${tag}-good`, pid: process.pid, count: 1, uid }),
        uid,
      )

      const r = await cli("ls", "--json")
      expect(r.code).toBe(0)
      const view = r.json() as Listed
      expect(view.buses.map((b) => b.name).filter((n) => n.startsWith(tag))).toEqual([`${tag}-good`])
      for (const kind of Object.keys(links))
        expect({ kind, why: view.problems.find((p) => p.path === at(kind))?.malformed }).toEqual({
          kind,
          why: "cannot open it (ELOOP)",
        })
      for (const kind of Object.keys(links)) {
        const q = await cli("requests", `${tag}-${kind}`)
        expect({ kind, code: q.code, named: q.stderr.includes(`no bus named "${tag}-${kind}" on this host`) }).toEqual({
          kind,
          code: 2,
          named: true,
        })
      }
      for (const args of [
        ["top", "--once"],
        ["top", `${tag}-good`, "--once"],
        ["requests", `${tag}-good`],
      ]) {
        const q = await cli(...args)
        expect({ args, code: q.code }).toEqual({ args, code: 0 })
        expect(q.stdout).not.toContain("read-through-a-link")
      }

      // tail reads no recorder directory: with the same links in its own uid's, it follows its topic
      const own = join(SHM, `slotbus-${process.getuid!()}`)
      if (!existsSync(own)) {
        mkdirSync(own, { mode: 0o700 })
        cleanups.push(() => rmdirSync(own)) // once empty: another test's front may have a file there
      }
      for (const [kind, target] of Object.entries(links)) {
        const link = join(own, `${tag}-${kind}.${process.pid}.rec`)
        symlinkSync(target === at(kind) ? link : target, link)
        cleanups.push(() => rmSync(link, { force: true }))
      }
      const topic = await Topic.open(tag)
      cleanups.push(() => topic.close())
      const t = spawn([process.execPath, CLI, "tail", tag])
      await until(() => t.stderr.includes("following"), "the tail to subscribe", 20_000)
      await until(
        () => (topic.publish({ type: "through", data: "links" }), t.lines.length > 0),
        "an event printed",
        20_000,
        50,
      )
      t.signal("SIGTERM")
      expect(await t.exited).toBe(0)
      expect(t.lines[0]).toMatch(/ through links$/)
    }, 120_000)

    test("a file whose owner and header's uid disagree is skipped", async () => {
      const uid = otherUid()
      const dir = uidDir(uid)
      const lies = [busName("liar"), busName("liar")]
      const byOwner = place(
        dir,
        `${lies[0]}.${process.pid}.rec`,
        forgeRecorder({ name: lies[0]!, pid: process.pid, count: 1, uid: 0 }),
        uid,
      )
      const byHeader = place(
        dir,
        `${lies[1]}.${process.pid}.rec`,
        forgeRecorder({ name: lies[1]!, pid: process.pid, count: 1, uid }),
        0,
      )
      const r = await cli("ls", "--json")
      expect(r.code).toBe(0)
      const view = r.json() as Listed
      for (const n of lies) expect(view.buses.map((b) => b.name)).not.toContain(n)
      expect(view.problems.find((p) => p.path === byOwner)?.malformed).toMatch(
        `owned by uid ${uid}, its header says uid 0`,
      )
      expect(view.problems.find((p) => p.path === byHeader)?.malformed).toMatch(
        `owned by uid 0, its header says uid ${uid}`,
      )
    }, 60_000)

    test.skipIf(whyNotAsNobody(join(REPO, "bin", "slotbus.ts")) !== null)(
      "requests as another uid, of root's bus whose pid it cannot see, names no pid 0",
      async () => {
        const name = busName("unseen")
        const bus = await SlotBus.listen(name) // root's front: its recorder file in root's own directory
        try {
          const args = [process.execPath, join(REPO, "bin", "slotbus.ts"), "requests", name]
          const r = await run(asNobody(args), { env: nobodyEnv })
          expect(r.code).toBe(2)
          // before: `bus "<name>" (pid 0) keeps no flight recorder file`
          expect(r.stderr).toContain(`bus "${name}" keeps no flight recorder file`)
        } finally {
          await bus.close()
        }
      },
      60_000,
    )

    test("another uid's file naming root's live front's pid is no live front of root's bus (issue 64)", async () => {
      const name = busName("forged")
      const bus = await SlotBus.listen(name) // root's front: this process, with its recorder file
      try {
        const uid = otherUid()
        const forged = forgeRecorder({ name, pid: process.pid, count: 1, uid })
        forged.writeUInt32LE(4_000_000_000, RecHeader.inFlight)
        place(uidDir(uid), `${name}.${process.pid}.rec`, forged, uid)
        const r = await cli("ls", "--json")
        expect(r.code).toBe(0)
        const fronts = (r.json() as Listed).buses.filter((b) => b.name === name)
        // main: two live fronts with one pid, [["live", pid], ["live", pid]]
        expect(fronts.map((b) => b.state === "live")).toContain(true)
        expect(fronts.filter((b) => b.state === "live")).toHaveLength(1)
        expect(fronts.find((b) => b.state !== "live")?.state).toContain(`runs as uid 0, not as the file's uid ${uid}`)
        const req = await cli("requests", name)
        expect(req.code).toBe(0)
        expect(req.stdout).not.toMatch(/4.?000.?000.?000/)
      } finally {
        await bus.close()
      }
    }, 60_000)

    test("another uid's file naming root's live front's name and pid leaves top's rate of root's bus its own", async () => {
      const name = busName("forged-rate")
      const bus = await SlotBus.listen(name) // root's front: this process, no requests
      try {
        const uid = otherUid()
        const forged = forgeRecorder({ name, pid: process.pid, count: 1, uid })
        forged.writeBigUInt64LE(1_000_000_000_000n, RecHeader.requests)
        place(uidDir(uid), `${name}.${process.pid}.rec`, forged, uid)
        const top = await cli("top", name, "--once")
        expect(top.code).toBe(0)
        // main: the two files shared one sample, "live  -992716513331.4 req/s"
        expect(top.stdout).toMatch(new RegExp(`pid ${process.pid}  live  0\\.0 req/s`))
        expect(top.stdout).not.toMatch(/ -\d[\d.]* req\/s/)
      } finally {
        await bus.close()
      }
    }, 60_000)

    // root's requests merged them as two fronts of one bus, so another user could add rows to root's view
    test.skipIf(whyNotAsNobody(CLI) !== null)(
      "run as root, requests shows root's own bus of a name another uid's live front uses too, --pid theirs; ls and top name their uid",
      async () => {
        const name = busName("twin")
        const bus = await SlotBus.listen(name) // root's front: this process
        const theirs = spawn(asNobody(["sleep", "60"]), { env: nobodyEnv }) // a live process of nobody's
        try {
          const dir = join(SHM, `slotbus-${NOBODY}`)
          if (!existsSync(dir)) uidDir(NOBODY)
          const file = `${name}.${theirs.pid}.rec`
          cleanups.push(() => rmSync(join(dir, file), { force: true }))
          const forged = forgeRecorder({ name, pid: theirs.pid, count: 1, uid: NOBODY }, [
            { what: "GET /theirs", serial: 1 },
          ])
          place(dir, file, forged, NOBODY)
          const mine = await cli("requests", name)
          expect(mine.code).toBe(0)
          expect(mine.stdout).not.toContain("GET /theirs")
          expect(mine.stdout).not.toContain(String(theirs.pid))
          const picked = await cli("requests", name, "--pid", String(theirs.pid))
          expect(picked.code).toBe(0)
          expect(picked.stdout).toContain("GET /theirs")
          // ls and top name the other user's (two rows of one name looked like one bus's fronts)
          const ls = await cli("ls")
          expect(ls.stdout).toMatch(new RegExp(`bus\\s+${name}\\s+${theirs.pid}\\s.*live, uid ${NOBODY}`))
          expect(ls.stdout).not.toMatch(new RegExp(`${name}\\s+${process.pid}\\s.*uid`))
          const top = await cli("top", name, "--once")
          expect(top.stdout).toContain(`pid ${theirs.pid}  live, uid ${NOBODY}`)
        } finally {
          await theirs.kill()
          await bus.close()
        }
      },
      60_000,
    )

    test.skipIf(whyNotAsNobody(CLI) !== null)(
      "another uid's pre-made slotbus-<victim uid> with a forged file is not the victim's bus in its own requests",
      async () => {
        const victim = otherUid()
        const dir = join(SHM, `slotbus-${victim}`)
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
        const name = busName("forged")
        const forged = join(mkdtempSync(join(tmpdir(), "slotbus-forge-")), `${name}.${process.pid}.rec`)
        cleanups.push(() => rmSync(join(forged, ".."), { recursive: true, force: true }))
        writeFileSync(
          forged,
          forgeRecorder({ name, pid: process.pid, count: 1, uid: victim }, [{ what: "GET /forged", serial: 1 }]),
          { mode: 0o644 },
        )
        chmodSync(join(forged, ".."), 0o755)
        const squat = await run(
          asNobody(["sh", "-c", `mkdir -m 0755 "$1" && cp "$2" "$1/" && chmod 0644 "$1"/*`, "sh", dir, forged]),
          { env: nobodyEnv },
        )
        expect(squat.code).toBe(0)

        const asVictim = (args: string[]) =>
          run(["setpriv", `--reuid=${victim}`, `--regid=${victim}`, "--clear-groups", process.execPath, CLI, ...args], {
            env: nobodyEnv,
            timeoutMs: 60_000,
          })
        const r = await asVictim(["requests", name])
        expect(r.stdout).not.toContain("GET /forged")
        expect(r.code).toBe(2)
        expect(r.stderr).toContain(`no bus named "${name}"`)
        const ls = await asVictim(["ls", "--json"])
        expect(ls.code).toBe(0)
        const view = JSON.parse(ls.stdout) as Listed
        expect(view.buses.map((b) => b.name)).not.toContain(name)
        expect(view.problems.find((p) => p.path === dir)?.malformed).toMatch(
          `is a directory of uid ${NOBODY} with mode 0755`,
        )
      },
      60_000,
    )

    test("ls reads headers only and requests reads one bus: many maximal files cost neither bytes nor memory", async () => {
      const uid = otherUid()
      const dir = uidDir(uid)
      const files = 16
      const names: string[] = []
      const bytes = forgeRecorder({ name: "x".repeat(64), pid: process.pid, count: RecConst.MAX_RECORDS, uid })
      for (let i = 0; i < RecConst.MAX_RECORDS; i++)
        writeRecord(bytes, i, { what: `GET /${"p".repeat(90)}`, serial: i + 1 })
      for (let i = 0; i < files; i++) {
        const name = `${busName("big")}-${i}`.slice(0, 64)
        names.push(name)
        bytes.fill(0, 64, 128)
        bytes.write(name, 64)
        place(dir, `${name}.${process.pid}.rec`, bytes, uid)
      }
      const peak = async (...args: string[]) => {
        const r = await run([process.execPath, PEAK, ...args], { timeoutMs: 120_000 })
        expect(r.stderr).toBe("")
        return JSON.parse(r.stdout) as { code: number; read: number; peak: number }
      }
      const ls = await peak("ls")
      expect(ls.code).toBe(0)
      expect(ls.read).toBeLessThan(MAX_FILE) // less than one file's records: 16 headers and /proc
      expect(ls.peak).toBeLessThan(256 * 1024 * 1024)
      const requests = await peak("requests", names[0]!)
      expect(requests.code).toBe(0)
      expect(requests.read).toBeLessThan(4 * MAX_FILE) // that bus's file (a seqlock reads it three times), no other
      expect(requests.peak).toBeLessThan(256 * 1024 * 1024)
      const one = await peak("top", names[0]!, "--once")
      expect(one.code).toBe(0)
      expect(one.read).toBeLessThan(4 * MAX_FILE) // that bus's records, once per frame
      const top = await peak("top", "--once") // every bus's records: one at a time
      expect(top.code).toBe(0)
      expect(top.peak).toBeLessThan(256 * 1024 * 1024)
    }, 180_000)

    test("a directory of more recorder files than a uid runs buses is read up to its bound, and says so", async () => {
      const uid = otherUid()
      const dir = uidDir(uid)
      const tag = busName("many")
      const over = MAX_FILES_PER_DIR + 50
      for (let i = 0; i < over; i++) {
        const name = `${tag}-${i}`
        place(dir, `${name}.${process.pid}.rec`, forgeRecorder({ name, pid: process.pid, count: 1, uid }), uid)
      }
      const r = await cli("ls", "--json")
      expect(r.code).toBe(0)
      const view = r.json() as Listed
      expect(view.buses.filter((b) => b.name.startsWith(`${tag}-`)).length).toBe(MAX_FILES_PER_DIR)
      expect(view.problems).toContainEqual({
        path: dir,
        malformed: `more than ${MAX_FILES_PER_DIR} recorder files: the rest were not read`,
      })
    }, 60_000)

    test("a shared name's election is listed as its leader, not as a bus fronts.<name>", async () => {
      const name = busName("shared")
      const bus = await SlotBus.listen(name, { shared: true })
      cleanups.push(() => bus.close({ drain: false }))
      const r = await cli("ls", "--json")
      expect(r.code).toBe(0)
      const view = r.json() as Listed
      expect(view.buses.map((b) => b.name)).not.toContain(`fronts.${name}`)
      expect(view.buses).toContainEqual(expect.objectContaining({ name, pid: process.pid }))
      const text = await cli("ls")
      expect(text.stdout).not.toContain(`fronts.${name}`)
      if (!linuxBackend) return // the portable backend's election is a flock (§15.2), no socket to list
      expect(view.elections).toContainEqual({ name, pids: [process.pid] })
      expect(text.stdout).toMatch(new RegExp(`election\\s+${name}\\s+${process.pid}\\s`))
    }, 60_000)
  },
)
