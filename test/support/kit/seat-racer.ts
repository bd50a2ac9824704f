// A candidate that stands for one name over and over (src/kit/host/host-seat.ts), for test/kit/host/seat-race.test.ts.
//   bun seat-racer.ts <name> <log> <ms> stand   for <ms>: stands; holding, appends "+<pid>" to <log>, keeps the name
//                                               a moment, appends "-<pid>" ("!<pid>" if its file went meanwhile) and
//                                               closes; not holding, closes and stands again
//   bun seat-racer.ts <name> <log> <ms> probe   for <ms>: looks at the name as a sweep of the socket directory does
//                                               (sb_host_free: a stale file unlinked under the lock), over and over
import { appendFileSync, existsSync } from "node:fs"
import { join } from "node:path"
import { HostSeat } from "../../../src/kit/host/host-seat.ts"
import { freeHostName, loadNative } from "../../../src/native/ffi.ts"
import { sleepSync } from "../../../src/runtime/index.ts"

await loadNative()
const [name, log, ms, mode] = [process.argv[2]!, process.argv[3]!, Number(process.argv[4]), process.argv[5]]
const prefix = "slotbus.test-race."
const file = join(process.env.SLOTBUS_SOCKET_DIR!, prefix + name)
const end = performance.now() + ms
let n = 0
for (let i = 0; performance.now() < end; i++) {
  if (mode === "probe") {
    n += freeHostName(prefix, name).free ? 1 : 0
    continue
  }
  const seat = HostSeat.stand(prefix, name, { elected: () => appendFileSync(log, `+${process.pid}\n`) })
  if (seat.held) {
    n++
    sleepSync(0.2)
    // its file is still there: nobody may unlink a held name's file (the next candidate would bind a second holder)
    appendFileSync(log, `${existsSync(file) ? "-" : "!"}${process.pid}\n`)
  }
  seat.close()
  if (i % 64 === 0) await new Promise((r) => setImmediate(r)) // the refused watches' connections settle
}
console.log(`${mode} ${n}`)
