// A contest is handed over only between processes of one uid (docs/PROTOCOL.md §7.1): a newcomer checks the
// SO_PEERCRED uid of whoever listens under the name before it reads a byte, so another user who binds the
// name (for instance in the window after the last member died) never hands it a table.
import { afterEach, expect, test } from "bun:test"
import { join } from "node:path"
import { Contest, PeerRefusedError } from "../../src/leases/index.ts"
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

test("a name bound by another uid that answers 'welcome' is refused with PeerRefusedError before anything is read", async () => {
  const user = await secondUser()
  await loadNative()
  const name = busName("squat")
  const squatter = asUser(user, [
    join(import.meta.dir, "..", "support", "lease-squatter.ts"),
    name,
    String(leaseNative.sbl_layout_hash()),
  ])
  await squatter.waitLine(/^listening$/)
  const e = await Contest.open(name, { joinTimeoutMs: 2000 }).then(
    (c) => (c.close(), null),
    (e: unknown) => e,
  )
  expect(e).toBeInstanceOf(PeerRefusedError)
  expect(String(e)).toContain(`uid`)
}, 30_000)

test("a contest another uid created is refused with PeerRefusedError, and so is a newcomer of another uid", async () => {
  const user = await secondUser()
  const name = busName("otheruid")
  const member = asUser(user, [join(import.meta.dir, "..", "support", "lease-member.ts"), "open", name])
  await member.waitLine(/^open \d+$/)
  const e = await Contest.open(name, { joinTimeoutMs: 2000 }).then(
    (c) => (c.close(), null),
    (e: unknown) => e,
  )
  expect(e).toBeInstanceOf(PeerRefusedError)
}, 30_000)
