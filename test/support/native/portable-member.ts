// A process using slotbus through whichever backend SLOTBUS_PLATFORM picks, for test/native/portable.test.ts.
//   hub <name>        listen, subscribe to topic <name> (parked), claim subject "s" of contest <name>; "ready";
//                     then, once a worker is attached, one request: "response <status>" or "error <name>"
//                     (again after each answer, while a worker is attached), "event <text>" per event
//   baseline          nothing of slotbus: the fds bun itself holds
//   worker <name>     connect (answers 200), publish "x" to topic <name>, claim "s" (waits: the hub holds it); "ready"
//   opens <name>      listen, connect, Topic.open, Contest.open, each on its own: "<what> ok" or
//                     "<what> <error name>: <message>" per line, then "done"
//   truncater <name>  connect; on its first request shrink its region to 0 bytes (what a hostile peer can do without
//                     seals), print "truncated", then answer
//   front <name>      listen shared (docs/PROTOCOL.md §15); "ready <front index>"; "join <pid>" / "leave <pid>" per
//                     worker; once one is there, 4 callers keep requests flowing: "answered <n>" every 100 answers,
//                     "error <name>: <message>" per failure
//   listen <name>     listen (not shared); "ready"
//   churn <name>      connect and close again and again: "connected <n>" after each hello
import { ftruncateSync, readdirSync, readlinkSync } from "node:fs"
import { SlotBus, SlotWorker } from "../../../src/index.ts"
import { Topic } from "../../../src/events/index.ts"
import { Contest } from "../../../src/leases/index.ts"

const [role, name] = process.argv.slice(2) as [string, string]
const say = (s: string) => process.stdout.write(`${s}\n`)
const subject = { kind: 1, label: "s" }

if (role === "hub") {
  const bus = await SlotBus.listen(name)
  const topic = await Topic.open(name)
  const sub = topic.subscribe({ type: "t" })
  const contest = await Contest.open(name)
  await contest.claim(subject, { owner: "hub" })
  say("ready")
  void (async () => {
    for await (const ev of sub) say(`event ${ev.text()}`)
  })()
  let busy = false
  setInterval(() => {
    if (busy || bus.workerCount === 0) return
    busy = true
    bus
      .request({ method: "GET", path: "/" }, { timeoutMs: 3000 })
      .then(
        (r) => say(`response ${r.status}`),
        (e: Error) => say(`error ${e.name}: ${e.message}`),
      )
      .finally(() => setTimeout(() => (busy = false), 50))
  }, 20)
} else if (role === "worker") {
  await SlotWorker.connect(name, () => ({ status: 200, body: "ok" }))
  const topic = await Topic.open(name)
  topic.publish({ type: "t", data: "x" })
  const contest = await Contest.open(name)
  void contest.claim(subject, { owner: "worker" })
  say("ready")
} else if (role === "opens") {
  const opens = {
    listen: () => SlotBus.listen(name),
    connect: () => SlotWorker.connect(name, () => ({ status: 200 })),
    topic: () => Topic.open(name),
    contest: () => Contest.open(name),
  }
  for (const [what, open] of Object.entries(opens)) {
    try {
      await open()
      say(`${what} ok`)
    } catch (e) {
      say(`${what} ${(e as Error).name}: ${(e as Error).message}`)
    }
  }
  say("done")
} else if (role === "baseline") {
  say("ready")
} else if (role === "truncater") {
  await SlotWorker.connect(name, () => {
    for (const fd of readdirSync("/proc/self/fd")) {
      let target = ""
      try {
        target = readlinkSync(`/proc/self/fd/${fd}`)
      } catch {}
      if (/^\/dev\/shm\/#\d+ \(deleted\)$/.test(target)) ftruncateSync(Number(fd), 0) // a region (§13.3)
    }
    say("truncated")
    return { status: 200, body: "ok" }
  })
} else if (role === "front") {
  const bus = await SlotBus.listen(name, { shared: true })
  bus.onWorker((e) => say(`${e.type} ${e.worker.pid}`))
  say(`ready ${bus.front?.index}`)
  let answered = 0
  const caller = async () => {
    for (;;) {
      if (bus.workerCount === 0) {
        await Bun.sleep(5)
        continue
      }
      try {
        await bus.request({ method: "GET", path: "/" }, { timeoutMs: 30_000 })
        if (++answered % 100 === 0) say(`answered ${answered}`)
      } catch (e) {
        say(`error ${(e as Error).name}: ${(e as Error).message}`)
      }
    }
  }
  for (let i = 0; i < 4; i++) void caller()
} else if (role === "listen") {
  await SlotBus.listen(name)
  say("ready")
} else if (role === "churn") {
  for (let n = 1; ; n++) {
    const w = await SlotWorker.connect(name, () => ({ status: 200 }), { waitForHubMs: 10_000 })
    say(`connected ${n}`)
    await w.close()
  }
} else throw new Error(`unknown role ${role}`)
setInterval(() => {}, 1 << 30)
