// The per-host election (src/kit/host/host-seat.ts, docs/PROTOCOL.md §1.1): whatever the order in which candidates
// stand after a holder's kill -9, one process holds the name. On both backends, each with a socket directory of
// its own; the candidates all Bun, or Bun and Node taking turns (Node binds through node:net).
import { afterAll, afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { busName, stopAll, until, type Child } from "../../support/helpers.ts"
import { peerChild, peerSkip, removeNodeBuilds } from "../../support/runtime/peers.ts"

afterEach(stopAll)
afterAll(removeNodeBuilds)

const rows = [
  ["linux", "Bun"],
  ["posix", "Bun"],
  ["linux", "Bun and Node"],
  ["posix", "Bun and Node"],
] as const
describe.each(rows)("the %s backend, candidates in %s", (platform, runtimes) => {
  const skip = runtimes === "Bun" ? null : peerSkip("node")
  if (skip) console.warn(`skipped: the election with Node candidates (${skip})`)
  test.skipIf(skip !== null)(
    "six candidates, the holder killed with SIGKILL five times: each time exactly one other takes the name",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "slotbus-seat-"))
      try {
        const env = {
          ...process.env,
          SLOTBUS_SOCKET_DIR: dir,
          ...(platform === "posix" ? { SLOTBUS_PLATFORM: "posix" } : {}),
        }
        const name = busName("seat")
        const all: Child[] = []
        for (let i = 0; i < 6; i++) {
          const runtime = runtimes === "Bun" || i % 2 === 0 ? "bun" : "node"
          all.push(await peerChild(runtime, "kit/seat-candidate.ts", [name], { env }))
        }
        for (const c of all) await c.waitLine(/^ready \d+$/, 20_000)
        const holders = () => all.filter((c) => c.running && c.lines.some((l) => l.startsWith("elected")))
        for (let kill = 0; kill <= 5; kill++) {
          await until(() => holders().length >= 1, `a candidate holds the name (after ${kill} kills)`, 20_000)
          // the others stood at the same moment the holder died: a second holder shows within this time or never
          await Bun.sleep(300)
          expect(holders().map((c) => c.pid)).toHaveLength(1)
          if (kill < 5) await holders()[0]!.kill("SIGKILL")
        }
      } finally {
        await stopAll()
        rmSync(dir, { recursive: true, force: true })
      }
    },
    120_000,
  )
})
