// A front that supervises its workers (superviseWorkers), run under Node 26 by test/support/runtime/peers.ts (or
// under Bun as it is). Usage: pool-front.js <bus-name> <instances> <command as JSON> [<options as JSON>]: options
// { listen, pool } are added to SlotBus.listen's and superviseWorkers' (instances a number or { min, max }).
// Listens as <bus-name>, starts the pool and prints "listening <pid>,…" (its workers' pids), then "start <index>
// <pid>" and "exit <index> <pid> <code> <signal> <cause>" as its workers come and go; the workers' own lines are the
// pool's ("[<bus-name>#<index> pid <pid>] …"). Lines on stdin: "call <id> <text>" prints "answer <id> <text back>"
// or "failed <id> <error name>" when it settles (calls overlap); "workers" prints "workers <pid>:<in flight>,…";
// "reload" prints "reloaded <pids>" or "reload-failed <message>"; "pool" prints "pool <state> <running>
// <replacements as JSON> <crash loop: true or false>"; "joining" prints "joining <n>", the waits for a worker's join
// under way on the bus (a reload's successor's; none left once its reload settled); "health" prints "health <JSON>": the bus's status warnings,
// its pools' rows and its slotbus_worker_crash_loop samples; "stop" stops the pool and prints "stopped <workers the bus lists then>"; "close" stops the
// pool, closes the bus, exits 0; "close-bus [<timeoutMs>]" closes the bus alone (the pool stops with it), prints "closing" once it began, then "closed <pids of
// the pool's processes alive as close() resolved, comma-separated>" and exits 0. SIGINT (Ctrl-C) prints "interrupted",
// stops the pool (drained), closes the bus and exits 0.
import { createInterface } from "node:readline"
import { type ListenOptions, SlotBus, type SuperviseWorkersOptions, superviseWorkers } from "../../../src/index.ts"
import type { StatusSection } from "../../../src/status/index.ts"
import { familiesOf, renderMetrics } from "../../../src/status/internal.ts"
import { busVerb } from "./bus-verbs.ts"

const [name, instances, command, options] = process.argv.slice(2)
if (!name || !instances || !command) throw new Error("usage: pool-front.js <bus-name> <instances> <command as JSON>")
const extra = JSON.parse(options ?? "{}") as { listen?: ListenOptions; pool?: Partial<SuperviseWorkersOptions> }
const bus = await SlotBus.listen(name, extra.listen)
const pool = superviseWorkers(bus, {
  command: JSON.parse(command) as string[],
  instances: JSON.parse(instances) as SuperviseWorkersOptions["instances"],
  restart: { backoffInitialMs: 10 },
  ...extra.pool,
})
const started = new Set(pool.instances.map((i) => i.pid))
pool.on("start", (i) => (started.add(i.pid), console.log(`start ${i.index} ${i.pid}`)))
pool.on("exit", (i, e) => console.log(`exit ${i.index} ${e.pid} ${e.code} ${e.signal} ${e.cause}`))
const pids = () => pool.instances.map((i) => i.pid).join(",")
// Ctrl-C, as the examples' fronts take it: the pool drained and stopped, the bus closed
process.once("SIGINT", async () => {
  console.log("interrupted")
  await pool.stop()
  await bus.close()
  process.exit(0)
})
console.log(`listening ${pids()}`)
for await (const line of createInterface({ input: process.stdin })) {
  const [verb, ...rest] = line.split(" ")
  if (busVerb(bus, verb, rest, { timeoutMs: 120_000 })) continue
  if (verb === "reload")
    void pool.reload({ readyTimeoutMs: 60_000 }).then(
      () => console.log(`reloaded ${pids()}`),
      (e: Error) => console.log(`reload-failed ${e.message}`),
    )
  else if (verb === "joining") console.log(`joining ${bus.pools.joining}`)
  else if (verb === "stop") void pool.stop().then(() => console.log(`stopped ${bus.workerCount}`))
  else if (verb === "pool")
    console.log(`pool ${pool.state} ${pool.runningCount} ${JSON.stringify(pool.replacements)} ${pool.crashLoop}`)
  else if (verb === "health") {
    const status = (bus as unknown as Record<symbol, () => StatusSection>)[Symbol.for("slotbus.status")]!()
    const loop = renderMetrics(familiesOf([bus]))
      .split("\n")
      .filter((l) => l.startsWith("slotbus_worker_crash_loop{"))
    const pools = status.tables.find((t) => t.title.startsWith("worker pools"))?.rows
    console.log(`health ${JSON.stringify({ warnings: status.warnings, pools, loop })}`)
  } else if (verb === "close-bus") {
    const closed = bus.close(rest[0] ? { timeoutMs: Number(rest[0]) } : {})
    console.log("closing")
    await closed
    console.log(`closed ${[...started].filter(alive).join(",")}`)
    process.exit(0)
  } else if (verb === "close") break
}
await pool.stop()
await bus.close()
process.exit(0)

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
