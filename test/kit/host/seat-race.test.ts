// The per-host election (src/kit/host/host-seat.ts, docs/PROTOCOL.md §15.2) while candidates stand together all the
// time: a held name's file is never unlinked and no two hold the name at once. Linux makes a bound socket's file
// before it hashes the socket by its inode; a probe (sb_host_free's, under the directory's lock) in between reads
// ECONNREFUSED, and took a file being bound for a dead holder's: it unlinked it, and the next candidate bound a
// second holder (the seat test failed once under CI load). The race is a few hundred nanoseconds wide; three
// candidates and three probes for 4 s per backend showed it in 11 runs of 13 (8 of 8 quiet, 3 of 5 beside two CPU
// burners) before candidates bound under the lock (sb_host_stand).
import { afterEach, describe, expect, test } from "bun:test"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { bunChild, stopAll } from "../../support/helpers.ts"

afterEach(stopAll)

const RACE_MS = 4000

/** What the candidates' log says: elections, elections while another held, holders whose file went under them. */
function tally(log: string) {
  let holding = 0
  const seen = { elected: 0, twoHolders: 0, fileGone: 0 }
  for (const line of log.split("\n")) {
    if (line.startsWith("+")) {
      seen.elected++
      if (++holding > 1) seen.twoHolders++
    } else if (line.startsWith("-") || line.startsWith("!")) {
      holding--
      if (line.startsWith("!")) seen.fileGone++
    }
  }
  return seen
}

describe.each(["linux", "posix"])("the %s backend", (platform) => {
  test(
    "candidates standing together over and over: never two holders, never a holder's file unlinked",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "slotbus-seat-race-"))
      try {
        const log = join(dir, "log")
        const env = {
          ...process.env,
          SLOTBUS_SOCKET_DIR: dir,
          ...(platform === "posix" ? { SLOTBUS_PLATFORM: "posix" } : {}),
        }
        const modes = ["stand", "stand", "stand", "probe", "probe", "probe"]
        const all = modes.map((mode) => bunChild("kit/seat-racer.ts", ["race", log, String(RACE_MS), mode], { env }))
        const codes = await Promise.all(all.map((c) => c.exited))
        expect(codes, all.map((c) => c.output).join("\n")).toEqual(modes.map(() => 0))
        const seen = tally(readFileSync(log, "utf8"))
        expect(seen.elected).toBeGreaterThan(100) // the candidates did take turns
        expect({ twoHolders: seen.twoHolders, fileGone: seen.fileGone }).toEqual({ twoHolders: 0, fileGone: 0 })
      } finally {
        await stopAll()
        rmSync(dir, { recursive: true, force: true })
      }
    },
    RACE_MS + 30_000,
  )
})
