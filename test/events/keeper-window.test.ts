// Issue 56's script ../shared/repro/keeper-window-other-uid.ts as it is: a topic's keeper is killed while another
// uid (the user `tester`, through runuser) loops on Topic.open(name, { timeoutMs: 200 }); the owner's newcomer comes
// once the tester's loop has something to say. Unlike uid.test.ts's loop, the tester's loop outlives the owner's
// last member here (it exits 4 s after joining), so the owner's name was free for anyone to bind.
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { chownSync, mkdtempSync, readdirSync, readlinkSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { findTool, spawn, stopAll } from "../support/helpers.ts"

const PROC = join(import.meta.dir, "procs", "keeper-window.ts")
const TESTER = "tester"

/** Makes the user `tester` when missing, as the script does; why the test cannot run here, or null. */
function prepare(): { skip: string | null; made: boolean } {
  if (process.getuid?.() !== 0) return { skip: `needs root to run runuser -u ${TESTER}`, made: false }
  if (!findTool("runuser")) return { skip: "needs runuser (util-linux)", made: false }
  if (Bun.spawnSync(["id", TESTER]).exitCode === 0) return { skip: null, made: false }
  const add = Bun.spawnSync(["useradd", "-M", TESTER], { stderr: "pipe" })
  if (add.exitCode !== 0) return { skip: `useradd -M ${TESTER} failed: ${add.stderr.toString().trim()}`, made: false }
  return { skip: null, made: true }
}
const { skip, made } = prepare()
if (skip) console.warn(`events keeper-window.test skipped: ${skip}`)

const home = skip ? "" : mkdtempSync(join(tmpdir(), "slotbus-tester-"))
if (!skip) chownSync(home, Number(Bun.spawnSync(["id", "-u", TESTER]).stdout.toString()), 0)
afterEach(stopAll)
afterAll(() => {
  if (home) rmSync(home, { recursive: true, force: true })
  if (made) Bun.spawnSync(["userdel", TESTER])
})

/** The socket inodes a process holds. */
function socketsOf(pid: number): string[] {
  try {
    return readdirSync(`/proc/${pid}/fd`)
      .map((fd) => {
        try {
          return readlinkSync(`/proc/${pid}/fd/${fd}`)
        } catch {
          return "" // closed meanwhile
        }
      })
      .filter((l) => l.startsWith("socket:"))
  } catch {
    return [] // gone meanwhile
  }
}

const run = (mode: string, name: string, asTester = false) =>
  asTester
    ? spawn([findTool("runuser")!, "-u", TESTER, "--", process.execPath, PROC, mode, name], {
        env: { ...process.env, HOME: home },
      })
    : spawn([process.execPath, PROC, mode, name])

describe.skipIf(skip !== null)("the keeper window, by the issue's script", () => {
  test("another uid's loop of opens across the keeper's kill -9 never holds the owner's name: the owner's newcomer joins, an owner's process keeps", async () => {
    const name = `camp3-hijack-${process.pid}`
    const keeper = run("keeper", name)
    await keeper.waitLine(/^ready$/)
    const member = run("member", name)
    await member.waitLine(/^ready$/)
    const owners = new Set(socketsOf(member.pid)) // taken while it surely lives: it exits 4 s after ready
    const tester = run("grab", name, true)
    await Bun.sleep(800)
    keeper.proc.kill("SIGKILL")
    await keeper.proc.exited
    console.log((await tester.waitLine(/^(\{.*\}|tester gave up)$/, 20_000)).input)
    // whatever topic the tester keeps, it holds no socket of the owner's topic (the member holds its name, and may
    // have exited by now when the tester's first open was slow: a cold start of a fresh clone)
    const testers = Bun.spawnSync(["pgrep", "-u", TESTER]).stdout.toString().split("\n").filter(Boolean).map(Number)
    for (const s of socketsOf(member.pid)) owners.add(s)
    const shared = testers.flatMap((pid) => socketsOf(pid).filter((s) => owners.has(s)))
    await Bun.sleep(300)
    const nc = run("newcomer", name)
    const joined = JSON.parse((await nc.waitLine(/^\{.*\}$/, 20_000)).input!)
    console.log(JSON.stringify(joined))
    const survived = JSON.parse((await member.waitLine(/^\{.*\}$/, 20_000)).input!)
    console.log(JSON.stringify(survived))
    // failed before: {"ownerNewcomer":"PeerRefusedError: topic … is held by a process of another user"}
    expect(joined.ownerNewcomer).toBe("joined")
    expect([member.pid, nc.pid]).toContain(joined.keeperPid)
    expect([member.pid, nc.pid]).toContain(survived.ownerSurvivor.keeperPid)
    expect(owners.size).toBeGreaterThan(0)
    expect(shared).toEqual([])
  }, 60_000)
})
