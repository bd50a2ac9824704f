// A worker process for the crash, hostile and uid tests. Usage:
//   bun test/support/core/crash-worker.ts <bus-name> <echo|hang|slow> [--hub-uid=N] [--reconnect]
// Prints "ready <pid> <uid>" once connected, "active <n>" whenever a hanging handler starts, and
// "closed <reason>" when the hub goes away; a failed connect prints "error <ErrorClass> <message>" and exits 2.
//
// echo: raw calls answer the body reversed; HTTP requests answer 200 with x-pid and the body as sent.
// hang: every handler waits forever, so each request stays claimed until the process dies.
// slow: like echo, but each handler first sleeps 50 ms, then reads the request body (which the docs say
//       stays valid until the handler's promise settles) and writes its reply through req.reply().
import { SlotWorker, type SlotRequest, type SlotReply } from "../../../src/index.ts"

const [name, mode = "echo", ...flags] = process.argv.slice(2)
if (!name || !["echo", "hang", "slow"].includes(mode))
  throw new Error("usage: crash-worker.ts <bus-name> <echo|hang|slow> [flags]")
const hubUidFlag = flags.find((f) => f.startsWith("--hub-uid="))?.slice("--hub-uid=".length)

let active = 0
function handle(req: SlotRequest): SlotReply | Promise<SlotReply> {
  if (mode === "hang") {
    console.log(`active ${++active}`)
    return new Promise<SlotReply>(() => {})
  }
  if (mode === "slow") return slowEcho(req)
  if (req.kind === "raw") return req.body.slice().reverse()
  return { status: 200, headers: { "x-pid": String(process.pid) }, body: req.body.slice() }
}

async function slowEcho(req: SlotRequest): Promise<SlotReply> {
  await Bun.sleep(50)
  const out = req.reply(req.body.length)
  for (let i = 0; i < out.length; i++) out[i] = req.body[req.body.length - 1 - i]!
  return out
}

let worker: SlotWorker
try {
  worker = await SlotWorker.connect(name, handle, {
    hubUid: hubUidFlag === undefined ? undefined : Number(hubUidFlag),
    reconnect: flags.includes("--reconnect"),
  })
} catch (e) {
  const err = e as Error
  console.log(`error ${err.constructor.name} ${err.message}`)
  process.exit(2)
}
console.log(`ready ${process.pid} ${process.getuid?.()}`)
const closed = await worker.closed
console.log(`closed ${closed.reason}`)
if (mode === "slow") await Bun.sleep(300) // a worker process outlives its hub for a while: handlers still run
process.exit(0)
