// The topic ring against members that break the protocol (docs/PROTOCOL.md §8.3, R1–R4): a record no reader
// can take, a scribbled header, and seeded scribbles and chaos by a C program (csrc/test/topic_stress.c).
// Every reader must stay responsive and count every record it skips.
import { afterEach, expect, test } from "bun:test"
import { toArrayBuffer } from "bun:ffi"
import { join } from "node:path"
import { zigBuild } from "../../scripts/zig.ts"
import { Topic, TopicFullError, type Subscription } from "../../src/events/index.ts"
import { topicNative } from "../../src/native/ffi.ts"
import { RecState, TopicLayout } from "../../src/native/topic-layout.ts"
import { run, until } from "../support/helpers.ts"

let seq = 0
const fresh = () => `ring-${process.pid}-${seq++}`
const cleanup: { close(): void }[] = []
afterEach(() => {
  for (const c of cleanup.splice(0).reverse()) c.close()
})

async function openTopic(capacity: number) {
  const t = await Topic.open(fresh(), { capacity })
  cleanup.push(t)
  t.publish({ type: "hello" }) // maps this handle's ring writable, so the test can act as a hostile member
  return t
}

/** The whole region, writable (this process published, so its mapping of the ring is read-write). */
function region(t: Topic): DataView {
  return new DataView(toArrayBuffer(topicNative.sb_topic_region(t.ptr)!, 0, TopicLayout.OFF_DATA + t.capacity))
}

/** The header word of §8.3: position bits, alen / 16, state. */
const hdr = (pos: number, alen: number, state: number) =>
  ((BigInt(pos >> 4) & ((1n << 40n) - 1n)) << 24n) | (BigInt(alen >> 4) << 4n) | BigInt(state)

/** A hostile member claims [tail, tail + alen) with a committed header and moves the tail: what a
 * well-behaved claim looks like, except that the record's len is whatever it likes. */
function hostileRecord(t: Topic, alen: number, len: number): number {
  const d = region(t)
  const tail = Number(d.getBigUint64(TopicLayout.OFF_TAIL, true))
  const off = TopicLayout.OFF_DATA + (tail & (t.capacity - 1))
  d.setBigUint64(off, hdr(tail, alen, RecState.EVENT), true)
  d.setUint32(off + 8, len, true)
  d.setBigUint64(TopicLayout.OFF_TAIL, BigInt(tail + alen), true)
  return tail
}

async function drain(sub: Subscription, quietMs = 100): Promise<string[]> {
  const got: string[] = []
  for (let ev = await sub.receive(2000); ev; ev = await sub.receive(quietMs)) got.push(ev.text())
  return got
}

test("a record larger than any reader can take is skipped and counted, and later events still arrive", async () => {
  const t = await openTopic(1 << 23) // 8 MiB: events up to 2 MiB, a subscriber's batch is 2 MiB
  const sub = t.subscribe({ type: "n" }, { queue: 1024 })
  cleanup.push(sub)
  t.publish({ type: "n", data: "before" })
  hostileRecord(t, 3 << 20, 3 << 20) // 3 MiB: more than the batch holds
  for (let i = 0; i < 10; i++) t.publish({ type: "n", data: `after ${i}` })
  const got = await drain(sub)
  expect(got).toEqual(["before", ...Array.from({ length: 10 }, (_, i) => `after ${i}`)])
  expect(sub.corrupt).toBe(1)
  expect(sub.lagged).toBe(1) // the skipped record is counted (it might have matched)
  expect(sub.estimates).toBe(1)
  expect(topicNative.sb_sub_pending(sub["native"].ptr!)).toBe(0) // nothing left that a poll cannot take
})

test("a record whose len disagrees with its header is skipped and counted without stalling the reader", async () => {
  const t = await openTopic(1 << 16)
  const sub = t.subscribe({}, { queue: 1024 })
  cleanup.push(sub)
  hostileRecord(t, 256, 4000) // len past its own alen
  t.publish({ type: "n", data: "after" })
  expect(await drain(sub)).toEqual(["after"])
  expect(sub.corrupt).toBe(1)
  expect(sub.estimates).toBe(1)
})

test("a scribbled header below the tail is counted as corrupt and the reader goes on past it", async () => {
  const t = await openTopic(1 << 16) // 4 KiB segments
  const sub = t.subscribe({ type: "n" }, { queue: 4096 })
  cleanup.push(sub)
  const first = t.publish({ type: "n", data: "0" })
  const second = t.publish({ type: "n", data: "1" })
  const d = region(t)
  d.setBigUint64(TopicLayout.OFF_DATA + (second & (t.capacity - 1)), 0x1234_5678_9abc_def0n, true)
  expect(second).toBeGreaterThan(first)
  // well past the next segment boundary, so the reader has a valid place to resume at
  for (let i = 2; i < 300; i++) t.publish({ type: "n", data: String(i) })
  const got = await drain(sub)
  expect(got[0]).toBe("0")
  expect(got.at(-1)).toBe("299")
  expect(sub.corrupt).toBe(1)
  expect(sub.estimates).toBe(1)
  expect(got.length + sub.lagged).toBeGreaterThanOrEqual(2) // the skipped events: in lagged, flagged by estimates
  // and a later event wakes it as usual
  t.publish({ type: "n", data: "late" })
  expect((await sub.receive(2000))?.text()).toBe("late")
})

