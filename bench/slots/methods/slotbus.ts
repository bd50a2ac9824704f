// slotbus through its public API: a SlotBus hub in this process, a SlotWorker in a child Bun process.
// Run directly, this file is that worker: bun slotbus.ts <name> <idle>
import { SlotBus, SlotWorker, type IdleStrategy } from "../../../src/index.ts"
import { spawn, type Child } from "../../lib/child.ts"
import { cpuReport, parseCpuReport } from "../../lib/cpu.ts"
import { type IdleCpu, idleCpu } from "../line-hub.ts"
import { EMPTY, type Transport } from "../transport.ts"

let opened = 0

/** A bus named uniquely for this run, with one worker attached; the worker is started by `start(name)`. */
export async function openBus(
  idle: IdleStrategy,
  what: string,
  start: (name: string) => Child,
  workerCpu: (bus: SlotBus, child: Child) => Promise<number>,
  reverses = false,
  into = false,
): Promise<Transport> {
  const name = `bench-${process.pid}-${opened++}`
  const bus = await SlotBus.listen(name, { idle, slots: 32 })
  let child: Child | null = null
  const close = async () => {
    await child?.kill()
    await bus.close({ drain: false })
  }
  try {
    child = start(name)
    await child.whileAlive(bus.waitForWorkers(1, 10_000), what)
    const c = child
    // `into`: each request loop has its answer copied into a buffer of its own, reused (RequestOptions.into)
    const buffers: Uint8Array[] = []
    const buffer = (lane: number, size: number) =>
      buffers[lane]?.length === size ? buffers[lane] : (buffers[lane] = new Uint8Array(size))
    const roundTrip = into
      ? (body: Uint8Array, lane = 0) => bus.call(body, { into: buffer(lane, body.length) })
      : (body: Uint8Array) => bus.call(body)
    return { roundTrip, workerCpu: () => workerCpu(bus, c), reverses, close }
  } catch (e) {
    await close()
    throw e
  }
}

/** Hub ↔ Bun worker, both sides using `idle`; with `into`, answers are copied into a buffer per request loop. */
export function open(idle: IdleStrategy, into = false): Promise<Transport> {
  return openBus(
    idle,
    "slotbus worker",
    (name) => spawn([process.execPath, import.meta.path, name, String(idle)]),
    async (bus) => parseCpuReport(await bus.call(EMPTY)),
    false,
    into,
  )
}

/** CPU seconds a parked hub and worker use while nothing is sent, over `ms`. */
export async function measureIdle(ms: number): Promise<IdleCpu> {
  const t = await open("park")
  try {
    return await idleCpu(t, ms)
  } finally {
    await t.close()
  }
}

if (import.meta.main) {
  const [name, idle] = process.argv.slice(2)
  // The body is a view into shared memory; returning it copies it into the response arena.
  const worker = await SlotWorker.connect(name!, (req) => (req.body.length === 0 ? cpuReport() : req.body), {
    idle: idle as IdleStrategy,
    waitForHubMs: 5000,
  })
  await worker.closed
  process.exit(0)
}
