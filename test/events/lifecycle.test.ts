// Topic.open's explicit lifecycle (iceoryx2's open / create / open_or_create): `create` says whether the call
// may create the topic, and a capacity asked for is checked against the topic that exists.
import { afterEach, expect, test } from "bun:test"
import { AlreadyExistsError, NotFoundError, SettingsMismatchError, Topic } from "../../src/events/index.ts"

let seq = 0
const fresh = () => `life-${process.pid}-${seq++}`
const open: Topic[] = []
afterEach(() => {
  for (const t of open.splice(0)) t.close()
})
async function keep(p: Promise<Topic>): Promise<Topic> {
  const t = await p
  open.push(t)
  return t
}

test('create: "never" of a topic nobody holds is a NotFoundError and creates nothing', async () => {
  const name = fresh()
  await expect(Topic.open(name, { create: "never" })).rejects.toBeInstanceOf(NotFoundError)
  await expect(Topic.open(name, { create: "never" })).rejects.toThrow(/does not exist/)
  const t = await keep(Topic.open(name)) // nothing was left bound: the default creates it afresh
  expect(t.isKeeper).toBe(true)
})

test('create: "must" creates; a second "must" is an AlreadyExistsError and the first handle is unharmed', async () => {
  const name = fresh()
  const first = await keep(Topic.open(name, { create: "must" }))
  expect(first.isKeeper).toBe(true)
  await expect(Topic.open(name, { create: "must" })).rejects.toBeInstanceOf(AlreadyExistsError)
  const joined = await keep(Topic.open(name, { create: "never" }))
  expect(joined.isKeeper).toBe(false)
  const sub = joined.subscribe({ type: "a" })
  first.publish({ type: "a", data: "still works" })
  expect((await sub.receive(2000))?.text()).toBe("still works")
  sub.close()
})

test("a capacity other than the topic's is a SettingsMismatchError that says what it has; no capacity joins it as it is", async () => {
  const name = fresh()
  await keep(Topic.open(name, { capacity: 1 << 16 }))
  const e = await Topic.open(name, { capacity: 1 << 17 }).catch((e) => e)
  expect(e).toBeInstanceOf(SettingsMismatchError)
  expect(e.message).toContain("65536")
  expect([e.setting, e.asked, e.actual]).toEqual(["capacity", 1 << 17, 1 << 16])
  expect((await keep(Topic.open(name))).capacity).toBe(1 << 16)
  expect((await keep(Topic.open(name, { capacity: 1 << 16, create: "never" }))).capacity).toBe(1 << 16)
  expect(open[0]!.stats().publishers.length + open[0]!.stats().subscribers.length).toBe(0) // the refused handle left
})

test('once every member has left, the topic is gone: create: "never" finds nothing', async () => {
  const name = fresh()
  const t = await Topic.open(name)
  t.close()
  await expect(Topic.open(name, { create: "never" })).rejects.toBeInstanceOf(NotFoundError)
})

test.each([["maybe"], [""], [1], [null], [true]])("create: %p is a TypeError that lists the modes", async (create) => {
  await expect(Topic.open(fresh(), { create: create as never })).rejects.toThrow(
    /create must be "if-missing", "never" or "must"/,
  )
})

test("the keeper role passes on: when the keeper closes, a member takes it on its next tick", async () => {
  const name = fresh()
  const first = await Topic.open(name)
  const joined = await keep(Topic.open(name))
  expect([first.isKeeper, joined.isKeeper]).toEqual([true, false])
  first.close()
  // stats() ticks first: the vacant role is taken there (failed before: keeperPid stayed 0 once the creator closed)
  expect(joined.stats().keeperPid).toBe(process.pid)
  expect(joined.isKeeper).toBe(true)
})
