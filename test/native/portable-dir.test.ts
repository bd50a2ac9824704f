// The portable backend's socket directory (docs/PROTOCOL.md §13.2), on Linux with SLOTBUS_PLATFORM=posix: another
// uid that puts something at a user's /tmp/slotbus-<uid> first does not stop that user's buses, topics and contests
// (they move to ~/.slotbus, and stay there; to /tmp/slotbus-<uid>.1 when the home cannot be written in:
// socket-dir-fallback.test.ts has a user without one), and a directory that truly cannot be used is a SocketDirError naming
// the path, what is wrong with it and SLOTBUS_SOCKET_DIR. The user is one made for the test (not root, a home of
// its own); the squatter is nobody.
import { afterEach, describe, expect, test } from "bun:test"
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { sharedRecorderDir } from "../../src/native/recorder-layout.ts"
import { busName, FIXTURES, spawn, stopAll, type Child } from "../support/helpers.ts"
import { makeUser, NOBODY, whyNoTestUser, type TestUser } from "../support/uid.ts"

const MEMBER = join(FIXTURES, "native/portable-member.ts")
const skip = whyNoTestUser(MEMBER)
if (skip) console.warn(`skipping the socket directory's cross-user tests: ${skip}`)

afterEach(stopAll)

/** portable-member.ts as user, on the portable backend, with no SLOTBUS_SOCKET_DIR: the default directory. */
const member = (user: TestUser, args: string[]) =>
  spawn(user.as([process.execPath, MEMBER, ...args]), { env: { ...user.env, SLOTBUS_PLATFORM: "posix" } })

/** What nobody can put at a path first, and what it leaves to remove besides the path itself. */
const squats: [string, (path: string) => string[]][] = [
  [
    "a directory (mode 0777)",
    (path) => {
      mkdirSync(path)
      chmodSync(path, 0o777)
      chownSync(path, NOBODY, NOBODY)
      return []
    },
  ],
  [
    "a symbolic link to a directory of its own",
    (path) => {
      const target = mkdtempSync(join(tmpdir(), "slotbus-squat-"))
      chmodSync(target, 0o777)
      chownSync(target, NOBODY, NOBODY)
      symlinkSync(target, path)
      lchownSync(path, NOBODY, NOBODY)
      return [target]
    },
  ],
  [
    "a regular file",
    (path) => {
      writeFileSync(path, "")
      chownSync(path, NOBODY, NOBODY)
      return []
    },
  ],
]

/** Runs body with a user of its own whose /tmp/slotbus-<uid> nobody squatted with squat; removes all of it after. */
async function squatted(squat: (path: string) => string[], body: (user: TestUser, fixed: string) => Promise<void>) {
  const user = makeUser()
  const fixed = `/tmp/slotbus-${user.uid}`
  const made: string[] = [fixed, sharedRecorderDir(user.uid)] // its buses' flight recorders too, once they are killed
  try {
    rmSync(fixed, { recursive: true, force: true }) // left by an earlier user of this uid, deleted since
    made.push(...squat(fixed))
    await body(user, fixed)
  } finally {
    await stopAll() // before the directories go: a member still running could make them again
    for (const p of made) rmSync(p, { recursive: true, force: true })
    user.remove()
  }
}

