// Where a front writes its flight recorder (docs/PROTOCOL.md §16.1) when another uid was there first: nobody makes
// /dev/shm/slotbus-<uid> of a user made for the test (sticky /dev/shm: the user cannot remove it). The user's front
// then writes in $XDG_RUNTIME_DIR/slotbus when its $XDG_RUNTIME_DIR is its own 0700 directory, and otherwise in a
// fallback /dev/shm/slotbus-<uid>.<16 random hex> of its own, where the readers find it (issue 64 item 2).
import { afterEach, describe, expect, test } from "bun:test"
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { sharedRecorderDir } from "../../src/native/recorder-layout.ts"
import { recorderFiles } from "../../src/status/host-discover.ts"
import { busName, FIXTURES, spawn, stopAll } from "../support/helpers.ts"
import { makeUser, NOBODY, type TestUser, whyNoTestUser } from "../support/uid.ts"

const FRONT = join(FIXTURES, "status/recorder-front.ts")
const sharedRoot = () => (existsSync("/dev/shm") ? "/dev/shm" : tmpdir())
const skip = whyNoTestUser(FRONT)
if (skip) console.warn(`skipping the recorder directory's cross-user tests: ${skip}`)

const cleanups: (() => void)[] = []
afterEach(async () => {
  await stopAll() // before the directories go: a front still running could make them again
  for (const c of cleanups.splice(0).reverse())
    try {
      c()
    } catch {}
})

/** A user of its own, removed after the test with its shared recorder directory. */
function user(): TestUser {
  const u = makeUser()
  cleanups.push(() => u.remove())
  const shared = sharedRecorderDir(u.uid)
  rmSync(shared, { recursive: true, force: true }) // left by an earlier user of this uid, deleted since
  cleanups.push(() => rmSync(shared, { recursive: true, force: true }))
  return u
}

/** What nobody leaves at the user's /dev/shm/slotbus-<uid>: its own directory, mode 0777. */
function squat(u: TestUser): string {
  const dir = sharedRecorderDir(u.uid)
  mkdirSync(dir)
  chmodSync(dir, 0o777)
  chownSync(dir, NOBODY, NOBODY)
  return dir
}

/** A directory of `owner`'s with `mode`, as logind makes /run/user/<uid>; removed after the test. */
function runtimeDir(owner: number, mode: number): string {
  const dir = mkdtempSync(join(tmpdir(), "slotbus-xdg-"))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  chownSync(dir, owner, NOBODY)
  chmodSync(dir, mode)
  return dir
}

/** recorder-front.ts as the user, with XDG_RUNTIME_DIR as given; resolves once it served, with its pid. */
async function front(u: TestUser, name: string, xdg?: string) {
  const p = spawn(u.as([process.execPath, FRONT, name, "20"]), { env: { ...u.env, XDG_RUNTIME_DIR: xdg } })
  const [, pid] = await p.whileAlive(p.waitLine(/^answered 20 pid (\d+)$/, 30_000), "the front")
  return { p, pid: Number(pid), warnings: () => p.stderr.split("\n").filter((l) => l.includes("flight recorder")) }
}

describe.skipIf(skip !== null)("a user's /dev/shm/slotbus-<uid> made first by another uid", () => {
  test("the front of a user with its own $XDG_RUNTIME_DIR records in $XDG_RUNTIME_DIR/slotbus, and leaves the squat alone", async () => {
    const u = user()
    const squatted = squat(u)
    const xdg = runtimeDir(u.uid, 0o700)
    const name = busName("rec-xdg")
    const f = await front(u, name, xdg)
    const file = join(xdg, "slotbus", `${name}.${f.pid}.rec`)
    expect(existsSync(file)).toBe(true)
    expect(lstatSync(join(xdg, "slotbus"))).toMatchObject({ uid: u.uid, mode: 0o40700 })
    expect(f.warnings()).toEqual([])
    expect(await f.p.stop(10_000)).toBe(0)
    expect(existsSync(join(xdg, "slotbus"))).toBe(false) // its last recorder closed: the directory went with it
    expect(lstatSync(squatted)).toMatchObject({ uid: NOBODY, mode: 0o40777 })
  }, 60_000)

  test("the front of a user without $XDG_RUNTIME_DIR records in a fallback of its own that nobody could guess, and the readers find it", async () => {
    const u = user()
    const squatted = squat(u)
    const name = busName("rec-squat")
    const f = await front(u, name)
    expect(f.warnings()).toEqual([]) // main: "runs without its flight recorder: /dev/shm/slotbus-<uid> is a directory of uid 65534 …"
    const fallbacks = readdirSync(sharedRoot()).filter((d) => d.startsWith(`slotbus-${u.uid}.`))
    for (const d of fallbacks) cleanups.push(() => rmSync(join(sharedRoot(), d), { recursive: true, force: true }))
    expect(fallbacks).toHaveLength(1)
    expect(fallbacks[0]).toMatch(/^slotbus-\d+\.[0-9a-f]{16}$/) // §16.1
    const dir = join(sharedRoot(), fallbacks[0]!)
    expect(lstatSync(dir)).toMatchObject({ uid: u.uid, mode: 0o40700 })
    expect(existsSync(join(dir, `${name}.${f.pid}.rec`))).toBe(true)
    const seen = recorderFiles(name).files
    expect(seen.map((r) => [r.pid, r.uid, r.stale])).toEqual([[f.pid, u.uid, null]])
    expect(await f.p.stop(10_000)).toBe(0)
    expect(existsSync(dir)).toBe(false) // its last recorder closed: the fallback went with it
    expect(lstatSync(squatted)).toMatchObject({ uid: NOBODY, mode: 0o40777 })
  }, 60_000)

  test("an $XDG_RUNTIME_DIR that is not the user's own 0700 directory is not used: the front records in /dev/shm/slotbus-<uid>", async () => {
    const u = user()
    const open = runtimeDir(u.uid, 0o755)
    const others = runtimeDir(NOBODY, 0o700)
    for (const xdg of [open, others]) {
      const name = busName("rec-xdg-bad")
      const f = await front(u, name, xdg)
      expect(existsSync(join(sharedRecorderDir(u.uid), `${name}.${f.pid}.rec`))).toBe(true)
      expect(existsSync(join(xdg, "slotbus"))).toBe(false)
      expect(f.warnings()).toEqual([])
      expect(await f.p.stop(10_000)).toBe(0)
    }
  }, 60_000)
})
