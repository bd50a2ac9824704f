// Members that are all stopped (SIGSTOP, a debugger) cannot hand the table to a newcomer: it fails fast with
// ContestMembersStoppedError naming them, instead of waiting joinTimeoutMs; one live member is enough.
import { afterEach, expect, test } from "bun:test"
import { Contest, ContestMembersStoppedError, ContestOpenError } from "../../src/leases/index.ts"
import { bunChild, busName, type Child, linuxBackend, stopAll } from "../support/helpers.ts"

const stopped: Child[] = []
afterEach(async () => {
  for (const c of stopped.splice(0)) c.signal("SIGCONT")
  await stopAll()
})

async function member(name: string): Promise<Child> {
  const m = bunChild("leases/lease-member.ts", ["open", name])
  await m.waitLine(/^open \d+$/)
  return m
}

test.skipIf(!linuxBackend)(
  "with every member SIGSTOPped a newcomer fails with ContestMembersStoppedError naming their pids",
  async () => {
    const name = busName("frozen")
    const a = await member(name)
    const b = await member(name)
    for (const m of [a, b]) m.signal("SIGSTOP"), stopped.push(m)
    await Bun.sleep(50)
    const e = await Contest.open(name, { joinTimeoutMs: 30_000 }).then(
      (c) => (c.close(), null),
      (e: unknown) => e,
    )
    expect(e).toBeInstanceOf(ContestMembersStoppedError)
    expect(e).toBeInstanceOf(ContestOpenError)
    expect((e as ContestOpenError).reason).toBe("members-stopped")
    expect((e as ContestMembersStoppedError).pids.sort()).toEqual([a.pid, b.pid].sort())
    expect(String(e)).toContain(String(a.pid))
  },
  60_000,
)

// The pids arrive from C as data (sbl_open's out-array). They used to be parsed out of its error text, which
// listed 16 and then "and 1 more": the 1 came back as a pid, and a caller killing the stopped pids hit init.
test.skipIf(!linuxBackend)(
  "with 17 members SIGSTOPped, pids are exactly theirs and reason is members-stopped",
  async () => {
    const name = busName("frozen17")
    const first = await member(name) // creates it; the others join at once
    const members = [first, ...(await Promise.all(Array.from({ length: 16 }, () => member(name))))]
    for (const m of members) m.signal("SIGSTOP"), stopped.push(m)
    await Bun.sleep(50)
    const e = await Contest.open(name, { joinTimeoutMs: 30_000 }).then(
      (c) => (c.close(), null),
      (e: unknown) => e,
    )
    expect(e).toBeInstanceOf(ContestMembersStoppedError)
    const { reason, pids } = e as ContestMembersStoppedError
    expect({ reason, pids: pids.sort() }).toEqual({
      reason: "members-stopped",
      pids: members.map((m) => m.pid).sort(),
    })
    expect(String(e)).toContain("kill -CONT")
  },
  120_000,
)

test("one live member among stopped ones is enough: the newcomer joins", async () => {
  const name = busName("half-frozen")
  const a = await member(name)
  await member(name)
  a.signal("SIGSTOP")
  stopped.push(a)
  await Bun.sleep(50)
  for (let i = 0; i < 5; i++) {
    using c = await Contest.open(name, { joinTimeoutMs: 10_000 })
    expect(c.member).toBeGreaterThanOrEqual(0)
  }
}, 60_000)
