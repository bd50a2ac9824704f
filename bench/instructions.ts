// Instructions per request, counted by valgrind's callgrind: stable on a busy machine where timings are not.
// Hub and worker run in this one process (so a request's whole JS and C cost is counted, no wake-up), and each
// figure is the difference between a long and a short run divided by the extra requests, so start-up and
// JIT warm-up cancel out.
//   bun bench/instructions.ts                      runs every case under valgrind, prints a table
//   bun bench/instructions.ts --case=call32 --n=N  one run without valgrind (what the table runs)
import { spawnSync } from "node:child_process"
import { existsSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { SlotBus, SlotWorker } from "../src/core/index.ts"

const CASES: Record<string, string> = {
  request1: "request(), 1 in flight (GET with 1 header, 11 B answer)",
  request32: "request(), 32 in flight",
  call32: "call(64 B), 32 in flight",
  borrow32: "request({ borrow: true }) + release(), 32 in flight",
}

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string]))

async function runCase(name: string, n: number) {
  // One thread runs both ends: poll once per turn (a synchronous spin would only starve the other end).
  const idle = { spinMicros: 0, parkAfterMs: 1000 }
  const bus = await SlotBus.listen(`instr-${process.pid}`, { idle })
  const worker = await SlotWorker.connect(bus.name, (req) => (req.kind === "raw" ? req.body : { status: 200, headers: { "content-type": "application/json" }, body: '{"id":"42"}' }), { idle })
  await bus.waitForWorkers(1)
  const init = { method: "GET", path: "/items/42", headers: { host: "127.0.0.1:3000" } }
  const body = new Uint8Array(64).fill(1)
  const one: () => Promise<unknown> =
    name === "call32" ? () => bus.call(body)
    : name === "borrow32" ? () => bus.request(init, { borrow: true }).then((r) => r.release())
    : () => bus.request(init)
  const depth = name === "request1" ? 1 : 32
  for (let done = 0; done < n; done += depth) await Promise.all(Array.from({ length: depth }, one))
  await worker.close()
  await bus.close()
}

function instructions(name: string, n: number): number {
  const out = join(tmpdir(), `slotbus-cg-${process.pid}-${name}-${n}`)
  const r = spawnSync("valgrind", ["--tool=callgrind", `--callgrind-out-file=${out}`, process.execPath, import.meta.path, `--case=${name}`, `--n=${n}`], { encoding: "utf8" })
  const m = /Collected : (\d+)/.exec(r.stderr)
  if (r.status !== 0 || !m) throw new Error(`valgrind failed (${r.status}): ${r.stderr.slice(-2000)}`)
  if (existsSync(out)) rmSync(out)
  return Number(m[1])
}

if (args.case) {
  await runCase(args.case, Number(args.n ?? 1000))
} else {
  if (spawnSync("sh", ["-c", "command -v valgrind"]).status !== 0) throw new Error("valgrind is not installed (apt-get install valgrind)")
  const short = Number(args.short ?? 2000)
  const long = Number(args.long ?? 12000)
  console.log(`instructions per request (callgrind; (runs of ${long} − ${short}) ÷ ${long - short}; hub and worker in one process)\n`)
  console.log("| case | instructions / request |")
  console.log("|---|---:|")
  for (const [name, what] of Object.entries(CASES)) {
    if (args.only && !args.only.split(",").includes(name)) continue
    const per = (instructions(name, long) - instructions(name, short)) / (long - short)
    console.log(`| ${what} | ${Math.round(per)} |`)
  }
}
