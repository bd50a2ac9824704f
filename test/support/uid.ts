// Processes as another uid (nobody, 65534) for the cross-user tests: setpriv as root, a Bun that needs no home;
// and a user made for one test, for what needs a non-root uid with a home of its own.
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"

export const NOBODY = 65534
const setpriv = Bun.which("setpriv")

export const asNobody = (args: string[]) => [
  setpriv!,
  `--reuid=${NOBODY}`,
  `--regid=${NOBODY}`,
  "--clear-groups",
  ...args,
]
// Bun as nobody: no home to write a cache into. With the run's token (scripts/leftovers.ts): a run checked beside
// this one (test/leftovers.test.ts) would take a process without it, started from this checkout, for its own.
export const nobodyEnv = {
  PATH: process.env.PATH,
  HOME: "/tmp",
  BUN_RUNTIME_TRANSPILER_CACHE_PATH: "0",
  SLOTBUS_TEST_RUN: process.env.SLOTBUS_TEST_RUN,
}

/** Why a test cannot run `file` as nobody here, or null when it can. */
export function whyNotAsNobody(file: string): string | null {
  if (process.getuid?.() !== 0)
    return `needs root to start a process as uid ${NOBODY} (running as uid ${process.getuid?.()})`
  if (!setpriv) return "needs setpriv (util-linux) to start a process as another uid"
  const probe = Bun.spawnSync(
    asNobody([process.execPath, "-e", `require("fs").accessSync(${JSON.stringify(file)}, 4)`]),
    { env: nobodyEnv, stderr: "pipe" },
  )
  if (probe.exitCode !== 0)
    return `uid ${NOBODY} cannot run ${process.execPath} on ${file}: ${probe.stderr.toString().trim()}`
  return null
}

/** A user made for one test: a uid of its own (not root), in group nogroup, with a home of its own in the password
 * database (or, given `home`, that path, made by nobody: /nonexistent, as for a system user). `as` runs a command as
 * it; `remove` deletes the user, the home it was given and what its slotbus processes made. */
export interface TestUser {
  name: string
  uid: number
  home: string
  as(args: string[]): string[]
  /** Bun as this user: its own home, no transpiler cache. */
  env: Record<string, string | undefined>
  remove(): void
}

const useradd = Bun.which("useradd")
const userdel = Bun.which("userdel")

/** Why a test cannot make a user and run `file` as it here, or null when it can. */
export function whyNoTestUser(file: string): string | null {
  if (!useradd || !userdel) return "needs useradd and userdel (passwd) to make a user of its own"
  return whyNotAsNobody(file)
}

let made = 0
export function makeUser(opts: { home?: string } = {}): TestUser {
  const home = opts.home ?? mkdtempSync(join(tmpdir(), "slotbus-home-"))
  const name = `sbt${process.pid}x${++made}`
  const add = [useradd!, "--no-create-home", "--home-dir", home, "--gid", String(NOBODY), "--no-user-group"]
  let r = Bun.spawnSync([...add, "--shell", "/usr/sbin/nologin", name], { stderr: "pipe" })
  // another test may hold the lock on /etc/passwd for a moment
  for (let i = 0; i < 50 && r.exitCode !== 0 && /lock/i.test(r.stderr.toString()); i++) {
    Bun.sleepSync(100)
    r = Bun.spawnSync([...add, "--shell", "/usr/sbin/nologin", name], { stderr: "pipe" })
  }
  if (r.exitCode !== 0) {
    if (!opts.home) rmSync(home, { recursive: true, force: true })
    throw new Error(`useradd ${name} failed: ${r.stderr.toString().trim()}`)
  }
  const uid = Number(Bun.spawnSync(["id", "-u", name]).stdout.toString())
  if (!opts.home) {
    chownSync(home, uid, NOBODY)
    chmodSync(home, 0o700)
  }
  return {
    name,
    uid,
    home,
    as: (args) => [setpriv!, `--reuid=${uid}`, `--regid=${NOBODY}`, "--clear-groups", ...args],
    env: { ...nobodyEnv, HOME: home },
    remove() {
      for (let i = 0; i < 50; i++) {
        const del = Bun.spawnSync([userdel!, name], { stderr: "pipe" })
        if (del.exitCode === 0 || !/lock/i.test(del.stderr.toString())) break
        Bun.sleepSync(100)
      }
      if (!opts.home) rmSync(home, { recursive: true, force: true })
      // what its slotbus processes made for the uid: its socket directory (§13.2: a fallback too) and flight
      // recorders' directory
      for (const f of readdirSync("/tmp").filter((f) => f === `slotbus-${uid}` || f.startsWith(`slotbus-${uid}.`)))
        rmSync(join("/tmp", f), { recursive: true, force: true })
      rmSync(`/dev/shm/slotbus-${uid}`, { recursive: true, force: true })
    },
  }
}
