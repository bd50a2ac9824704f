// The Node pair of `slotbus bench compare`'s node measure, run under Node (built to JavaScript by measure.ts): a hub
// and an echo worker of the slotbus at <library.js> (a tree's src/index.ts built for Node, its libslotbus in
// $SLOTBUS_LIB). The hub prints one JSON line per measure (measure.ts's Measured): sequential 64 B round trips from
// the pair's start (the first of them before V8 has optimized anything: a fresh Node pair is what a user meets
// first), then 32 in flight, each for <seconds>.
// Usage: node node-pair.js hub <library.js> <seconds>   |   node node-pair.js echo <library.js> <bus>
import { spawn } from "node:child_process"

type Core = typeof import("../../src/index.ts")

const [role, library, arg] = process.argv.slice(2) as [string, string, string]
const { SlotBus, SlotWorker } = (await import(library)) as Core
const clock = performance.now.bind(performance)

/** `call` `inflight` at a time for `ms`: calls a second and the median round trip. */
async function closedLoop(call: () => Promise<unknown>, inflight: number, ms: number) {
  const times: number[] = []
  const t0 = clock()
  const end = t0 + ms
  const lane = async () => {
    while (clock() < end) {
      const t = clock()
      await call()
      times.push(clock() - t)
    }
  }
  await Promise.all(Array.from({ length: inflight }, lane))
  const s = (clock() - t0) / 1000
  times.sort((a, b) => a - b)
  return { perS: times.length / s, p50us: times[times.length >> 1]! * 1000 }
}

if (role === "echo") await SlotWorker.connect(arg, (req) => req.body.slice())
else if (role === "hub") {
  const bus = await SlotBus.listen(`cmp-node-${process.pid}`, { slots: 32 })
  const worker = spawn(process.execPath, [...process.execArgv, process.argv[1]!, "echo", library, bus.name], {
    stdio: ["ignore", "ignore", "inherit"],
  })
  const exited = new Promise<never>((_, reject) =>
    worker.once("exit", (code, sig) => reject(new Error(`the echo worker exited with ${code ?? sig}`))),
  )
  try {
    await Promise.race([bus.waitForWorkers(1, 10_000), exited])
    const body = new Uint8Array(64).fill(7)
    for (const inflight of [1, 32]) {
      const r = await Promise.race([closedLoop(() => bus.call(body), inflight, Number(arg) * 1000), exited])
      console.log(JSON.stringify({ measure: `node ↔ node 64 B, ${inflight} in flight`, ...r }))
    }
  } finally {
    worker.kill("SIGKILL")
    await bus.close({ drain: false })
  }
  process.exit(0)
} else {
  console.error("usage: node node-pair.js hub <library.js> <seconds> | echo <library.js> <bus>")
  process.exit(2)
}
