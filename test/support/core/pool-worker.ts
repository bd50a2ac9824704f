// A pool's worker for test/core/worker/worker-lifetime.test.ts, started by a front's superviseWorkers. Usage:
//   bun test/support/core/pool-worker.ts <bus-name> [--start-delay-ms=N] [--wait-for-hub-ms=N] [--extra-bus=<name>]
//                                   [--child]
// Sleeps --start-delay-ms first (a worker loading its code), then serves <bus-name> (echo; waits for its hub up to
// --wait-for-hub-ms, default 5000) and, with --extra-bus, also another process's bus (a process serving two buses).
// --child: once it serves, starts this file again for <bus-name> as a child of its own (it inherits the environment),
// which serves on and never exits by itself. Prints "ready <pid>" once it serves, "closed <bus> <reason>" when a
// worker of it closes; it never exits by itself, and has no SIGTERM listener of its own. The body "?hold" is never
// answered (a request in flight to signal it under).
import { SlotWorker } from "../../../src/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: pool-worker.ts <bus-name> [flags]")
const flag = (key: string) => flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3)

setInterval(() => {}, 1000) // an app's own timer: the process stays unless slotbus ends it
await Bun.sleep(Number(flag("start-delay-ms") ?? 0))
const serve = async (bus: string) => {
  const w = await SlotWorker.connect(
    bus,
    (req) => (req.body.length === 5 && req.text() === "?hold" ? new Promise<never>(() => {}) : req.body),
    { waitForHubMs: Number(flag("wait-for-hub-ms") ?? 5000) },
  )
  void w.closed.then((c) => console.log(`closed ${bus} ${c.reason}`))
}
await serve(name)
const extra = flag("extra-bus")
if (extra) await serve(extra)
if (flags.includes("--child"))
  Bun.spawn([process.execPath, import.meta.path, name, "--wait-for-hub-ms=600000"], { stdout: "inherit" })
console.log(`ready ${process.pid}`)
