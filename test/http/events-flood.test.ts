// The hub's GET /events fan-out lets the hub's event loop turn: a publisher in another process floods the hub's
// events topic while 10 SSE clients read and /health is asked again and again (counts, not timing bounds). The flood
// is told to stop once /health answered 20 times and every client got its share; it ends by itself once this process
// has used FLOOD_S seconds of CPU (what a quiet machine gives it in FLOOD_S seconds), so a hub that starves its loop
// fails on the count rather than hangs.
import { afterEach, expect, setDefaultTimeout, test } from "bun:test"
import { rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { createHub } from "../../src/http/index.ts"
import { spawn, stopAll } from "../support/helpers.ts"

setDefaultTimeout(150_000)
const PEER = join(import.meta.dir, "..", "events", "procs", "peer.ts")
const FLOOD_S = 3
afterEach(stopAll)

test("/health answers while 10 SSE clients read a flood published by another process", async () => {
  await using hub = await createHub({ port: 0, quiet: true, heartbeatMs: 60_000 })
  const aborts: AbortController[] = []
  const reading: Promise<void>[] = []
  const bytes: number[] = []
  const stopFile = join(tmpdir(), `slotbus-events-flood-stop-${process.pid}`)
  try {
    for (let i = 0; i < 10; i++) {
      const abort = new AbortController()
      aborts.push(abort)
      const res = await fetch(`${hub.url}/events?types=flood`, { signal: abort.signal })
      expect(res.status).toBe(200)
      bytes.push(0)
      const reader = res.body!.getReader()
      reading.push(
        (async () => {
          try {
            for (let r = await reader.read(); !r.done; r = await reader.read()) bytes[i]! += r.value.length
          } catch {} // aborted at the end, or dropped as too slow
        })(),
      )
    }
    const peer = spawn([
      process.execPath,
      PEER,
      "flood",
      hub.eventsTopic,
      "flood",
      String(FLOOD_S),
      `--stop=${stopFile}`,
      `--cpu-of=${process.pid}`,
    ])
    await peer.waitLine(/"ready":true/, 20_000)
    let ended: number | undefined
    const ending = peer
      .waitLine(/^.*"ended".*$/, (20 * FLOOD_S + 20) * 1000)
      .then((l) => (ended = (JSON.parse(l[0]) as { ended: number }).ended))
    const answers: number[] = []
    let stopped = false
    while (ended === undefined) {
      const res = await fetch(`${hub.url}/health`)
      expect(res.status).toBe(200)
      await res.json()
      answers.push(Date.now())
      if (!stopped && answers.length >= 20 && bytes.every((n) => n > 64 * 1024)) {
        writeFileSync(stopFile, "")
        stopped = true
      }
    }
    await ending
    const during = answers.filter((t) => t <= ended!).length
    console.log(`/health answers during the flood: ${during}; bytes per client: ${bytes.join(" ")}`)
    // Every client got a share of the flood: the fan-out let Bun write to the sockets between reads (before, it
    // queued a whole 1 MiB read for each client without a turn and dropped all ten as too slow).
    for (const n of bytes) expect(n).toBeGreaterThan(64 * 1024)
    expect(during).toBeGreaterThanOrEqual(20)
  } finally {
    rmSync(stopFile, { force: true })
    for (const a of aborts) a.abort()
    await Promise.all(reading)
  }
})
