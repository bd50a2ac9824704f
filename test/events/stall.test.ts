// Publisher processes stopped (SIGSTOP) at random points, mid-copy included, while the others lap a small
// ring (docs/PROTOCOL.md §8.3: fences). Before fences a resumed publisher wrote the rest of its record over
// records others had committed meanwhile: subscribers saw foreign bytes and lost events uncounted.
import { afterEach, expect, test } from "bun:test"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { spawn as spawnChild, stopAll, type Child } from "../support/helpers.ts"

const STALL = join(import.meta.dir, "procs", "stall.ts")
afterEach(stopAll)

let seq = 0
const fresh = () => `stall-${process.pid}-${seq++}`

function member(...args: string[]) {
  const child = spawnChild([process.execPath, STALL, ...args])
  let read = 0
  const next = async (timeoutMs = 30_000) => JSON.parse(await child.line(read++, timeoutMs)) as Record<string, unknown>
  return { child, next }
}

/** SIGSTOP a random publisher for 0.2–2 ms every 0.3–1.5 ms, `count` times; every one is continued at the end. */
async function stopAtRandom(pubs: Child[], count: number): Promise<number> {
  let x = 0x2545f491 ^ process.pid
  const rnd = () => ((x ^= x << 13), (x ^= x >>> 17), (x ^= x << 5), (x >>> 0) / 2 ** 32)
  let stops = 0
  try {
    while (stops < count) {
      const p = pubs[Math.floor(rnd() * pubs.length)]!
      p.signal("SIGSTOP")
      stops++
      await Bun.sleep(0.2 + rnd() * 1.8)
      p.signal("SIGCONT")
      await Bun.sleep(0.3 + rnd() * 1.2)
    }
  } finally {
    for (const p of pubs) p.signal("SIGCONT")
  }
  return stops
}

test("three publisher processes stopped at random on a 64 KiB ring: no foreign byte in any event, received + lagged = published", async () => {
  const name = fresh()
  const STOPS = 200
  const dir = mkdtempSync(join(tmpdir(), "slotbus-stall-"))
  const stopFile = join(dir, "stop")
  const subs = [member("sub", name, "3"), member("sub", name, "3")]
  for (const s of subs) expect((await s.next()).ready).toBe(true)
  const pubs = [0, 1, 2].map((i) => member("pub", name, String(i), stopFile))
  for (const p of pubs) expect((await p.next()).ready).toBe(true)
  // the publishers run until the stopper is done, so a fast machine cannot finish before the stops are made
  const stops = await stopAtRandom(
    pubs.map((p) => p.child),
    STOPS,
  )
  writeFileSync(stopFile, "")
  let published = 0
  for (const p of pubs) published += Number((await p.next(120_000)).published)
  rmSync(dir, { recursive: true })
  const results = await Promise.all(subs.map((s) => s.next(60_000)))
  for (const r of results) {
    console.log(`stops ${stops}: ${JSON.stringify(r)}`)
    expect(r.firstForeign).toBe("")
    expect(r.foreign).toBe(0)
    expect(r.outOfOrder).toBe(0)
    expect(r.corrupt).toBe(0)
    expect(r.estimates).toBe(0)
    expect(Number(r.received) + Number(r.lagged)).toBe(published)
    expect(r.fenced).toBeGreaterThan(0) // stopped publishers were stepped around (stats().fenced)
  }
  expect(stops).toBe(STOPS)
}, 180_000)
