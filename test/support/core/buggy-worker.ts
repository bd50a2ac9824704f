// A worker with a crash bug, for the crash policy tests. Usage:
//   bun test/support/core/buggy-worker.ts <bus-name> [--crash-one-in=N] [--exit-after-ms=N]
// HTTP requests: /poison kills this process (SIGKILL, as a native crash would); any other path echoes the body
// with x-pid, except that with --crash-one-in=N each request kills the process with probability 1/N. /slow?ms=N
// answers after N ms without watching req.signal (a handler that runs on after its caller left).
// --exit-after-ms=N: exits with code 1 N ms after it connected (code that breaks a second after it started).
// --throw-after-ms=N, --reject-after-ms=N: throws from a timer, or leaves a rejection unhandled, N ms after it
// connected, its module still awaiting `worker.closed`. --keep-running: connects with exitOnUncaught: false;
// --own-handler: installs a process.on("uncaughtException" and "unhandledRejection") of its own, printing "handled".
// Prints "ready <pid>" once connected; closes on SIGTERM, exits 0 when the hub goes away.
import { SlotWorker, type SlotReply, type SlotRequest } from "../../../src/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: buggy-worker.ts <bus-name> [--crash-one-in=N]")
const flag = (key: string) => Number(flags.find((f) => f.startsWith(`--${key}=`))?.slice(key.length + 3) ?? 0)
const oneIn = flag("crash-one-in")
const exitAfterMs = flag("exit-after-ms")
const throwAfterMs = flag("throw-after-ms")
const rejectAfterMs = flag("reject-after-ms")

function handle(req: SlotRequest): SlotReply | Promise<SlotReply> {
  if (req.path === "/poison" || (oneIn > 0 && Math.random() * oneIn < 1)) process.kill(process.pid, "SIGKILL")
  const reply = { status: 200, headers: { "x-pid": String(process.pid) }, body: req.body.slice() }
  if (!req.path.startsWith("/slow?")) return reply
  return Bun.sleep(Number(new URL(req.path, "http://x").searchParams.get("ms"))).then(() => reply)
}

if (flags.includes("--own-handler"))
  for (const event of ["uncaughtException", "unhandledRejection"] as const)
    process.on(event, (e) => console.log(`handled ${(e as Error).message}`))
const worker = await SlotWorker.connect(name, handle, flags.includes("--keep-running") ? { exitOnUncaught: false } : {})
console.log(`ready ${process.pid}`)
if (exitAfterMs > 0) setTimeout(() => process.exit(1), exitAfterMs)
if (throwAfterMs > 0)
  setTimeout(() => {
    throw new Error(`a bug ${throwAfterMs} ms after the start`)
  }, throwAfterMs)
if (rejectAfterMs > 0)
  setTimeout(() => void Promise.reject(new Error(`a rejection ${rejectAfterMs} ms after the start`)), rejectAfterMs)
process.on("SIGTERM", () => void worker.close())
await worker.closed
process.exit(0)
