// A contest belongs to its uid (docs/PROTOCOL.md §1.1, §7.1): its name is a socket file in the uid's own 0700
// socket directory, so another user can neither bind it first (version 2's abstract name, which it could, holds
// nothing now) nor be found under it: each uid's contest of a name is its own.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { Contest } from "../../src/leases/index.ts"
import { leaseNative, loadNative } from "../../src/native/ffi.ts"
import { busName, run, spawn, stopAll } from "../support/helpers.ts"

afterEach(stopAll)

async function secondUser(): Promise<string> {
  if ((await run(["id", "tester"])).code === 0) return "tester"
  if ((await run(["useradd", "-M", "tester"])).code === 0) return "tester"
  throw new Error("this test needs a second local user: run it as root, or create one with useradd -M tester")
}

function asUser(user: string, args: string[]) {
  // setpriv execs (same pid), so stopAll's kill reaches the process itself
  return spawn(["setpriv", `--reuid=${user}`, `--regid=${user}`, "--clear-groups", process.execPath, ...args], {
    env: { ...process.env, HOME: "/tmp" },
  })
}

test("version 2's name bound by another uid that answers 'welcome' is nothing of the owner's: its open makes its own contest", async () => {
  const user = await secondUser()
  await loadNative()
  const name = busName("squat")
  const squatter = asUser(user, [
    join(import.meta.dir, "..", "support", "leases", "lease-squatter.ts"),
    name,
    String(leaseNative.sbl_layout_hash()),
  ])
  await squatter.waitLine(/^listening$/)
  // main: PeerRefusedError
  const c = await Contest.open(name, { joinTimeoutMs: 2000, create: "must" })
  c.close()
}, 30_000)

test("a contest another uid created is not the owner's: the owner's open of the name makes its own", async () => {
  const user = await secondUser()
  const name = busName("otheruid")
  const member = asUser(user, [join(import.meta.dir, "..", "support", "leases", "lease-member.ts"), "open", name])
  await member.waitLine(/^open \d+$/)
  // main: PeerRefusedError
  const c = await Contest.open(name, { joinTimeoutMs: 2000, create: "must" })
  c.close()
}, 30_000)
