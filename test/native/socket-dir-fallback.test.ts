// A user without a home (/nonexistent: nobody, useradd -r users, systemd DynamicUser=) whose /tmp/slotbus-<uid>
// another uid made first (/tmp is sticky: the user cannot remove it). Its buses still listen, in the fallback
// /tmp/slotbus-<uid>.<n> of docs/PROTOCOL.md §13.2, and its Bun and Node workers find them there; two of its
// processes racing to make the fallback agree on one (strace holds one at its mkdir); another uid's look-alike
// fallbacks are skipped; the hub says so in one line. The user is one made for the test; the squatter is nobody.
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test"
import {
  chmodSync,
  chownSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs"
import { sharedRecorderDir } from "../../src/native/recorder-layout.ts"
import { libraryPath } from "../../src/native/lib-path.ts"
import { busName, eventually, findTool, FIXTURES, spawn, stopAll } from "../support/helpers.ts"
import { straceSkip, tracees } from "../support/strace.ts"
import { buildForNode, findNode, NODE_INSTALL, nodeFlags } from "../support/runtime/node.ts"
import { asNobody, makeUser, NOBODY, nobodyEnv, whyNoTestUser, type TestUser } from "../support/uid.ts"
import { join } from "node:path"

const MEMBER = join(FIXTURES, "native/portable-member.ts")
const skip = whyNoTestUser(MEMBER)
if (skip) console.warn(`skipping the socket directory's fallback tests: ${skip}`)
const node = findNode()
if (!node)
  console.log(`skipping the Node worker of the socket directory's fallback: no Node >= 26.1 here (${NODE_INSTALL})`)

afterEach(stopAll)
const STRACE = findTool("strace") ?? "strace"
/** Look-alikes another uid makes: every n a fallback could have until its range was widened (§13.2). */
const LOOKALIKES = 65535

const backends: [string, Record<string, string>][] = [
  ["the Linux backend", {}],
  ["the portable backend", { SLOTBUS_PLATFORM: "posix" }],
]

/** portable-member.ts as user, with no SLOTBUS_SOCKET_DIR: the default directory. */
const member = (user: TestUser, args: string[], env: Record<string, string> = {}) =>
  spawn(user.as([process.execPath, MEMBER, ...args]), { env: { ...user.env, ...env } })

/** The user's entries in /tmp: its socket directory's name and every slotbus-<uid>.* beside it, sorted. */
const entries = (uid: number) =>
  readdirSync("/tmp")
    .filter((f) => f === `slotbus-${uid}` || f.startsWith(`slotbus-${uid}.`))
    .sort()

/** Whether a thread of pid is stopped on entry to mkdir or mkdirat of path (/proc/<tid>/syscall, and the path read
 * from its memory). */
function inMkdir(pid: number, path: string): boolean {
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {} // gone
  for (const tid of tids) {
    try {
      const call = readFileSync(`/proc/${pid}/task/${tid}/syscall`, "utf8").trim().split(" ")
      const at = call[MKDIR_PATH_ARG[call[0]!] ?? -1]
      if (!at) continue
      const mem = openSync(`/proc/${pid}/mem`, "r")
      try {
        const bytes = Buffer.alloc(path.length + 1)
        readSync(mem, bytes, 0, bytes.length, Number(BigInt(at)))
        if (bytes.toString("latin1") === `${path}\0`) return true
      } finally {
        closeSync(mem)
      }
    } catch {} // not in a system call, or gone
  }
  return false
}
/** Where /proc/<tid>/syscall has the path of mkdir and mkdirat, by system call number: x86-64's, else arm64's. */
const MKDIR_PATH_ARG: Record<string, number> = process.arch === "x64" ? { "83": 1, "258": 2 } : { "34": 2 }

/** Runs body with a user whose home is /nonexistent and whose /tmp/slotbus-<uid> nobody made first (a directory of
 * its own, mode 0777); removes all of it after. */
async function homeless(body: (user: TestUser, fixed: string) => Promise<void>) {
  const user = makeUser({ home: "/nonexistent" })
  const fixed = `/tmp/slotbus-${user.uid}`
  try {
    for (const f of entries(user.uid)) rmSync(join("/tmp", f), { recursive: true, force: true }) // an earlier uid's
    mkdirSync(fixed)
    chmodSync(fixed, 0o777)
    chownSync(fixed, NOBODY, NOBODY)
    await body(user, fixed)
  } finally {
    await stopAll() // before the directories go: a member still running could make them again
    rmSync(sharedRecorderDir(user.uid), { recursive: true, force: true })
    user.remove() // and every /tmp/slotbus-<uid>*
  }
}

describe.skipIf(skip !== null)("a user without a home whose /tmp/slotbus-<uid> another uid made first", () => {
  test.each(backends)(
    "%s: its hub listens in /tmp/slotbus-<uid>.1, its worker connects, its topic and contest work, and the hub warns once",
    async (_, env) => {
      await homeless(async (user, fixed) => {
        const name = busName("homeless")
        const hub = member(user, ["hub", name], env)
        await hub.waitLine(/^ready$/) // listened, opened the topic and the contest, claimed a subject
        const worker = member(user, ["worker", name], env)
        await worker.waitLine(/^ready$/)
        await hub.waitLine(/^response 200$/)
        await hub.waitLine(/^event x$/)
        expect(entries(user.uid)).toEqual([`slotbus-${user.uid}`, `slotbus-${user.uid}.1`])
        expect(readdirSync(`${fixed}.1`)).toEqual(expect.arrayContaining([`slotbus.${name}`, `slotbus.topic.${name}`]))
        const squat = lstatSync(fixed) // what nobody put there is left alone
        expect({ uid: squat.uid, mode: squat.mode & 0o777 }).toEqual({ uid: NOBODY, mode: 0o777 })
        const warned = hub.stderr.split("\n").filter((l) => l.startsWith("slotbus: "))
        expect(warned).toEqual([
          `slotbus: ${fixed} is a directory of uid ${NOBODY} with mode 0777, not a directory of uid ${user.uid} with mode 0700: another user made it first, so this user's buses, topics and contests use a fallback socket directory (docs/PROTOCOL.md §13.2); set SLOTBUS_SOCKET_DIR to a directory of this user's with mode 0700 (systemd: RuntimeDirectory=) to leave /tmp out`,
        ])
      })
    },
    30_000,
  )

  test.skipIf(straceSkip !== null)(
    "two of its processes racing to make the fallback use the same one: one held just before its mkdir of /tmp/slotbus-<uid>.1 while the other makes it",
    async () => {
      await homeless(async (user, fixed) => {
        const [held, first] = [busName("held"), busName("first")]
        // every mkdir of <fixed>.1 held 3 s on entry: the held process has looked in /tmp and found no fallback
        const trace = ["-f", "-qq", "-o", "/dev/null", "-e", "trace=mkdir,mkdirat", "-e", "signal=none"]
        const hold = ["-P", `${fixed}.1`, "-e", "inject=mkdir,mkdirat:delay_enter=3000000"]
        const late = spawn([STRACE, ...trace, ...hold, ...user.as([process.execPath, MEMBER, "listen", held])], {
          env: user.env,
        })
        try {
          const holding = () => tracees(late.pid).some((pid) => inMkdir(pid, `${fixed}.1`))
          expect(await eventually(holding, 30_000)).toBe(true)
          await member(user, ["listen", first]).waitLine(/^ready$/) // made .1 while the other waits to
          await late.waitLine(/^ready$/, 30_000) // its mkdir found .1 there, of the user's own: that one
          expect(entries(user.uid)).toEqual([`slotbus-${user.uid}`, `slotbus-${user.uid}.1`])
          expect(readdirSync(`${fixed}.1`)).toEqual(expect.arrayContaining([`slotbus.${held}`, `slotbus.${first}`]))
        } finally {
          for (const pid of tracees(late.pid)) process.kill(pid, "SIGKILL") // killing strace would leave it running
        }
      })
    },
    60_000,
  )

  test("another uid's look-alike /tmp/slotbus-<uid>.1, .2 and .3 are skipped: the user makes .4, and a later worker finds the hub there", async () => {
    await homeless(async (user, fixed) => {
      mkdirSync(`${fixed}.1`, { mode: 0o700 }) // a directory of nobody's, as the user's would be but for its owner
      chownSync(`${fixed}.1`, NOBODY, NOBODY)
      symlinkSync(fixed, `${fixed}.2`)
      writeFileSync(`${fixed}.3`, "")
      chownSync(`${fixed}.3`, NOBODY, NOBODY)
      const name = busName("lookalike")
      const hub = member(user, ["hub", name])
      await hub.waitLine(/^ready$/)
      await member(user, ["worker", name]).waitLine(/^ready$/) // found .4 by its readdir, not by making one
      await hub.waitLine(/^response 200$/)
      expect(entries(user.uid)).toEqual(["", ".1", ".2", ".3", ".4"].map((n) => `slotbus-${user.uid}${n}`))
      expect(readdirSync(`${fixed}.4`)).toContain(`slotbus.${name}`)
      expect(readdirSync(`${fixed}.1`)).toEqual([])
    })
  }, 30_000)
  test("another uid's look-alikes /tmp/slotbus-<uid>.1 to .65535 fail no listen: the user makes .65536, and its worker finds the hub there", async () => {
    await homeless(async (user, fixed) => {
      // made and removed by one process of nobody's (one squatter: a second uid, which made the fixed name too)
      const squat = (make: boolean) => {
        const r = Bun.spawnSync(
          asNobody([
            process.execPath,
            "-e",
            `const fs = require("fs"); for (let n = 1; n <= ${LOOKALIKES}; n++) ${make ? "fs.mkdirSync" : "fs.rmSync"}(${JSON.stringify(`${fixed}.`)} + n${make ? "" : ", { recursive: true, force: true }"})`,
          ]),
          { env: nobodyEnv, stderr: "pipe" },
        )
        expect(r.stderr.toString()).toBe("")
      }
      try {
        squat(true)
        const name = busName("lookalikes")
        const hub = member(user, ["hub", name])
        await hub.waitLine(/^ready$/, 30_000) // was a SocketDirError: every fallback up to 65535 taken
        await member(user, ["worker", name]).waitLine(/^ready$/, 30_000) // found .65536 by its readdir
        await hub.waitLine(/^response 200$/)
        const own = lstatSync(`${fixed}.${LOOKALIKES + 1}`)
        expect({ uid: own.uid, dir: own.isDirectory(), mode: own.mode & 0o777 }).toEqual({
          uid: user.uid,
          dir: true,
          mode: 0o700,
        })
        expect(readdirSync(`${fixed}.${LOOKALIKES + 1}`)).toContain(`slotbus.${name}`)
      } finally {
        await stopAll()
        squat(false)
      }
    })
  }, 300_000) // making and removing 65535 directories in /tmp: seconds, and more on a busy disk
})

describe.skipIf(skip !== null || node === null)("a Node worker of a user without a home", () => {
  let built: ReturnType<typeof buildForNode> | undefined
  let lib = ""
  beforeAll(async () => {
    built = buildForNode("node-worker.ts")
    chmodSync(join(built.entry, ".."), 0o755) // mkdtemp's 0700: the user must read it
    lib = await libraryPath()
  })
  afterAll(() => built?.remove())

  test.each(backends)(
    "%s: connects to the user's Bun hub in /tmp/slotbus-<uid>.1",
    async (_, env) => {
      await homeless(async (user, fixed) => {
        const name = busName("homeless-node")
        const hub = member(user, ["hub", name], env)
        await hub.waitLine(/^ready$/)
        const worker = spawn(user.as([node!, ...nodeFlags(node!), built!.entry, name]), {
          env: { ...user.env, ...env, SLOTBUS_LIB: lib, NODE_NO_WARNINGS: "1" },
        })
        await worker.waitLine(/^ready /, 30_000)
        await hub.waitLine(/^response /) // a request reached it
        expect(readdirSync(`${fixed}.1`)).toContain(`slotbus.${name}`)
      })
    },
    60_000,
  )
})
