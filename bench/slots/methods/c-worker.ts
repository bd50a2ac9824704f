// slotbus hub in this process ↔ examples/c-worker (libslotbus from C), built on first use by `zig build examples`.
import { existsSync } from "node:fs"
import { resolve } from "node:path"
import type { IdleStrategy } from "../../../src/index.ts"
import { buildWithZig, NoCompilerError, packageRoot } from "../cc.ts"
import { spawn } from "../../lib/child.ts"
import { processCpuSeconds } from "../../lib/cpu.ts"
import { SkipMethod, type Transport } from "../transport.ts"
import { openBus } from "./slotbus.ts"

const SOURCE = "examples/c-worker/worker.c"

// The C worker's idle modes (sb_idle, the Bun worker's strategies): busy-polls (--spin); by default polls while requests
// flow and sleeps on its eventfd doorbell after 1 ms without one (adaptive); sleeps on the ring's futex at once (--futex).
const FLAGS: Record<string, string[]> = { spin: ["--spin"], adaptive: [], park: ["--futex"] }

let built: Promise<string> | null = null

/** The worker binary: `override` (a binary, or a .c source built in place of the example), else the example. */
async function workerBinary(override?: string): Promise<string> {
  if (override && !override.endsWith(".c")) return override
  const source = override ?? SOURCE
  if (!existsSync(resolve(packageRoot, source))) throw new SkipMethod(`${SOURCE} is not in this package`)
  try {
    return await buildWithZig("examples", "c-worker", override && resolve(packageRoot, override))
  } catch (e) {
    if (e instanceof NoCompilerError) throw new SkipMethod(`cannot build the C worker: ${e.message}`)
    throw e
  }
}

export function flagsFor(idle: IdleStrategy): string[] {
  return FLAGS[String(idle)] ?? []
}

export async function open(idle: IdleStrategy, override?: string): Promise<Transport> {
  const bin = await (built ??= workerBinary(override))
  return openBus(
    idle,
    "C worker",
    (name) => spawn([bin, name, ...flagsFor(idle)]),
    async (_bus, child) => processCpuSeconds(child.pid),
    true,
  )
}