test("a scribbled record exactly a ring behind an unmoving tail is counted as corrupt, not retried as lapped forever", async () => {
  const t = await openTopic(1 << 16)
  const sub = t.subscribe({}, { queue: 1024 })
  cleanup.push(sub)
  const d = region(t)
  const at = Number(d.getBigUint64(TopicLayout.OFF_TAIL, true))
  const word = TopicLayout.OFF_DATA + (at & (t.capacity - 1))
  // a claim left WRITING: the reader stops there and remembers where it waits (its entry's stuck_at)
  d.setBigUint64(word, hdr(at, 64, RecState.WRITING), true)
  d.setBigUint64(TopicLayout.OFF_TAIL, BigInt(at + 64), true)
  expect(sub.poll().count).toBe(0)
  // the header scribbled, and the tail put exactly one ring past it; nobody publishes any more
  d.setBigUint64(word, 0x1234_5678_9abc_def0n, true)
  d.setBigUint64(TopicLayout.OFF_TAIL, BigInt(at + t.capacity), true)
  for (let i = 0; i < 3; i++) sub.poll()
  // before: each poll retried it as lapped, returned 0 and left pending() at 1, so every reader spun
  expect(topicNative.sb_sub_pending(sub["native"].ptr!)).toBe(0)
  expect(sub.corrupt).toBe(1)
  expect(sub.estimates).toBe(1)
})

test("a scribbled header whose extent passes the tail is corrupt: the reader's cursor never passes the tail", async () => {
  const t = await openTopic(1 << 16)
  const sub = t.subscribe({}, { queue: 1024 })
  cleanup.push(sub)
  t.publish({ type: "n", data: "0" })
  const second = t.publish({ type: "n", data: "1" })
  const tail = Number(region(t).getBigUint64(TopicLayout.OFF_TAIL, true))
  // a header for its own position, padding 4 KiB long: 4 KiB past the tail, which nobody moves any more
  region(t).setBigUint64(TopicLayout.OFF_DATA + (second & (t.capacity - 1)), hdr(second, 4096, RecState.PADDING), true)
  expect(second + 4096).toBeGreaterThan(tail)
  const got: string[] = []
  for (let i = 0; i < 4; i++) for (const ev of sub.poll()) got.push(ev.text())
  // before: the cursor stepped over it to past the tail, read as lapped, restarted at the oldest record and
  // handed out the same events again on every poll, for ever
  expect(got).toEqual(["0"])
  expect(topicNative.sb_sub_pending(sub["native"].ptr!)).toBe(0)
  expect(sub.corrupt).toBe(1)
  expect(sub.estimates).toBe(1)
  t.publish({ type: "n", data: "late" })
  expect(await drain(sub)).toEqual(["late"])
})

test("a 33rd publisher is refused with TopicFullError (it would have no fence), and publishes once an entry is free", async () => {
  const name = fresh()
  const handles: Topic[] = []
  try {
    for (let i = 0; i < 33; i++) handles.push(await Topic.open(name, { capacity: 1 << 16 }))
    for (let i = 0; i < 32; i++) handles[i]!.publish({ type: "p", data: String(i) })
    expect(() => handles[32]!.publish({ type: "p" })).toThrow(TopicFullError)
    expect(handles[0]!.stats().publishers.length).toBe(32)
    handles.shift()!.close() // frees its entry once its native side is closed (a microtask later)
    await until(() => handles[0]!.stats().publishers.length === 31, "the closed handle's entry freed", 2000, 1)
    expect(typeof handles.at(-1)!.publish({ type: "p", data: "33rd" })).toBe("number")
  } finally {
    for (const h of handles) h.close()
  }
})
// ---- seeded hostile members (C): scribbled header words, or chaos over the whole ring ----

let stressBin: string | undefined
async function topicStress(): Promise<string> {
  stressBin ??= join(await zigBuild("topic-stress", { args: ["-Doptimize=ReleaseSafe"] }), "topic-stress")
  return stressBin
}

const SEEDS = Array.from({ length: 24 }, (_, i) => i + 1)

for (const mode of ["headers", "chaos"] as const) {
  test(`24 seeds of a hostile member writing ${mode === "headers" ? "random header words" : "chaos"} into the ring: every reader stays responsive and counts the records it finds broken`, async () => {
    const bin = await topicStress()
    let corrupt = 0
    for (const seed of SEEDS) {
      const args = mode === "chaos" ? [bin, "hostile", String(seed), "chaos"] : [bin, "hostile", String(seed)]
      const { stdout, stderr, code } = await run(args, { timeoutMs: 30_000 })
      if (code !== 0)
        throw new Error(`${args.join(" ")} exited with ${code}:\n${stdout.slice(-3000)}\n${stderr.slice(-2000)}`)
      const m = /^topic hostile ok: seed=\d+ .*corrupt=(\d+)/m.exec(stdout)
      expect(m).not.toBeNull()
      corrupt += Number(m![1])
    }
    console.log(`hostile ${mode}: 24 seeds, ${corrupt} corrupt records skipped and counted`)
    expect(corrupt).toBeGreaterThan(0)
  }, 300_000)
}
