// One front of a shared name for the fronts tests (docs/PROTOCOL.md §15). Usage:
//   bun test/support/core/shared-front.ts <bus-name> [--pool=N] [--worker=<file of test/support/core>] [--plain] [--notify]
//                                    [--command=<worker command as JSON>] [-- <worker flags>]
// Listens with { shared: true } (--plain: without); with --pool, runs superviseWorkers(bus, N echo workers, or of
// --worker given its bus name and the worker flags, or of --command as it is) (the name's pool: only the fronts'
// leader runs it). Runs under Bun as it is and under Node built (test/support/runtime/peers.ts), its workers then
// given by --command. Prints "ready <pid> <front index>", then answers lines on stdin:
//   wait N     once N workers are connected: "workers <pid,pid,…>"
//   load       starts 8 callers making requests as fast as they are answered
//   report     "report <answered> <failed> <wrong> <pid,pid,…>": since the last report; the pids that answered
//   pool       "pool <state> <pid,pid,…>": this front's supervisor and its workers' pids
//   status     "status <json>": the bus's section of the status view
//   reload     starts the pool's reload (not awaited): "reloading"
//   redeploy   the pool's reload, awaited: "reloaded", or "reload failed <error class>: <message>"
//   close      closes the bus and nothing else (the pool is left as it is): "closed"; "close drain": with a 2 s
//              request in flight, drained (bus.close()'s default)
//   poison on|off  4 callers send GET /poison (a crash bug, with --worker=buggy-worker.ts) until "poison off"
//   crashes    "crashes <pool state> <crash restarts>": this front's supervisor
// With --notify, once its pool's workers joined it tells systemd READY=1 ($NOTIFY_SOCKET): "notified <true|false>".
// Exits on SIGTERM (pool stopped, bus closed); reloads the pool on SIGHUP, as "redeploy" (docs/api.md's front).
import { join } from "node:path"
import { createInterface } from "node:readline"
import { setTimeout as sleep } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import { notifySystemd, SlotBus, superviseWorkers } from "../../../src/index.ts"
import { STATUS } from "../../../src/status/index.ts"

const [name, ...flags] = process.argv.slice(2)
if (!name) throw new Error("usage: shared-front.ts <bus-name> [--pool=N]")
const poolSize = Number(flags.find((f) => f.startsWith("--pool="))?.slice(7) ?? 0)
const workerFile = flags.find((f) => f.startsWith("--worker="))?.slice(9)
const workerFlags = flags.includes("--") ? flags.slice(flags.indexOf("--") + 1) : []
const here = fileURLToPath(new URL(".", import.meta.url))
const command = flags.find((f) => f.startsWith("--command="))?.slice(10)
const workerArgv = workerFile
  ? [join(here, workerFile), name, ...workerFlags]
  : [join(here, "..", "echo-worker.ts"), name, "--wait-for-hub-ms=5000"]

const bus = await SlotBus.listen(name, { shared: !flags.includes("--plain") })
const sup =
  poolSize > 0
    ? superviseWorkers(bus, {
        command: command ? (JSON.parse(command) as string[]) : [process.execPath, ...workerArgv],
        instances: poolSize,
        stdout: "ignore",
      })
    : null
const tally = { answered: 0, failed: 0, wrong: 0, pids: new Set<string>(), errors: [] as string[] }
let loading = false
let poisoning = false

async function caller(c: number) {
  for (let i = 0; loading; i++) {
    const body = `${process.pid}:${c}:${i}`
    try {
      const r = await bus.request({ method: "POST", path: "/echo", body }, { timeoutMs: 30_000 })
      if (r.text() === body) tally.answered++
      else tally.wrong++
      tally.pids.add(r.headers.get("x-pid") ?? "?")
    } catch (e) {
      tally.failed++
      if (tally.errors.length < 5) tally.errors.push(String(e))
    }
  }
}

const redeploy = () =>
  sup?.reload().then(
    () => console.log("reloaded"),
    (e: Error) => console.log(`reload failed ${e.name}: ${e.message}`),
  )
process.on("SIGHUP", redeploy)
console.log(`ready ${process.pid} ${bus.front?.index}`)
if (flags.includes("--notify")) {
  await bus.waitForWorkers(poolSize, 30_000)
  console.log(`notified ${await notifySystemd("READY=1")}`)
}
process.on("SIGTERM", async () => {
  loading = false
  await sup?.stop({ killGraceMs: 500 })
  await bus.close({ drain: false })
  process.exit(0)
})
for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, arg] = line.trim().split(" ")
  if (cmd === "wait") {
    await bus.waitForWorkers(Number(arg), 30_000)
    console.log(`workers ${bus.workers.map((w) => w.pid).join(",")}`)
  } else if (cmd === "load") {
    loading = true
    for (let c = 0; c < 8; c++) void caller(c)
  } else if (cmd === "report") {
    console.log(`report ${tally.answered} ${tally.failed} ${tally.wrong} ${[...tally.pids].join(",")}`)
    for (const e of tally.errors) console.error(e)
    Object.assign(tally, { answered: 0, failed: 0, wrong: 0, pids: new Set(), errors: [] })
  } else if (cmd === "status") {
    console.log(`status ${JSON.stringify(await bus[STATUS]())}`)
  } else if (cmd === "reload") {
    sup?.reload().catch(() => {})
    console.log("reloading")
  } else if (cmd === "redeploy") {
    void redeploy()
  } else if (cmd === "close") {
    loading = false
    if (arg === "drain") void bus.request({ path: "/echo", headers: { "x-delay-ms": "2000" } }).catch(() => {})
    await bus.close({ drain: arg === "drain" })
    console.log("closed")
  } else if (cmd === "poison") {
    poisoning = arg === "on"
    const poison = async () => {
      while (poisoning) await bus.request({ method: "GET", path: "/poison" }, { timeoutMs: 2000 }).catch(() => sleep(5))
    }
    if (poisoning) for (let c = 0; c < 4; c++) void poison()
    console.log(`poison ${arg}`)
  } else if (cmd === "crashes") {
    console.log(`crashes ${sup?.state ?? "none"} ${sup?.restarts ?? 0}`)
  } else if (cmd === "pool") {
    console.log(`pool ${sup?.state ?? "none"} ${sup?.instances.map((i) => i.pid).join(",") ?? ""}`)
  }
}
