// Where a front writes its flight recorder (docs/PROTOCOL.md §16.1) when another uid was there first: nobody makes
// /dev/shm/slotbus-<uid> of a user made for the test (sticky /dev/shm: the user cannot remove it). The user's front
// then writes in $XDG_RUNTIME_DIR/slotbus when its $XDG_RUNTIME_DIR is its own 0700 directory, and otherwise runs
// without a recorder, naming the uid that holds the directory.
import { afterEach, describe, expect, test } from "bun:test"
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { sharedRecorderDir } from "../../src/native/recorder-layout.ts"
import { busName, FIXTURES, spawn, stopAll } from "../support/helpers.ts"
import { makeUser, NOBODY, type TestUser, whyNoTestUser } from "../support/uid.ts"

const FRONT = join(FIXTURES, "recorder-front.ts")
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

  test("the front of a user without $XDG_RUNTIME_DIR serves without a recorder, and its warning names the uid that holds the directory", async () => {
    const u = user()
    const squatted = squat(u)
    const f = await front(u, busName("rec-squat"))
    expect(f.warnings()).toHaveLength(1)
    expect(f.warnings()[0]).toContain(`${squatted} is a directory of uid ${NOBODY}`)
    expect(f.warnings()[0]).toContain("XDG_RUNTIME_DIR")
    expect(await f.p.stop(10_000)).toBe(0)
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