describe.skipIf(skip !== null)("another uid cannot take a user's socket directory", () => {
  test.each(squats)(
    "%s put at /tmp/slotbus-<uid> by nobody first: the user's hub, worker, topic and contest work from ~/.slotbus",
    async (_, squat) => {
      await squatted(squat, async (user, fixed) => {
        const before = lstatSync(fixed)
        const name = busName("squat")
        const hub = member(user, ["hub", name])
        await hub.waitLine(/^ready$/) // listened, opened the topic and the contest, claimed a subject
        const worker = member(user, ["worker", name])
        await worker.waitLine(/^ready$/) // connected, opened both too
        await hub.waitLine(/^response 200$/) // a request served
        await hub.waitLine(/^event x$/) // an event the worker published
        const files = readdirSync(join(user.home, ".slotbus"))
        expect(files).toEqual(expect.arrayContaining([`slotbus.${name}`, `slotbus.topic.${name}`]))
        const after = lstatSync(fixed) // what nobody put there is left alone
        expect({ ino: after.ino, uid: after.uid, mode: after.mode }).toEqual({
          ino: before.ino,
          uid: NOBODY,
          mode: before.mode,
        })

        // nobody takes its squat away again: the user's next process still finds the hub in ~/.slotbus
        rmSync(fixed, { recursive: true, force: true })
        const late = member(user, ["worker", name])
        await late.waitLine(/^ready$/)
        expect(existsSync(fixed)).toBe(false)
        expect(hub.running && worker.running && late.running).toBe(true)
      })
    },
    30_000,
  )

  test("a home the user cannot write in: every open works from /tmp/slotbus-<uid>.1; a ~/.slotbus of another uid is passed over as a taken name is", async () => {
    await squatted(squats[2]![1], async (user, fixed) => {
      const fallback = join(user.home, ".slotbus")
      const ok = async () =>
        expect(
          (await opens(member(user, ["opens", busName("both")]))).map((l) => l.split(" ").slice(1).join(" ")),
        ).toEqual(["ok", "ok", "ok", "ok"])
      chownSync(user.home, 0, 0) // a home the user cannot write in: ~/.slotbus cannot be made
      chmodSync(user.home, 0o755)
      try {
        await ok()
        expect(readdirSync(`${fixed}.1`)).toContain(".lock")
        // one the user could have made, but someone who may write in its home made first (a home in /tmp, one not
        // made yet): before, every listen of the user failed with a SocketDirError naming it
        writeFileSync(fallback, "")
        chownSync(fallback, NOBODY, NOBODY)
        await ok()
        // and with nothing else taken, /tmp/slotbus-<uid> is made and used
        for (const p of [fixed, `${fixed}.1`]) rmSync(p, { recursive: true, force: true })
        await ok()
        expect(readdirSync(fixed)).toContain(".lock")
      } finally {
        rmSync(`${fixed}.1`, { recursive: true, force: true })
      }
    })
  }, 30_000)
})

/** The four lines of an "opens" member. */
async function opens(c: Child): Promise<string[]> {
  await c.waitLine(/^done$/)
  const lines = c.lines.filter((l) => l !== "done")
  expect(lines.map((l) => l.split(" ")[0])).toEqual(["listen", "connect", "topic", "contest"])
  return lines
}

describe("SLOTBUS_SOCKET_DIR that cannot be used", () => {
  const made: string[] = []
  afterEach(() => {
    for (const p of made.splice(0)) rmSync(p, { recursive: true, force: true })
  })
  const cases: [string, (dir: string) => void, RegExp][] = [
    [
      "a directory of another uid",
      (dir) => chownSync(dir, NOBODY, NOBODY),
      /is a directory of uid 65534 .*not this user's/,
    ],
    [
      "a directory of its own with mode 0777",
      (dir) => chmodSync(dir, 0o777),
      /is a directory of uid \d+ with mode 0777/,
    ],
    ["a file", (dir) => (rmSync(dir, { recursive: true }), writeFileSync(dir, "")), /is a regular file of uid \d+/],
    [
      "a symbolic link to a directory of its own",
      (dir) => {
        const target = mkdtempSync(join(tmpdir(), "slotbus-link-"))
        made.push(target)
        rmSync(dir, { recursive: true })
        symlinkSync(target, dir)
      },
      /is a symbolic link of uid \d+/,
    ],
  ]
  test.each(cases)(
    "%s: listen, connect, Topic.open and Contest.open each say which, what is wrong and SLOTBUS_SOCKET_DIR",
    async (_, spoil, wrong) => {
      const dir = mkdtempSync(join(tmpdir(), "slotbus-sockdir-"))
      made.push(dir)
      spoil(dir)
      const env = { ...process.env, SLOTBUS_PLATFORM: "posix", SLOTBUS_SOCKET_DIR: dir }
      const lines = await opens(spawn([process.execPath, MEMBER, "opens", busName("dir")], { env }))
      for (const line of lines) {
        expect(line).toMatch(/^\w+ SocketDirError: /)
        expect(line).toContain(`the socket directory ${dir} (from SLOTBUS_SOCKET_DIR) `)
        expect(line).toMatch(wrong)
        expect(line).toContain("set SLOTBUS_SOCKET_DIR to a directory of this user's")
      }
    },
  )
})
