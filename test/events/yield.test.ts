// Readers let the event loop turn: a publisher in another process floods the topic as fast as it can while a 10 ms
// interval in this process counts how often it fired before the flood ended: 20 is enough, so the flood is told to
// stop then (a count, never a timing bound). It ends by itself once this process has used FLOOD_S seconds of CPU (~290
// firings on a quiet machine; a loaded one gives it that CPU over a longer time, not fewer turns), so a reader that
// starves this process makes the test fail, not hang.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Topic, type Subscription } from "../../src/events/index.ts"
import { spawn, stopAll, until } from "../support/helpers.ts"

const PEER = join(import.meta.dir, "procs", "peer.ts")
const FLOOD_S = 3
const FLOOD_MAX_MS = 20 * FLOOD_S * 1000 // the peer's bound in wall time, for a process that gets no CPU at all
setDefaultTimeout(FLOOD_MAX_MS + 60_000)
let seq = 0
const fresh = () => `y-${process.pid}-${seq++}`
const cleanup: { close(): void }[] = []
afterEach(async () => {
  await stopAll()
  for (const c of cleanup.splice(0).reverse()) c.close()
})

/**
 * Floods `name` with events of `type` from another process until stop(), or until this process has used FLOOD_S
 * seconds of CPU; `ended()` is its end (Date.now()).
 */
async function flood(name: string, type: string) {
  const stopFile = join(tmpdir(), `slotbus-yield-stop-${fresh()}`)
  cleanup.push({ close: () => rmSync(stopFile, { force: true }) })
  const child = spawn([
    process.execPath,
    PEER,
    "flood",
    name,
    type,
    String(FLOOD_S),
    `--stop=${stopFile}`,
    `--cpu-of=${process.pid}`,
  ])
  await child.waitLine(/"ready":true/, 20_000)
  return {
    child,
    stop: () => writeFileSync(stopFile, ""),
    ended: async () =>
      (JSON.parse((await child.waitLine(/^.*"ended".*$/, FLOOD_MAX_MS + 20_000))[0]) as { ended: number }).ended,
  }
}

/** Until `cond`, looked at every 10 ms, for as long as the flood may last: whether timers fire is what is tested. */
const during = (cond: () => boolean, what: string) => until(cond, what, FLOOD_MAX_MS + 20_000)

/** Counts a 10 ms interval's firings with their wall-clock times (comparable with the peer's end). */
function ticker() {
  const at: number[] = []
  const timer = setInterval(() => at.push(Date.now()), 10)
  // at or before t: the 20th firing and the flood's end (told at once) may share a millisecond
  return { at, stop: () => clearInterval(timer), before: (t: number) => at.filter((x) => x <= t).length }
}

async function subscribed(type: string, idle?: "spin" | "adaptive" | "park", queue = 256) {
  const t = await Topic.open(fresh())
  cleanup.push(t)
  const sub = t.subscribe({ type }, { queue, ...(idle && { idle }) })
  cleanup.push(sub)
  return { t, sub }
}

/** Keeps the reader slower than the publisher: some work per event, as a real consumer does. */
function work() {
  const until = Bun.nanoseconds() + 2_000
  while (Bun.nanoseconds() < until) {}
}

test("a for-await subscriber's timers keep firing while a faster publisher floods it", async () => {
  const { t, sub } = await subscribed("flood", "adaptive", 1 << 16)
  const peer = await flood(t.name, "flood")
  const ticks = ticker()
  void peer.ended().then(() => sub.close()) // a reader that starved the timers waits for no more events then
  let read = 0
  try {
    for await (const _ of sub) {
      read++
      work()
      if (ticks.at.length >= 20) break
    }
    peer.stop()
    const ended = await peer.ended()
    expect(read).toBeGreaterThan(0)
    expect(ticks.before(ended)).toBeGreaterThanOrEqual(20)
  } finally {
    ticks.stop()
  }
})

test.each(["spin", "adaptive", "park"] as const)(
  "a %s receive() waiting through a flood of events its filter refuses lets timers fire",
  async (idle) => {
    const { t, sub } = await subscribed("wanted", idle)
    const got = sub.receive()
    const peer = await flood(t.name, "unwanted")
    const ticks = ticker()
    try {
      await during(() => ticks.at.length >= 20, "20 firings")
      peer.stop()
      const ended = await peer.ended()
      expect(ticks.before(ended)).toBeGreaterThanOrEqual(20)
    } finally {
      ticks.stop()
      sub.close()
      expect(await got).toBeUndefined()
    }
  },
)

test("batches() and ready() + poll() readers let timers fire during a flood", async () => {
  const { t, sub } = await subscribed("flood")
  const other = t.subscribe({ type: "flood" })
  cleanup.push(other)
  const peer = await flood(t.name, "flood")
  const ticks = ticker()
  let batches = 0,
    readies = 0
  const readBatches = (async () => {
    for await (const b of sub.batches(64)) {
      batches++
      b.forEachRaw(work)
    }
  })()
  const readReady = (async (s: Subscription) => {
    while (await s.ready()) {
      readies++
      for (const _ of s.poll(64)) work()
    }
  })(other)
  try {
    await during(() => ticks.at.length >= 20 && batches > 0 && readies > 0, "20 firings, a batch and a ready()")
    peer.stop()
    const ended = await peer.ended()
    expect(batches).toBeGreaterThan(0)
    expect(readies).toBeGreaterThan(0)
    expect(ticks.before(ended)).toBeGreaterThanOrEqual(20)
  } finally {
    ticks.stop()
    sub.close()
    other.close()
    await Promise.all([readBatches, readReady])
  }
})
