// Contest.open's explicit lifecycle: `create` says whether the call may create the contest, and a capacity
// asked for is checked against the contest that exists.
import { afterEach, expect, test } from "bun:test"
import { existsSync, mkdirSync, rmdirSync } from "node:fs"
import { join } from "node:path"
import {
  AlreadyExistsError,
  Contest,
  ContestOpenError,
  NotFoundError,
  SettingsMismatchError,
} from "../../src/leases/index.ts"
import { leaseNative, loadNative } from "../../src/native/ffi.ts"
import { settledCensus, socketDir } from "../support/fds.ts"
import { bunChild, linuxBackend, stopAll } from "../support/helpers.ts"

let seq = 0
const fresh = () => `life-${process.pid}-${seq++}`
const open: Contest[] = []
afterEach(async () => {
  for (const c of open.splice(0)) c.close()
  await stopAll()
})
async function keep(p: Promise<Contest>): Promise<Contest> {
  const c = await p
  open.push(c)
  return c
}

test('create: "never" of a contest nobody holds is a NotFoundError and creates nothing', async () => {
  const name = fresh()
  await expect(Contest.open(name, { create: "never" })).rejects.toBeInstanceOf(NotFoundError)
  const c = await keep(Contest.open(name, { create: "must" })) // nothing was left bound
  expect(c.stats().members).toBe(1)
})

test('create: "must" creates; a second "must" is an AlreadyExistsError and the first handle is unharmed', async () => {
  const name = fresh()
  const first = await keep(Contest.open(name, { create: "must" }))
  await expect(Contest.open(name, { create: "must" })).rejects.toBeInstanceOf(AlreadyExistsError)
  const joined = await keep(Contest.open(name, { create: "never" }))
  const lease = first.tryClaim({ kind: 1, label: "job" }, { owner: "first" })
  expect(lease.claimed).toBe(true)
  const other = joined.tryClaim({ kind: 1, label: "job" }, { owner: "joined" })
  expect(other.claimed).toBe(false)
  expect(first.stats().members).toBe(2)
})

test("a capacity other than the contest's is a SettingsMismatchError that says what it has; no capacity joins it as it is", async () => {
  const name = fresh()
  const first = await keep(Contest.open(name, { capacity: 64 }))
  const e = await Contest.open(name, { capacity: 128 }).catch((e) => e)
  expect(e).toBeInstanceOf(SettingsMismatchError)
  expect(e.message).toContain("64 subjects")
  expect([e.setting, e.asked, e.actual]).toEqual(["capacity", 128, 64])
  expect((await keep(Contest.open(name))).stats().capacity).toBe(64)
  expect(first.stats().members).toBe(2) // the refused handle left
})

test.each([["maybe"], [""], [2], [null]])("create: %p is a TypeError that lists the modes", async (create) => {
  await expect(Contest.open(fresh(), { create: create as never })).rejects.toThrow(
    /create must be "if-missing", "never" or "must"/,
  )
})

test("Contest.open's refusals carry their reason as data: invalid-name, invalid-capacity", async () => {
  const reasons = await Promise.all(
    [Contest.open("no/slash"), Contest.open(fresh(), { capacity: 100 })].map((p) =>
      p.then(
        (c) => (c.close(), null),
        (e: unknown) => [(e as Error).constructor.name, (e as ContestOpenError).reason],
      ),
    ),
  )
  expect(reasons).toEqual([
    ["ContestOpenError", "invalid-name"],
    ["ContestOpenError", "invalid-capacity"],
  ])
})

test.skipIf(!linuxBackend)(
  "a running process that listens under the name and never hands the table over: reason no-answer",
  async () => {
    await loadNative()
    const name = fresh()
    const silent = bunChild("leases/lease-squatter.ts", [name, String(leaseNative.sbl_layout_hash()), "silent"])
    await silent.waitLine(/^listening$/)
    const e = await Contest.open(name, { joinTimeoutMs: 600 }).then(
      (c) => (c.close(), null),
      (e: unknown) => e,
    )
    expect(e).toBeInstanceOf(ContestOpenError)
    expect((e as ContestOpenError).reason).toBe("no-answer")
    expect(String(e)).toContain("joinTimeoutMs")
  },
  30_000,
)

test("an open whose marker cannot be taken is a ContestOpenError and leaves nothing: no fd, no membership", async () => {
  const name = fresh()
  const marker = join(socketDir(), `slotbus-lease-local.${name}.lock`)
  mkdirSync(marker) // something not a lock file at the marker's path
  try {
    const before = (await settledCensus()).total
    for (let i = 0; i < 3; i++) {
      const e = await Contest.open(name).catch((e) => e)
      expect(e).toBeInstanceOf(ContestOpenError) // before: a NativeLibraryError naming an errno
      expect([e.reason, e.message]).toEqual(["system", expect.stringContaining(name)])
    }
    expect((await settledCensus()).total).toBe(before) // before: 4 more fds a try, and its socket bound
    expect(existsSync(join(socketDir(), `slotbus-lease.${name}`))).toBe(false)
  } finally {
    rmdirSync(marker)
  }
  expect((await keep(Contest.open(name))).stats().members).toBe(1)
})
