// Probe: a second bus in the same front makes the first one 3-5x slower. Sequential 64 B bus.request round trips
// through bus A (one Bun echo worker, default options), p50 of 1500 after 500 warm-up, 4 rounds: first with A alone
// in the front, then with a second bus B open beside it (its own idle echo worker), then with B closed again.
// Measured on a 2-vCPU VM: A alone 2.7-4.5 us; with B open 10-16 us, some rounds 57-89 us (a Node worker on A:
// 4-6 -> 16-26 us, some rounds 90-100). Run from the project root: bun ../shared/repro/perf/two-buses.ts
// Exit 1 when A's median p50 with B open is over 1.25x A's alone; 0 when it is within; 2 when set-up failed.
import { join } from "node:path"
const CLONE = process.env.CLONE ?? process.cwd()
const { SlotBus } = await import(join(CLONE, "src/index.ts"))
const BUN = process.execPath
const here = import.meta.dir
const kids: { kill(): void }[] = []
const worker = (name: string) => {
  const p = Bun.spawn([BUN, join(here, "echo-worker.ts"), name], {
    env: { ...process.env, CLONE },
    stdout: "ignore",
    stderr: "inherit",
  })
  kids.push(p)
  return p
}
const body = new Uint8Array(64)
async function p50(bus: any): Promise<number> {
  for (let i = 0; i < 500; i++) await bus.request({ method: "POST", path: "/p", body })
  const t: number[] = []
  for (let i = 0; i < 1500; i++) {
    const s = Bun.nanoseconds()
    await bus.request({ method: "POST", path: "/p", body })
    t.push(Bun.nanoseconds() - s)
  }
  t.sort((a, b) => a - b)
  return Math.round(t[t.length >> 1]! / 10) / 100
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!
let code = 2
const out: Record<string, unknown> = {}
try {
  const a = await SlotBus.listen(`twoA${process.pid}`, { slots: 32 })
  worker(a.name)
  await a.waitForWorkers(1, { timeoutMs: 20000 })
  const alone: number[] = []
  for (let i = 0; i < 4; i++) alone.push(await p50(a))
  const b = await SlotBus.listen(`twoB${process.pid}`, { slots: 32 })
  const wb = worker(b.name)
  await b.waitForWorkers(1, { timeoutMs: 20000 })
  const withB: number[] = []
  for (let i = 0; i < 4; i++) withB.push(await p50(a))
  wb.kill()
  await b.close()
  const after: number[] = []
  for (let i = 0; i < 4; i++) after.push(await p50(a))
  await a.close()
  Object.assign(out, {
    aloneUs: alone,
    withSecondBusUs: withB,
    afterClosingItUs: after,
    ratio: Math.round((med(withB) / med(alone)) * 100) / 100,
  })
  code = med(withB) > 1.25 * med(alone) ? 1 : 0
} catch (e) {
  out.setupFailed = String((e as Error)?.message ?? e)
} finally {
  for (const k of kids) k.kill()
}
console.log(JSON.stringify(out))
process.exit(code)
